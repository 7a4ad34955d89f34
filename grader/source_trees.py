"""``ast.parse`` for a grader process with several threads: one parse at a time.

CPython 3.11 counts the depth of the parse tree it is building in one place per interpreter, not per thread,
so two threads parsing at once can fail with ``SystemError: AST constructor recursion depth mismatch``
(python/cpython gh-106905). A grader parses in several threads: a cluster worker checks its version (the
grader's sources) while it builds a kernel's prelude, and importing torch parses its overloads' sources.
"""

from __future__ import annotations

import ast
import contextlib
import threading
from collections.abc import Iterator

_ONE_AT_A_TIME = threading.RLock()  # re-entered where an import held by ``held`` parses through ``parse``


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, never beside another parse of this process's."""
    with _ONE_AT_A_TIME:
        return ast.parse(source, filename)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """No parse of ours runs meanwhile: for code that parses through a library (``import torch`` does)."""
    with _ONE_AT_A_TIME:
        yield
