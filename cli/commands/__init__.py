"""One module per CLI subcommand. Each defines ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. :mod:`cli.main` lists them in ``COMMANDS``."""

# Output formats every writing command offers (``--format``): the names of core.audio.SUBTYPES
# that app.chain.FORMATS lists, kept here as plain strings so that parsing imports no audio code.
FORMATS = ("wav16", "wav24", "wav32f", "flac", "flac16")
