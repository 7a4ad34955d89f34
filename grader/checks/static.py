"""Checks on the notebook's code itself (static) and on what its kernel imported."""

from __future__ import annotations

import ast
import functools
import math
import re
import subprocess
import sys

from ..exports import FunctionExport
from ..spec import EXPORT_KINDS
from .base import CheckContext, Outcome, Param, check_kind


@functools.lru_cache(maxsize=1)
def _package_baseline() -> frozenset[str]:
    """The reference.* modules that ``import reference`` and the in-notebook quick check load by themselves."""
    probe = subprocess.run([sys.executable, "-c", "import sys, reference, grader.quick; print(' '.join(sorted(sys.modules)))"],
                           capture_output=True, text=True, timeout=120)
    return frozenset(m for m in probe.stdout.split() if m == "reference" or m.startswith("reference."))


def _imports_and_names(source: str) -> tuple[set[str], set[str]]:
    """Modules imported (with ``from X import y`` also as ``X.y``) and every name or attribute used."""
    modules, names = set(), set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        # Cells with IPython magics do not parse; fall back to words, which over-reports rather than misses.
        words = set(re.findall(r"[A-Za-z_][\w.]*", source))
        return words, {w.rsplit(".", 1)[-1] for w in words}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules.add(node.value)  # importlib.import_module("reference.x") and friends
    return modules, names


@check_kind(
    "own_work",
    export=Param(str, "model", "the export that must be the student's own"),
    forbidden_modules=Param(list, doc="modules holding reference solutions"),
    forbidden_names=Param(list, [], "functions or constants of the reference solution"),
)
def own_work(ctx: CheckContext, export: str, forbidden_modules: list, forbidden_names: list) -> Outcome:
    """Flags a notebook that uses the reference solution instead of its own model or function."""
    value = ctx.value(export)  # nothing to credit before the value exists
    if isinstance(value, FunctionExport) and "NotImplementedError" in value.source:
        return Outcome(False, f"`{export}` is still the TODO stub (it raises NotImplementedError): replace the TODO "
                       "with your implementation.")
    found = []
    for cell, source in ctx.code_cells:
        modules, names = _imports_and_names(source)
        hits = sorted({m for m in modules for f in forbidden_modules if m == f or m.startswith(f + ".")}
                      | (names & set(forbidden_names)))
        found += [f"cell {cell}: `{hit}`" for hit in hits]
    # A module that `import reference` or the quick check loads anyway proves nothing.
    loaded = sorted(m for m in set(ctx.exports.modules) & set(forbidden_modules)
                    if m not in _package_baseline() and not any(m in f for f in found))
    found += [f"the kernel imported `{m}`" for m in loaded]
    if isinstance(value, FunctionExport) and any(value.module == f or value.module.startswith(f + ".")
                                                 for f in forbidden_modules):
        found.append(f"`{export}` is `{value.module}.{value.name}`")
    if found:
        return Outcome(False, f"Your notebook uses the reference solution ({'; '.join(found)}). Write your "
                       "own: only your own work is credited.", details={"evidence": found})
    return Outcome(True, f"`{export}` is your own: the notebook does not use the reference solution.")


@check_kind("defined", value=Param(str, doc="the export that must exist"), kind=Param(str, "", "its expected kind"))
def defined(ctx: CheckContext, value: str, kind: str) -> Outcome:
    """Passes when the notebook defines ``value`` (with the declared kind)."""
    ctx.value(value, kind or None)
    spec = next(e for e in ctx.exercise.exports if e.name == value)
    return Outcome(True, f"`{value}` is defined as {EXPORT_KINDS[kind or spec.kind]}.")


@check_kind("equals", value=Param(str, doc="the export to compare"),
            expected=Param((int, float, str, bool, list, dict), doc="the expected value"),
            tolerance=Param((int, float), 1e-9, "relative tolerance for numbers"),
            hint=Param(str, "", "advice shown when it differs"))
def equals(ctx: CheckContext, value: str, expected, tolerance: float, hint: str) -> Outcome:
    """The export equals ``expected`` (numbers within a relative tolerance); for answers with one right value."""
    got = ctx.value(value)
    if _same(got, expected, tolerance):
        return Outcome(True, f"`{value}` is {got!r}, as expected.")
    return Outcome(False, f"`{value}` is {got!r}, which is not the expected answer. {hint}".strip())


def _same(a, b, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, tolerance) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], tolerance) for k in a)
    return a == b
