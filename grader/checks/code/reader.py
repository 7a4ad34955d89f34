"""The reader: statements and expressions of notebook cells, run over the objects of ``values``.

Every ``.step()`` it meets becomes a ``StepEvent`` recorded in each loop iteration open at that
moment (``Run``), in the order the code would run them. A loop body is read twice, the first
time silently, so what one iteration sets is known to the next; nothing is recorded while
silent. The reader also notes schedulers made inside the very iteration that steps them
(``rebuilt``), lists made before a loop and stored under a key in it (``shared``), and scheduler
steps given an argument, ``scheduler.step(epoch)`` (``epochs``).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from dataclasses import dataclass

from grader.checks.code.calls import Calls
from grader.checks.code.values import (NONE, Box, Func, Instance, Scope, Simple, Site, Torch, U, UserClass, constant,
                                       is_kind, one, ordered, torch_classes, union)

BUDGET = 100_000  # nodes read per notebook (a course notebook needs about 1,000); beyond it, give up rather than guess


class Run:
    """One iteration of a loop: the steps taken in it, in order, and the step taken last before the loop began."""

    def __init__(self, before: StepEvent | None = None):
        self.events: list[StepEvent] = []
        self.before = before


@dataclass(eq=False)
class StepEvent:
    role: str  # optimizer, scheduler or unknown
    site: Site
    receiver: str
    loops: tuple[Run, ...]  # the loop iterations open, outermost first


class TooLong(Exception):
    pass


class Reader(Calls):
    def __init__(self):
        self.scope, self.cell, self.lines = Scope(), 0, []
        self.loops: list[Run] = []
        self.silent, self.budget = 0, BUDGET
        self.calls: list[ast.AST] = []  # the notebook's functions being read, innermost last
        self.returns: list[list[frozenset]] = []
        self.events: list[StepEvent] = []
        self.unclear: dict[str, None] = {}  # ordered sets
        self.rebuilt: dict[Site, None] = {}
        self.shared: dict[Site, None] = {}
        self.epochs: dict[Site, None] = {}  # scheduler.step(x): an epoch, or ReduceLROnPlateau's metric
        self.funcs: dict[ast.AST, Func] = {}
        self.called: set[ast.AST] = set()

    def site(self, node: ast.AST) -> Site:
        line = getattr(node, "lineno", 1)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        return Site(self.cell, line, text if len(text) <= 80 else text[:77] + "...")

    def note(self, node: ast.AST, text: str) -> None:
        if not self.silent:
            self.unclear[f"{text} ({self.site(node).where()})"] = None

    def step(self, role: str, node: ast.AST, receiver: str, note: str = "") -> None:
        if self.silent:
            return
        event = StepEvent(role, self.site(node), receiver, tuple(self.loops))
        self.events.append(event)
        for run in self.loops:
            run.events.append(event)
        if note and self.loops:
            self.note(node, note)

    def stepped(self, o: object) -> None:
        """A scheduler made in the very iteration that steps it starts its schedule anew each time."""
        if isinstance(o, Torch) and o.role == "scheduler" and self.loops and self.loops[-1] in o.loops \
                and not self.silent:
            self.rebuilt[o.site] = None

    def loop(self, body: Callable[[], object]) -> None:
        enclosing = self.loops[-1].events if self.loops else self.events  # what ran before it, each time it starts
        before = enclosing[-1] if enclosing else None
        for silent in (1, 0):
            self.loops.append(Run(before))
            self.silent += silent
            try:
                body()
            finally:
                self.loops.pop()
                self.silent -= silent

    def tick(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise TooLong

    # statements

    def block(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.tick()
            handler = getattr(self, "s_" + type(statement).__name__, None)
            if handler is not None:
                handler(statement)
            else:  # If, Expr, With, Try, Match, ...: their parts in order
                self.parts(statement)

    def parts(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                self.block([child])
            elif isinstance(child, ast.expr):
                self.eval(child)
            elif isinstance(child, (ast.excepthandler, ast.withitem, ast.match_case)):
                self.parts(child)

    def s_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> frozenset:
        spec = node.args
        defaults = [self.eval(d) for d in spec.defaults] + [self.eval(d) if d else U for d in spec.kw_defaults]
        func = Func(node, self.scope, self.cell, self.lines, defaults)
        self.funcs.setdefault(node, func)
        if not isinstance(node, ast.Lambda):
            self.scope.set(node.name, one(func))
        return one(func)

    s_AsyncFunctionDef = e_Lambda = s_FunctionDef

    def s_ClassDef(self, node: ast.ClassDef) -> None:
        bases = [o for b in node.bases for o in self.eval(b)]
        parents = [o for o in bases if isinstance(o, UserClass)]
        role = next((o.value for o in bases if is_kind(o, "class")), next((p.role for p in parents if p.role), ""))
        outer, self.scope = self.scope, Scope(self.scope)
        self.block(node.body)
        cls = UserClass(self.scope.vars, role, parents)
        self.scope = outer
        self.scope.set(node.name, one(cls))

    def s_Assign(self, node: ast.Assign) -> None:
        value = self.eval(node.value)
        for target in node.targets:
            self.assign(target, value)

    def s_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.assign(node.target, self.eval(node.value))

    def s_AugAssign(self, node: ast.AugAssign) -> None:
        value = self.eval(node.value)
        for o in self.eval(node.target):
            if isinstance(o, Box) and o.kind == "list" and isinstance(node.op, ast.Add):
                o.add(self.iterate(value))

    def s_For(self, node: ast.For | ast.AsyncFor) -> None:
        element = self.iterate(self.eval(node.iter))
        self.loop(lambda: (self.assign(node.target, element), self.block(node.body)))
        self.block(node.orelse)

    s_AsyncFor = s_For

    def s_While(self, node: ast.While) -> None:
        self.eval(node.test)
        self.loop(lambda: (self.block(node.body), self.eval(node.test)))
        self.block(node.orelse)

    def s_Return(self, node: ast.Return) -> None:
        value = self.eval(node.value) if node.value is not None else one(NONE)
        if self.returns:
            self.returns[-1].append(value)

    def s_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            target = self.scope.parent
            while target is not None and target.parent is not None and \
                    (isinstance(node, ast.Global) or name not in target.vars):
                target = target.parent
            if target is not None:
                self.scope.declared[name] = target

    s_Nonlocal = s_Global

    def s_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            path = alias.name if alias.asname else alias.name.split(".")[0]
            self.scope.set(alias.asname or path, one(Simple("module", path)))

    def s_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.scope.set(alias.asname or alias.name, self.module_attr(node.module or "", alias.name))

    def assign(self, target: ast.expr, value: frozenset) -> None:
        if isinstance(target, ast.Name):
            self.scope.set(target.id, value)
        elif isinstance(target, ast.Attribute):
            owners = [o for o in self.eval(target.value) if isinstance(o, (Instance, UserClass))]
            for o in owners:
                o.attrs[target.attr] = value if len(owners) == 1 else union(o.attrs.get(target.attr, U), value)
        elif isinstance(target, ast.Subscript):
            key = constant(self.eval(target.slice))
            for o in self.eval(target.value):
                if isinstance(o, Box):
                    o.add(value, key if o.kind == "dict" else None)
            self.check_shared(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            # Unpacked by position where the tuples' sizes are known, e.g. `for opt, sched in pairs`.
            size = len(target.elts)
            sized = {o for o in value if isinstance(o, Box) and o.items is not None and len(o.items) == size}
            rest = self.iterate(value - sized) if value - sized else frozenset()
            for i, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    self.assign(element.value, one(Box("list", None, ())))
                else:
                    self.assign(element, union(rest, *(o.items[i] for o in sized)))
        elif isinstance(target, ast.Starred):
            self.assign(target.value, value)

    def check_shared(self, value: frozenset) -> None:
        """A list made in the iterations still open, stored in a loop nested deeper: one list stored in every iteration.

        A list made in a loop that has ended is one of many lists, so only lists made around the storing loop count.
        """
        for o in ordered(value):
            if isinstance(o, Box) and o.kind == "list" and o.site and not self.silent \
                    and len(o.loops) < len(self.loops) and tuple(self.loops[:len(o.loops)]) == o.loops:
                self.shared[o.site] = None

    # expressions

    def eval(self, node: ast.AST | None) -> frozenset:
        if node is None:
            return U
        self.tick()
        handler = getattr(self, "e_" + type(node).__name__, None)
        if handler is not None:
            return handler(node) or U
        self.parts(node)
        return U

    def e_Constant(self, node: ast.Constant) -> frozenset:
        return one(Simple("const", node.value))

    def e_Name(self, node: ast.Name) -> frozenset:
        found = self.scope.get(node.id)
        if found is not None:
            return found
        optimizers, schedulers = torch_classes()
        if node.id in optimizers or node.id in schedulers:  # e.g. after `from torch.optim import *`
            return one(Simple("class", "optimizer" if node.id in optimizers else "scheduler"))
        return one(Simple("builtin", node.id)) if hasattr(builtins, node.id) else U

    def e_Attribute(self, node: ast.Attribute) -> frozenset:
        return union(*(self.attribute(o, node.attr) for o in self.eval(node.value)))

    def attribute(self, o: object, name: str) -> frozenset:
        if is_kind(o, "module"):
            return self.module_attr(o.value, name)
        if isinstance(o, Torch):
            if o.role == "scheduler" and name == "optimizer":
                return o.optimizer or U
            return one(Simple("method", name, o))
        if isinstance(o, Instance):
            if name in o.attrs:
                return o.attrs[name]
            found = o.cls.lookup(name)
            if found is not None:
                return frozenset(f.bound(o) if isinstance(f, Func) else f for f in found)
            return one(Simple("method", name, o)) if o.role else U
        if isinstance(o, UserClass):
            return o.lookup(name) or U
        if isinstance(o, Box) or is_kind(o, "builtin"):
            return one(Simple("method", name, o))
        return U

    def module_attr(self, path: str, name: str | None) -> frozenset:
        """``path.name`` of a module; a name of None is one computed at run time."""
        optimizers, schedulers = torch_classes()
        full = f"{path}.{name}"
        if full in ("torch.optim", "torch.optim.lr_scheduler"):
            return one(Simple("module", full))
        if path == "torch.optim" and (name is None or name in optimizers):
            return one(Simple("class", "optimizer"))
        if path == "torch.optim.lr_scheduler" and (name is None or name in schedulers):
            return one(Simple("class", "scheduler"))
        return one(Simple("module", path, "dict")) if name == "__dict__" else U

    def e_Subscript(self, node: ast.Subscript) -> frozenset:
        base, key = self.eval(node.value), constant(self.eval(node.slice))
        out = []
        for o in base:
            if isinstance(o, Box) and isinstance(node.slice, ast.Slice):
                copy = Box("list", self.site(node), tuple(self.loops))
                copy.add(o.elements())
                out.append(one(copy))
            elif isinstance(o, Box) and o.kind == "dict" and key in o.keys:
                out.append(o.keys[key])
            elif isinstance(o, Box) and isinstance(key, int) and o.items and -len(o.items) <= key < len(o.items):
                out.append(o.items[key])
            elif isinstance(o, Box):
                out.append(o.elements() or U)
            elif is_kind(o, "module") and o.owner == "dict":
                out.append(self.module_attr(o.value, key if isinstance(key, str) else None))
            else:
                out.append(U)
        return union(*out)

    def e_Yield(self, node: ast.Yield | ast.YieldFrom) -> frozenset:
        value = self.eval(node.value)
        if self.returns:
            self.returns[-1].append(self.iterate(value) if isinstance(node, ast.YieldFrom) else value)
        return U

    e_YieldFrom = e_Yield

    def e_NamedExpr(self, node: ast.NamedExpr) -> frozenset:
        value = self.eval(node.value)
        self.assign(node.target, value)
        return value

    def e_IfExp(self, node: ast.IfExp) -> frozenset:
        self.eval(node.test)
        return union(self.eval(node.body), self.eval(node.orelse))

    def e_BoolOp(self, node: ast.BoolOp) -> frozenset:
        return union(*(self.eval(v) for v in node.values))

    def e_BinOp(self, node: ast.BinOp) -> frozenset:
        lists = [o for o in self.eval(node.left) | self.eval(node.right) if isinstance(o, Box) and o.kind != "dict"]
        if not lists:
            return U
        made = Box("list", self.site(node), tuple(self.loops))  # a + b, [x] * n: a new list
        made.add(union(*(o.elements() for o in lists)))
        return one(made)

    def e_List(self, node: ast.List | ast.Tuple | ast.Set) -> frozenset:
        items = [self.eval(e.value if isinstance(e, ast.Starred) else e) for e in node.elts]
        starred = any(isinstance(e, ast.Starred) for e in node.elts)
        made = Box("tuple" if isinstance(node, ast.Tuple) else "list", self.site(node), tuple(self.loops),
                   None if starred else items)
        if starred:
            made.add(union(*(self.iterate(v) if isinstance(e, ast.Starred) else v for e, v in zip(node.elts, items))))
        return one(made)

    e_Tuple = e_Set = e_List

    def e_Dict(self, node: ast.Dict) -> frozenset:
        made = Box("dict", self.site(node), tuple(self.loops))
        for key, value in zip(node.keys, node.values):
            if key is not None:
                made.add(self.eval(value), constant(self.eval(key)))
                continue
            for o in self.eval(value):  # {**other}
                if isinstance(o, Box):
                    made.add(o.values)
                    made.keys.update(o.keys)
        return one(made)

    def e_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> frozenset:
        made = Box("dict" if isinstance(node, ast.DictComp) else "list", self.site(node), tuple(self.loops))
        outer, self.scope = self.scope, Scope(self.scope)

        def generate(i: int) -> None:
            if i < len(node.generators):
                gen = node.generators[i]
                element = self.iterate(self.eval(gen.iter))
                self.loop(lambda: (self.assign(gen.target, element), [self.eval(c) for c in gen.ifs], generate(i + 1)))
            elif isinstance(node, ast.DictComp):
                key, value = self.eval(node.key), self.eval(node.value)
                made.add(value, constant(key))
                self.check_shared(value)
            else:
                made.add(self.eval(node.elt))

        try:
            generate(0)
        finally:
            self.scope = outer
        return one(made)

    e_SetComp = e_GeneratorExp = e_DictComp = e_ListComp

    def iterate(self, value: frozenset) -> frozenset:
        """What iterating over ``value`` yields: a dict's keys, a list's elements. Iterating over an object of the
        notebook's own class runs its ``__iter__``, which is read as called there."""
        for o in ordered(value):
            if isinstance(o, Instance):
                self.run_method(o, "__iter__", [], {})
        out = [(frozenset(Simple("const", k) for k in o.keys) or U) if o.kind == "dict" else (o.elements() or U)
               for o in value if isinstance(o, Box)]
        return union(*out) if out else U
