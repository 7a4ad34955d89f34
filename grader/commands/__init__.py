"""One module per ``grader`` sub-command: ``add_parser(subparsers)`` and ``run(args) -> exit code``.

A command imports what it needs inside ``run``, so building the parser for ``--help`` costs nothing.
"""
