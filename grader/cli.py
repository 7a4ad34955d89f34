"""The ``grader`` command: builds the parsers and turns errors into messages and exit codes.

Each sub-command is a module in ``grader/commands/`` with ``add_parser(subparsers)``; its
``run(args)`` returns an exit code and imports what it needs when it runs, so ``grader
--help`` and the quick commands stay fast. Every bad input reaches ``main`` as a
``UserError``: one line on stderr (and the JSON object with ``--json``), exit code 2.
Anything else is a bug in the grader: its traceback, and ``EXIT_INTERNAL``.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from grader.commands import assign, autograder, calibrate, check, exercises, export, feedback, grade, quiz
from grader.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, UserError

COMMANDS = (check, grade, feedback, export, quiz, assign, exercises, autograder, calibrate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Grade notebooks of the training-dynamics unit.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def error_json(args: argparse.Namespace, error: UserError) -> dict:
    """The ``--json`` reply for an error; commands that reply with a submission's result set their own."""
    return {"error": str(error), "exit_code": error.exit_code}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    try:
        return args.run(args)
    except UserError as e:
        if getattr(args, "json", False):
            sys.stdout.write(json.dumps(getattr(args, "error_json", error_json)(args, e), indent=2) + "\n")
        print(f"grader {name}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - a bug in the grader: never an exit code that reads as a verdict
        traceback.print_exc()
        print(f"grader {name}: internal error (exit code {EXIT_INTERNAL}); the traceback above is the grader's, "
              "not your notebook's: please report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
