"""``grader roster import [FILE]``: read the class list (student id, name, email) into the gradebook."""

from __future__ import annotations

import argparse
import pathlib

from grader.errors import EXIT_OK, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("roster", help="import the class roster into the gradebook",
                       description="The roster names every student: submissions are matched to it by student id, "
                                   "login, email (or its user part) or name, and exports carry its ids and emails.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = actions.add_parser("import", help="replace the gradebook's roster with a roster CSV",
                             description="Read FILE (columns: student id, name, email; optional: login, section, "
                                         "Canvas id; a Canvas gradebook export works as it is) into the gradebook, "
                                         "replacing the roster there, and report who matches no one.")
    imp.add_argument("file", type=pathlib.Path, nargs="?",
                     help="the roster CSV (default: course.roster in grader.toml)")
    imp.add_argument("--gradebook", type=pathlib.Path,
                     help="the gradebook (default: grading.gradebook in grader.toml, else gradebook.sqlite)")
    imp.set_defaults(run=run_import)


def names(entries, limit: int = 10) -> str:
    """A short list for one line of output: the first ``limit`` and how many more."""
    shown = [e if isinstance(e, str) else e.label() for e in entries]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def match_lines(match, what: str = "with results in the gradebook") -> list[str]:
    """The roster report every command prints the same way: unknown, ambiguous and missing students."""
    lines = []
    if match.unknown:
        lines.append(f"{len(match.unknown)} name(s) {what} match no one on the roster: {names(match.unknown)}")
    for name, entries in match.ambiguous.items():
        lines.append(f"{name!r} matches {len(entries)} students on the roster ({names(entries)}): rename the "
                     "submission after one student id")
    if match.missing:
        lines.append(f"{len(match.missing)} student(s) on the roster have nothing {what}: {names(match.missing)}")
    return lines


def run_import(args: argparse.Namespace) -> int:
    from grader.specs.config import discover, resolve_gradebook
    from grader.specs.roster import read_roster
    from grader.store.gradebook import Gradebook
    from grader.store.roster import import_roster, roster_match

    config = discover(getattr(args, "config", None))
    path = args.file or (config.roster if config else None)
    if path is None:
        raise UserError("which roster? Pass FILE, or set course.roster in grader.toml")
    entries = read_roster(path)
    if not entries:
        raise UserError(f"{path}: lists no students")
    with Gradebook.open(resolve_gradebook(args.gradebook, config, pathlib.Path("gradebook.sqlite"))) as gradebook:
        change = import_roster(gradebook, entries)
        match = roster_match(gradebook) if gradebook.run_count() else None  # nothing graded yet: nothing to match
    print(f"imported {change.total} students from {path}: {len(change.added)} added, {len(change.removed)} removed, "
          f"{len(change.changed)} changed")
    for line in match_lines(match) if match else ():
        print(line)
    return EXIT_OK
