"""One module per ``grader`` sub-command: ``add_parser(subparsers)`` and ``run(args) -> exit code``."""
