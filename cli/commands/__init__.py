"""One module per CLI subcommand. Each defines ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. :mod:`cli.main` lists them in ``COMMANDS``."""

from core.formats import OUTPUT_FORMATS as FORMATS  # noqa: F401  (what --format offers; no audio code)
