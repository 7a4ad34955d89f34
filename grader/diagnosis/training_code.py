"""What a training function's source shows: its parameters, and how it keeps and restores the best weights.

Read with the ``ast`` module, never run. Each fact carries the statement that shows it and its line,
counted from the ``def`` line (line 1). Code this reader cannot follow (a syntax error, weights kept in
a helper) yields no fact, never a guess: the checks state their measurement and add a fact only where
one was found.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

from grader.source_trees import parse as parse_source

LOOPS = (ast.For, ast.AsyncFor, ast.While)
COPYING = frozenset({"deepcopy", "clone", "tolist"})  # calls that give weights storage of their own
SHALLOW = frozenset({"dict", "copy", "OrderedDict"})  # new containers around the same tensors
WEIGHT_SOURCES = frozenset({"state_dict", "parameters", "named_parameters"})


@dataclass(frozen=True)
class Fact:
    line: int  # in the function's source, the def line being 1
    code: str  # the statement as written, on one line
    target: str = ""  # the name it assigns, where it assigns one


@dataclass(frozen=True)
class RestoreCode:
    """How the function keeps and restores the best weights, as far as its source shows."""

    model: str  # the model parameter's name ("" when the function takes none)
    aliases: tuple[Fact, ...] = ()  # `best = model`, the result later used as the best model: no copy at all
    live_saves: tuple[Fact, ...] = ()  # `best = model.state_dict()` or a shallow copy: references to live weights
    every_epoch_saves: tuple[Fact, ...] = ()  # copies taken in every pass of a loop, outside any `if`
    loads: tuple[Fact, ...] = ()  # load_state_dict(...) calls
    loads_only_in_loop: bool = False  # every load sits inside a loop, so a run that never breaks out skips them
    restores_otherwise: bool = False  # returns, or rebinds the model to, another object (e.g. a saved copy)
    rebinding_loops: tuple[Fact, ...] = ()  # `for p, b in zip(model.parameters(), best): p = b`: the weights stay


@dataclass(frozen=True)
class Signature:
    names: tuple[str, ...]
    var_keyword: bool  # takes **kwargs


def first_function(source: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The first top-level function in ``source`` (indented as ``inspect`` gives a method's); None if unreadable."""
    try:
        tree = parse_source(textwrap.dedent(source))
    except (SyntaxError, ValueError):
        return None
    return next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)


def signature(source: str) -> Signature | None:
    """The parameter names of the function in ``source``; None when it cannot be read."""
    fn = first_function(source)
    if fn is None:
        return None
    args = fn.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return Signature(tuple(names), args.kwarg is not None)


def _callee(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _calls(node: ast.AST) -> set[str]:
    return {_callee(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}


def _live_weights(value: ast.expr) -> bool:
    """The value refers to the model's weight tensors without copying them."""
    if COPYING & _calls(value):
        return False
    if isinstance(value, ast.Call):
        name, args = _callee(value.func), value.args
        if name == "state_dict":
            return True
        if name in SHALLOW and args:  # dict(sd), copy.copy(sd), OrderedDict(sd)
            return _live_weights(args[0])
        if name == "copy" and not args and isinstance(value.func, ast.Attribute):  # sd.copy()
            return _live_weights(value.func.value)
    if isinstance(value, (ast.DictComp, ast.ListComp)):
        return any(WEIGHT_SOURCES & _calls(g.iter) for g in value.generators)
    return False


def _copied_weights(value: ast.expr, model: str) -> bool:
    """The value is a copy of the model or of its weights."""
    if not COPYING & _calls(value):
        return False
    names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    return "state_dict" in _calls(value) or model in names


def _pairs(node: ast.Assign) -> list[tuple[ast.expr, ast.expr]]:
    """(target, value) pairs, with `a, b = x, y` taken element-wise."""
    out = []
    for target in node.targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) \
                and len(target.elts) == len(node.value.elts):
            out += list(zip(target.elts, node.value.elts))
        else:
            out.append((target, node.value))
    return out


class _Reader:
    def __init__(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]):
        self.fn, self.lines = fn, lines
        self.parents = {child: parent for parent in ast.walk(fn) for child in ast.iter_child_nodes(parent)}
        positional = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args) if a.arg != "self"]
        self.model = positional[0] if positional else ""

    def fact(self, node: ast.AST, target: str = "") -> Fact:
        line = node.lineno - self.fn.lineno + 1
        text = self.lines[node.lineno - 1].strip() if node.lineno <= len(self.lines) else ast.unparse(node)
        return Fact(line, text.split("#", 1)[0].strip() or text, target)

    def ancestors(self, node: ast.AST):
        while node in self.parents and node is not self.fn:
            node = self.parents[node]
            yield node

    def in_loop(self, node: ast.AST) -> bool:
        return any(isinstance(a, LOOPS) for a in self.ancestors(node))

    def every_pass(self, node: ast.AST) -> bool:
        """Inside a loop, with no `if` (or other branch) between it and the nearest loop."""
        for a in self.ancestors(node):
            if isinstance(a, LOOPS):
                return True
            if isinstance(a, (ast.If, ast.IfExp, ast.Try, ast.Match)):
                return False
        return False

    def used_as_best(self, name: str) -> bool:
        """``name`` is returned, loaded from, or becomes the model: what the function hands back as best."""
        for node in ast.walk(self.fn):
            if isinstance(node, ast.Return) and node.value is not None and _names(node.value) & {name}:
                return True
            if isinstance(node, ast.Call) and _callee(node.func) == "load_state_dict" \
                    and any(name in _names(a) for a in node.args):
                return True
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == self.model and
                                                    isinstance(v, ast.Name) and v.id == name
                                                    for t, v in _pairs(node)):
                return True
        return False


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _returned_model(fn: ast.AST) -> list[ast.expr]:
    """The first item of every `return`: the model the function hands back."""
    out = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            out.append(value.elts[0] if isinstance(value, (ast.Tuple, ast.List)) and value.elts else value)
    return out


def restore_code(source: str) -> RestoreCode | None:
    """The facts of ``source`` about the best weights; None when the source cannot be read."""
    fn = first_function(source)
    if fn is None:
        return None
    reader = _Reader(fn, textwrap.dedent(source).splitlines())
    model = reader.model
    assigns = [(node, target, value) for node in ast.walk(fn) if isinstance(node, ast.Assign)
               for target, value in _pairs(node)]
    copied = {ast.unparse(t) for _, t, v in assigns if _copied_weights(v, model)}
    aliases, live, every = [], [], []
    for node, target, value in assigns:
        name = ast.unparse(target)
        if isinstance(value, ast.Name) and value.id == model and isinstance(target, ast.Name) and name != model \
                and name not in copied and reader.used_as_best(name):
            aliases.append(reader.fact(node, name))
        elif _live_weights(value) and not (isinstance(target, ast.Name) and target.id == model):
            live.append(reader.fact(node, name))
        elif _copied_weights(value, model) and reader.every_pass(node) and isinstance(target, ast.Name) \
                and reader.used_as_best(target.id):
            every.append(reader.fact(node, name))
    loads = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and _callee(n.func) == "load_state_dict"]
    rebinds = any(isinstance(t, ast.Name) and t.id == model and not (model in _names(v) and isinstance(v, ast.Call))
                  for _, t, v in assigns)
    returns_other = any(not (isinstance(r, ast.Name) and r.id == model) for r in _returned_model(fn))
    return RestoreCode(model, _unique(aliases), _unique(live), _unique(every),
                       _unique([reader.fact(n) for n in loads]),
                       bool(loads) and all(reader.in_loop(n) for n in loads), rebinds or returns_other,
                       _unique([reader.fact(a, t) for a, t in _rebound_weights(fn)]))


def _rebound_weights(fn: ast.AST) -> list[tuple[ast.Assign, str]]:
    """Assignments to the variable of a loop over the weights: each binds the name to another tensor and leaves
    the parameter itself as it was."""
    found = []
    for loop in ast.walk(fn):
        if not isinstance(loop, (ast.For, ast.AsyncFor)) or not WEIGHT_SOURCES & _calls(loop.iter):
            continue
        names = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
        found += [(node, target.id) for node in ast.walk(loop) if isinstance(node, ast.Assign)
                  for target in node.targets if isinstance(target, ast.Name) and target.id in names]
    return found


def _unique(facts: list[Fact]) -> tuple[Fact, ...]:
    return tuple(sorted(set(facts), key=lambda f: f.line))


def cell_line(cells: tuple[tuple[int, str], ...], source: str, line: int) -> str:
    """Where line ``line`` of the function in ``source`` is in the notebook: "code cell 2, line 31" if found."""
    first = textwrap.dedent(source).splitlines()[0].strip() if source.strip() else ""
    for cell, text in cells:
        rows = text.splitlines()
        start = next((i for i, row in enumerate(rows) if first and row.strip() == first), None)
        if start is not None:
            return f"code cell {cell}, line {start + line}"
    return f"line {line} of the function"
