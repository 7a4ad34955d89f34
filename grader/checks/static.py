"""Checks on the notebook's code itself (static) and on what its kernel imported."""

from __future__ import annotations

import ast
import re

from grader.checks.base import CheckContext, Outcome
from grader.checks.registry import Param, check_kind
from grader.checks.code import parse
from grader.diagnosis.training_code import first_function
from grader.loading.kinds import EXPORT_KINDS
from grader.loading.values import ExportProblem, FunctionExport

# The reference.* modules that the course helpers (every name ``from reference import ...`` offers) and the
# in-notebook quick check load: their presence in a kernel proves nothing, as using a course helper is allowed.
# tests/test_static_checks.py recomputes this in a fresh interpreter.
PACKAGE_BASELINE = frozenset({"reference", "reference.data", "reference.models", "reference.plots",
                              "reference.training"})


def _imports_and_names(source: str, tree: ast.Module | None, imported: frozenset[str]
                       ) -> tuple[set[str], set[str], set[str], set[str]]:
    """Modules imported (with ``from X import y`` also as ``X.y``), every name or attribute used, the names the
    code binds itself (functions, classes, parameters, assignment targets, attributes it sets; never imports), and
    the attributes it reads through an imported name (``ref.fit`` after ``import reference as ref``)."""
    if tree is None:
        # A cell that does not parse even without its magics: fall back to words, which over-reports rather than
        # misses.
        words = set(re.findall(r"[A-Za-z_][\w.]*", source))
        return words, {w.rsplit(".", 1)[-1] for w in words}, set(), set()
    modules, names, bound, through = set(), set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Name):
            names.add(node.id)
            if isinstance(node.ctx, ast.Store):
                bound.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
            if isinstance(node.ctx, ast.Store):
                bound.add(node.attr)  # self.fit_recipe = ...: an attribute of the notebook's own
            elif isinstance(node.value, ast.Name) and node.value.id in imported:
                through.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules.add(node.value)  # importlib.import_module("reference.x") and friends
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return modules, names, bound, through


def always_raises_not_implemented(source: str) -> bool:
    r"""Whether the function in ``source`` raises NotImplementedError before anything else can end it: a statement
    of its own body, not one inside an ``if``, a comment or a docstring (the release's TODO stubs).

    >>> always_raises_not_implemented("def f(x):\n    # TODO\n    raise NotImplementedError('TODO')\n")
    True
    >>> always_raises_not_implemented("def f(x):\n    if x is None:\n        raise NotImplementedError\n    return x")
    False
    """
    function = first_function(source)
    for statement in function.body if function else []:
        if isinstance(statement, ast.Raise) and statement.exc is not None:
            raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
            return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
        if isinstance(statement, (ast.Return, ast.Raise)):
            return False
    return False


def _import_aliases(tree: ast.Module | None) -> frozenset[str]:
    """The names an import binds: ``ref`` for ``import reference as ref``, ``reference`` for ``import reference.x``."""
    if tree is None:
        return frozenset()
    return frozenset(alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names)


@check_kind(
    "own_work",
    export=Param(str, "model", "the export that must be the student's own", export=True),
    forbidden_modules=Param(list, doc="modules holding reference solutions", of=str),
    forbidden_names=Param(list, [], "functions or constants of the reference solution", of=str),
)
def own_work(ctx: CheckContext, export: str, forbidden_modules: list, forbidden_names: list) -> Outcome:
    """Flags a notebook that uses the reference solution instead of its own model or function.

    In the official run the reference solutions are not there to import (the sandbox replaces them with a
    stub that raises ImportError), so the evidence is what the code tries, whether or not the value exists.
    """
    found = []
    # A name of the reference solution that the notebook defines itself (its own `seed_line`, say) is its own work;
    # one it imports, or reaches through a module, is not.
    trees = [(cell, source, parse(source)) for cell, source in ctx.code_cells]
    imported = frozenset().union(*(_import_aliases(tree) for *_, tree in trees))
    read = [(cell, *_imports_and_names(source, tree, imported)) for cell, source, tree in trees]
    own = set().union(*(bound for *_, bound, _ in read))
    for cell, modules, names, _, through in read:
        hits = sorted({m for m in modules for f in forbidden_modules if m == f or m.startswith(f + ".")}
                      | (((names - own) | through) & set(forbidden_names)))
        found += [f"cell {cell}: `{hit}`" for hit in hits]
    # A module that `import reference` or the quick check loads anyway proves nothing.
    loaded = sorted(m for m in set(ctx.exports.modules) & set(forbidden_modules)
                    if m not in PACKAGE_BASELINE and not any(m in f for f in found))
    found += [f"the kernel imported `{m}`" for m in loaded]
    if found:
        return Outcome(False, f"Your notebook uses the reference solution ({'; '.join(found)}). Write your "
                       "own: only your own work is credited, and the official run does not offer the reference "
                       "solutions to import.", details={"evidence": found})
    held = ctx.exports.values.get(export)
    # A model that exists but could not be captured or run (not one refused as tampered): nothing of the reference's
    # made it, and the checks that read the model say why it cannot be graded.
    if isinstance(held, ExportProblem) and held.captured:
        return Outcome(True, f"`{export}` is your own: the notebook does not use the reference solution.")
    value = ctx.value(export)  # nothing to credit before the value exists
    if isinstance(value, FunctionExport) and always_raises_not_implemented(value.source):
        return Outcome(False, f"`{export}` is still the TODO stub (it raises NotImplementedError): replace the TODO "
                       "with your implementation.")
    if isinstance(value, FunctionExport) and any(value.module == f or value.module.startswith(f + ".")
                                                 for f in forbidden_modules):
        found.append(f"`{export}` is `{value.module}.{value.name}`")
    if found:
        return Outcome(False, f"Your notebook uses the reference solution ({'; '.join(found)}). Write your "
                       "own: only your own work is credited.", details={"evidence": found})
    return Outcome(True, f"`{export}` is your own: the notebook does not use the reference solution.")


@check_kind("defined", value=Param(str, doc="the export that must exist", export=True),
            kind=Param(str, "", "its expected kind (default: the declared one)", choices=lambda: ["", *EXPORT_KINDS]))
def defined(ctx: CheckContext, value: str, kind: str) -> Outcome:
    """Passes when the notebook defines ``value`` (with the declared kind)."""
    ctx.value(value, kind or None)
    return Outcome(True, f"`{value}` is defined as {EXPORT_KINDS[kind or ctx.exercise.export(value).kind].doc}.")
