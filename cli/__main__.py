"""``python -m cli``: the same as the ``soundstage`` command."""
from cli.main import main

if __name__ == "__main__":         # (not when a spawned process imports it)
    raise SystemExit(main())
