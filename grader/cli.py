"""The ``grader`` command: builds the parsers and turns errors into messages and exit codes.

Each sub-command is a module in ``grader/commands/`` with ``add_parser(subparsers)``; its
``run(args)`` returns an exit code and imports what it needs when it runs, so ``grader
--help`` and the quick commands stay fast. Every bad input reaches ``main`` as a
``UserError``: one line on stderr (and the JSON object with ``--json``), exit code 2.
Anything else is a bug in the grader: its traceback, and ``EXIT_INTERNAL``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import signal
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

from grader.commands import (
    assign,
    autograder,
    calibrate,
    check,
    exercises,
    export,
    extend,
    feedback,
    grade,
    gradebook,
    init,
    override,
    quiz,
    release,
    roster,
    status,
)
from grader.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_UNUSABLE, UserError

COMMANDS = (check, grade, feedback, export, quiz, assign, exercises, autograder, calibrate, init, roster, extend,
            release, override, status, gradebook)
CONFIG_HELP = "the course configuration file (default: grader.toml in the current folder or the nearest above it)"


class HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless it says it already or there is none to show (a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or not action.option_strings or action.nargs == 0
                or action.default in (None, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """A parser whose usage errors, unknown options included, print the usage of the (sub-)command at fault."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(usage_parser=self)  # the deepest sub-command's parser wins: it parses last

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            getattr(parsed, "usage_parser", self).error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists every option)\n")


class VersionAction(argparse.Action):
    """``--version``, read from the installed metadata only when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version (and whether this is the student package) and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(version())
        parser.exit()


def version() -> str:
    """The installed package's version; a student package built by `grader release` says so."""
    from importlib import metadata

    from grader.specs.paths import student_release

    try:
        number = metadata.version("training-dynamics-grader")
    except metadata.PackageNotFoundError:
        number = "0+unknown"
    return f"grader {number}" + (" (student package: self-check only)" if student_release() is not None else "")


def shown_commands() -> tuple:
    """Every command; a student package offers only the commands its release lists."""
    from grader.specs.paths import student_release

    release = student_release()
    if release is None:
        return COMMANDS
    return tuple(c for c in COMMANDS if c.__name__.rpartition(".")[2] in release.get("commands", ()))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="grader", description="Grade notebooks of the training-dynamics unit.")
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("--config", type=pathlib.Path, default=None, help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in shown_commands():
        command.add_parser(sub)
    _add_config_option(parser)
    return parser


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config`` after any sub-command too; SUPPRESS keeps one given before the sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                child.add_argument("--config", type=pathlib.Path, default=argparse.SUPPRESS, help=CONFIG_HELP)
                _add_config_option(child)


def error_json(args: argparse.Namespace, error: UserError) -> dict:
    """The ``--json`` reply for an error; commands that reply with a submission's result set their own."""
    return {"error": str(error), "exit_code": error.exit_code}


def main(argv: list[str] | None = None, warm: bool = False) -> int:
    """The command line (``argv`` None: ``sys.argv``); a check or a batch typed there runs in the warm server
    when it can (``warm``: this is the server's child, forked with the grader already imported)."""
    _tolerant_streams()
    args = build_parser().parse_args(argv)
    args.warm_process = warm
    if argv is None and (args.command == "grade" or (args.command == "check" and not args.no_factory)):
        code = _forward(args)
        if code is not None:
            return code
        single_threaded()
    try:
        return _run(args)
    finally:
        if argv is None:  # the process ends next: a last collection of torch's objects would take half a second
            gc.freeze()


def _tolerant_streams() -> None:
    """On a terminal or pipe that cannot take UTF-8 (LC_ALL=C, a Windows code page), a character it cannot show is
    replaced instead of ending the command: the verdict and the page must not depend on the terminal."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if encoding not in ("utf-8", "utf8") and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def _name(args: argparse.Namespace) -> str:
    return " ".join(filter(None, [args.command, getattr(args, "action", None)]))


def _forward(args: argparse.Namespace) -> int | None:
    """The command's exit code from the warm server; None when it runs here instead. Ctrl-C while the server starts
    (before the command runs there, which relays later ones) ends it as any other Ctrl-C does."""
    from grader import warm_server

    try:
        return warm_server.forward(sys.argv[1:])
    except KeyboardInterrupt:
        print(f"grader {_name(args)}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def single_threaded() -> None:
    """Run here with the server's thread settings, before numpy is imported: its BLAS would start a thread pool at
    import (one thread per core), and a batch cannot fork its warm workers from a process with two threads; each
    worker would import torch again instead, beside the kernels' factory."""
    from grader.warm_server import SINGLE_THREAD

    os.environ.update(SINGLE_THREAD)


def _run(args: argparse.Namespace) -> int:
    name = _name(args)
    try:
        if hasattr(signal, "pthread_sigmask"):  # a no-op, but in the warm server's child: a Ctrl-C held since its fork
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return args.run(args)
    except UserError as e:
        return _fail(args, name, e)
    except KeyboardInterrupt:
        # Outside a batch's own handling of signals: before it starts, or once each of its results is committed.
        print(f"grader {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a bug in the grader: never an exit code that reads as a verdict
        foreign = _foreign_file(e)
        if foreign:  # not the grader's bug: a file of the user's stands in for a module the grader imports
            message = (f"{foreign} raised {type(e).__name__} ({str(e)[:200]}) while the grader imported what it "
                       "needs: a file of that name on PYTHONPATH, or in the folder you run it from, takes the place "
                       "of the package the grader uses; rename it, or take it off PYTHONPATH")
            return _fail(args, name, UserError(message))
        traceback.print_exc()
        return _fail(args, name, UserError(f"internal error (exit code {EXIT_INTERNAL}); the traceback above is the "
                                           "grader's, not your notebook's: please report it", exit_code=EXIT_INTERNAL),
                     error_json)


def _fail(args: argparse.Namespace, name: str, error: UserError, reply: Callable | None = None) -> int:
    """One line on stderr, and with --json the one JSON object the contract promises on stdout (``reply``'s; the
    command's own by default)."""
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps((reply or getattr(args, "error_json", error_json))(args, error), indent=2) + "\n")
    print(f"grader {name}: {error}", file=sys.stderr)
    return error.exit_code


def _foreign_file(error: BaseException) -> str:
    """The file that raised ``error`` where it is none of the Python installation's, the venv's or the grader's own
    (a `torch.py` of the user's shadowing torch, say); "" otherwise."""
    import os
    import sysconfig

    frames = traceback.extract_tb(error.__traceback__)
    if not frames or frames[-1].filename.startswith("<"):
        return ""
    raised = os.path.realpath(frames[-1].filename)
    ours = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, pathlib.Path(__file__).parent.parent,
                                          *sysconfig.get_paths().values())}
    return "" if any(raised == root or raised.startswith(root + os.sep) for root in ours) else raised


if __name__ == "__main__":
    sys.exit(main())
