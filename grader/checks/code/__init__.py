"""Read notebook code by data flow: which objects are optimizers and schedulers, and how loops step them.

``read_code`` runs the code cells, in order, through a small abstract interpreter
(``reader``) that follows objects, not names: through assignments, attributes, dicts, lists,
tuple unpacking, function parameters and return values, user classes and their methods. Each
``.step()`` is recorded with the role of the object stepped and the loop iterations open at that
moment, so a helper called inside a loop counts as part of that loop, and comprehensions and
while loops are loops too. Pure functions over the cells' source: nothing is imported or run.
What the reading cannot establish (an object of unknown origin, exec, getattr with a computed
name) is reported as unclear, never guessed.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from typing import NamedTuple

from grader.checks.code.reader import Reader, StepEvent, TooLong
from grader.checks.code.values import Site
from grader.kernel.notebook import without_magics
from grader.source_trees import parse as parse_source

__all__ = ["CodeReport", "Site", "StepOrder", "read_code", "step_orders"]

RANK = {"alone": 0, "undecided": 1, "ok": 2, "scheduler-first": 3}  # a call read in several loops: the worst


class StepOrder(NamedTuple):
    cell: int
    line: int
    receiver: str  # the code of the stepped scheduler, e.g. "sched" or "runs[name].scheduler"
    verdict: str  # ok, scheduler-first, alone (no optimizer step in any loop around it) or undecided


@dataclass(frozen=True)
class CodeReport:
    orders: tuple[StepOrder, ...]  # one per scheduler.step() call that runs inside a loop
    unclear: tuple[str, ...]  # what the reading could not follow, for a message
    rebuilt: tuple[Site, ...]  # schedulers made inside the very loop iteration that steps them
    shared: tuple[Site, ...]  # lists made once and stored under a key in every iteration of a loop
    epochs: tuple[Site, ...] = ()  # scheduler steps given an argument: scheduler.step(epoch)


def parse(source: str) -> ast.Module | None:
    """A cell's AST; IPython magics and shell lines are blanked first so line numbers stay right."""
    try:
        return parse_source(without_magics(source))
    except SyntaxError:
        return None


def _verdict(event: StepEvent) -> str:
    """The innermost loop around a scheduler step that steps anything else decides its order.

    A loop that steps the scheduler first but starts right after an optimizer step runs them in torch's order,
    rotated: ``opt.step()``, then ``while ...: sched.step(); ...; opt.step()``.
    """
    for run in reversed(event.loops):
        i = next(k for k, e in enumerate(run.events) if e is event)
        for part, found in ((run.events[:i], "ok"), (run.events[i + 1:], "scheduler-first")):
            roles = {e.role for e in part}
            if "optimizer" in roles:
                rotated = found == "scheduler-first" and run.before is not None and run.before.role == "optimizer"
                return "ok" if rotated else found
            if "unknown" in roles:
                return "undecided"
    return "alone"


@functools.lru_cache(maxsize=16)
def read_code(cells: tuple[tuple[int, str], ...]) -> CodeReport:
    """Every loop's step order, and what the code shows about where schedulers and lists are made."""
    reader = Reader()
    try:
        for cell, source in cells:
            tree = parse(source)
            if tree is not None:
                reader.cell, reader.lines = cell, source.splitlines()
                reader.block(tree.body)
        for node, fn in list(reader.funcs.items()):  # functions nothing calls: read on their own
            if node not in reader.called:
                reader.call_func(fn, [None], {})
    except (TooLong, RecursionError):
        return CodeReport((), ("the code is too long for the grader to follow",), (), ())
    best: dict[tuple[int, int, str], str] = {}
    for event in reader.events:
        if event.role == "scheduler" and event.loops:
            key = (event.site.cell, event.site.line, event.receiver)
            verdict = _verdict(event)
            if key not in best or RANK[verdict] > RANK[best[key]]:
                best[key] = verdict
    orders = tuple(StepOrder(c, line, r, v) for (c, line, r), v in best.items())
    return CodeReport(orders, tuple(reader.unclear), tuple(reader.rebuilt), tuple(reader.shared), tuple(reader.epochs))


def step_orders(cells: tuple[tuple[int, str], ...]) -> list[StepOrder]:
    """(cell, line, receiver, verdict) for each scheduler.step() call inside a loop."""
    return list(read_code(tuple(cells)).orders)
