"""``grader exercises``: list the exercises with their checks and points."""

from __future__ import annotations

import argparse

from rich.console import Console

from ..catalog import SpecError, load_all
from ..render import exercises_table
from .common import EXIT_OK, UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercises", help="list exercises with their checks and points")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        exercises = load_all()
    except SpecError as e:
        raise UserError(str(e)) from None
    Console().print(exercises_table(exercises))
    return EXIT_OK
