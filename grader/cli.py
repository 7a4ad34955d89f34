"""The ``grader`` command: builds the parsers and maps user errors to exit codes; commands live in grader/commands/."""

from __future__ import annotations

import argparse
import sys

from .commands import assign, autograder, check, exercises, export, feedback, grade, quiz
from .commands.common import EXIT_UNUSABLE, UserError

COMMANDS = (check, grade, feedback, export, quiz, assign, exercises, autograder)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Grade notebooks of the training-dynamics unit.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as e:
        print(f"grader {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["EXIT_UNUSABLE", "build_parser", "main"]
