"""``ast.parse`` for a grader process with several threads: one parse at a time.

CPython 3.11 counts the depth of the parse tree it is building in one place per interpreter, not per thread,
so two threads parsing at once can fail with ``SystemError: AST constructor recursion depth mismatch``
(python/cpython gh-106905). A grader parses in several threads: a cluster worker checks its version (the
grader's sources) while it builds a kernel's prelude, a batch's warm-up imports run beside a submission's checks.
"""

from __future__ import annotations

import ast
import threading

_ONE_AT_A_TIME = threading.Lock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, never beside another parse of this process's."""
    with _ONE_AT_A_TIME:
        return ast.parse(source, filename)
