"""Checks on the notebook's code itself (static) and on what its kernel imported."""

from __future__ import annotations

import ast
import re

from ..spec import EXPORT_KINDS
from .base import CheckContext, Outcome, Param, check_kind


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
    model=Param(str, "model", "the export that must be the student's own"),
    forbidden_modules=Param(list, doc="modules holding reference solutions"),
    forbidden_names=Param(list, [], "functions or constants of the reference solution"),
)
def own_work(ctx: CheckContext, model: str, forbidden_modules: list, forbidden_names: list) -> Outcome:
    """Flags a notebook that calls the reference solution instead of building its own model."""
    ctx.value(model)  # nothing to credit before the model exists
    found = []
    for cell, source in ctx.code_cells:
        modules, names = _imports_and_names(source)
        hits = sorted({m for m in modules for f in forbidden_modules if m == f or m.startswith(f + ".")}
                      | (names & set(forbidden_names)))
        found += [f"cell {cell}: `{hit}`" for hit in hits]
    loaded = sorted(set(ctx.exports.modules) & set(forbidden_modules))
    found += [f"the kernel imported `{m}`" for m in loaded if not any(m in f for f in found)]
    if found:
        return Outcome(False, f"Your notebook uses the reference solution ({'; '.join(found)}). Build and train your "
                       "own model: only your own work is credited.", details={"evidence": found})
    return Outcome(True, f"`{model}` is your own: the notebook does not use the reference solution.")


@check_kind("defined", value=Param(str, doc="the export that must exist"), kind=Param(str, "", "its expected kind"))
def defined(ctx: CheckContext, value: str, kind: str) -> Outcome:
    """Passes when the notebook defines ``value`` (with the declared kind)."""
    ctx.value(value, kind or None)
    spec = next(e for e in ctx.exercise.exports if e.name == value)
    return Outcome(True, f"`{value}` is defined as {EXPORT_KINDS[kind or spec.kind]}.")
