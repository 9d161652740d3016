"""``python -m cli``: the same as the ``soundstage`` command."""
from cli.main import main

raise SystemExit(main())
