"""The command line: the top layer, above both the application (``app``) and the desktop UI (``ui``).

:mod:`cli.main` parses the arguments and hands each subcommand to its module in
:mod:`cli.commands`; the commands only parse and call the application's facades
(:mod:`app.chain`, :mod:`app.batch`, :mod:`app.session`, the separation backends).
"""
