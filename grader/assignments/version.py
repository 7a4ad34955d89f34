"""The grader version recorded with every result: the package version, plus a hash of what scored it.

The hash covers the assignment's own files (spec or quiz) and the source of the code that
scores it: the modules of its check kinds and every module of ``grader`` or ``reference``
they import, directly or inside a function. A fixed check, a changed spec or a changed
reference run therefore makes earlier results of that assignment due for regrading, and
nothing else does.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import pathlib
import threading
from importlib import metadata

from grader.assignments.catalog import Assignment, Exercise
from grader.source_trees import parse as parse_source
from grader.specs.paths import module_file

PACKAGE = "training-dynamics-grader"
OWN_PACKAGES = ("grader", "reference")
QUIZ_SCORING = ("grader.quizzes.scoring", "grader.quizzes.answers")


def scoring_modules(assignment: Assignment) -> tuple[str, ...]:
    """The modules whose code decides this assignment's scores, before following their imports."""
    if isinstance(assignment, Exercise):
        return tuple(sorted({check.kind.fn.__module__ for check in assignment.checks}))
    return QUIZ_SCORING


@functools.cache
def _imports(path: pathlib.Path, module: str) -> frozenset[str]:
    """Every module of our packages that ``path`` imports, anywhere in it, as absolute names; each file parsed once,
    as the exercises' closures share most of their modules."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(parse_source(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in OWN_PACKAGES)
    return frozenset(found)


_CLOSURE_LOCK = threading.Lock()


def code_closure(modules: tuple[str, ...]) -> tuple[pathlib.Path, ...]:
    """The source files of ``modules`` and of every module of ours they import, transitively."""
    # One thread at a time: two batches in one process (a test, a service) would both fill the cache.
    with _CLOSURE_LOCK:
        return _code_closure(modules)


@functools.cache
def _code_closure(modules: tuple[str, ...]) -> tuple[pathlib.Path, ...]:
    seen: dict[str, pathlib.Path] = {}
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = module_file(module)
        if path is None:  # a name imported from a module, not a module itself
            continue
        seen[module] = path
        todo.extend(_imports(path, module) - set(seen))
    return tuple(sorted(set(seen.values())))


def _forget() -> None:
    """For tests that edit sources: their closures and imports are found again."""
    _code_closure.cache_clear()
    _imports.cache_clear()


code_closure.cache_clear = _forget  # type: ignore[attr-defined]


def _package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def grader_version(assignment: Assignment) -> str:
    """E.g. ``0.1.0+spec.3f9a1c0b2e``: equal only when the spec and the code that scores it are the same."""
    digest = hashlib.sha256()
    for path in (*assignment.files, *code_closure(scoring_modules(assignment))):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{_package_version()}+spec.{digest.hexdigest()[:10]}"
