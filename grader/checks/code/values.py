"""What the reading of notebook code follows: the objects a program makes, as sets of possibilities.

An expression stands for a frozenset of these objects, one Python object per object the
notebook makes, so identity is what connects a list made in one line to the same list stored
under a key in another. ``U`` stands for "something the reading cannot trace".
"""

from __future__ import annotations

import ast
import functools
import itertools
from dataclasses import dataclass

MAX_UNION = 32  # objects one expression may stand for; beyond it, "unknown"


@dataclass(frozen=True)
class Site:
    cell: int
    line: int
    text: str  # the source line, stripped

    def where(self) -> str:
        return f"code cell {self.cell}, line {self.line}: `{self.text}`"


@functools.cache
def torch_classes() -> tuple[frozenset[str], frozenset[str]]:
    """The names of torch's optimizer classes and of its LR scheduler classes."""
    import torch
    from torch.optim import lr_scheduler

    bases = (lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau)
    optimizer = torch.optim.Optimizer
    optimizers = {n for n, v in vars(torch.optim).items() if isinstance(v, type) and issubclass(v, optimizer)}
    schedulers = {n for n, v in vars(lr_scheduler).items() if isinstance(v, type) and issubclass(v, bases)}
    return frozenset(optimizers), frozenset(schedulers)


class Obj:
    """Every object the reading makes is numbered, so a set of them is walked in the order they were made."""

    _made = itertools.count()

    def __new__(cls, *args: object, **kwargs: object) -> Obj:
        self = super().__new__(cls)
        self.serial = next(Obj._made)
        return self


def ordered(value: frozenset) -> list:
    """The objects of ``value`` in the order they were made: the reading never depends on set order."""
    return sorted(value, key=lambda o: o.serial)


class Torch(Obj):
    """An optimizer or a scheduler made by a torch class, with the loop iterations open when it was made."""

    def __init__(self, role: str, site: Site, loops: tuple, optimizer: frozenset = frozenset()):
        self.role, self.site, self.loops, self.optimizer = role, site, loops, optimizer
        # An optimizer's step hooks (register_step_pre_hook / _post_hook), by the def or lambda that made them: a
        # loop read twice registers each once.
        self.hooks: dict[str, dict[ast.AST, Func]] = {"pre": {}, "post": {}}


class Box(Obj):
    """A list, tuple or dict: its values by position or constant key while known, and every value stored."""

    def __init__(self, kind: str, site: Site | None, loops: tuple, items: list | None = None):
        self.kind, self.site, self.loops, self.items = kind, site, loops, items
        self.keys: dict = {}
        self.values: frozenset = frozenset()

    def add(self, value: frozenset, key: object = None) -> None:
        if self.kind == "list" and self.items is not None:
            # Positions are no longer known; the items held so far are still in the list.
            self.values, self.items = union(self.values, *self.items), None
        self.values = union(self.values, value)
        if key is not None:
            self.keys[key] = value

    def elements(self) -> frozenset:
        return union(self.values, *(self.items or ()))


class Func(Obj):
    """A def or lambda with the scope it was defined in; ``self_value`` when read from an instance."""

    def __init__(self, node: ast.AST, scope: Scope, cell: int, lines: list[str], defaults: list, self_value=None):
        self.node, self.scope, self.cell, self.lines, self.defaults = node, scope, cell, lines, defaults
        self.self_value = self_value

    def bound(self, instance: object) -> Func:
        return Func(self.node, self.scope, self.cell, self.lines, self.defaults, instance)


class UserClass(Obj):
    def __init__(self, attrs: dict, role: str, parents: list):
        self.attrs, self.role, self.parents = attrs, role, parents  # role: that of a torch class it derives from

    def lookup(self, name: str) -> frozenset | None:
        if name in self.attrs:
            return self.attrs[name]
        return next((v for p in self.parents if (v := p.lookup(name)) is not None), None)


class Instance(Obj):
    def __init__(self, cls: UserClass):
        self.cls, self.attrs, self.role = cls, {}, cls.role


class Simple(Obj):
    """A module (owner "dict" for its vars()), a torch class, a builtin, a constant, or a method of ``owner``."""

    def __init__(self, kind: str, value: object = None, owner: object = None):
        self.kind, self.value, self.owner = kind, value, owner


UNKNOWN = Simple("unknown")
U = frozenset({UNKNOWN})
NONE = Simple("const")


def one(o: object) -> frozenset:
    return frozenset({o})


def union(*values: frozenset) -> frozenset:
    out = frozenset().union(*values)
    return out if len(out) <= MAX_UNION else U


def constant(value: frozenset) -> object:
    """The constant an expression stands for, or None."""
    (only,) = value if len(value) == 1 else (None,)
    return only.value if isinstance(only, Simple) and only.kind == "const" else None


def role(value: frozenset) -> str:
    """"optimizer" or "scheduler" when every object ``value`` stands for has that role, else ""."""
    roles = {o.role if isinstance(o, (Torch, Instance)) else "" for o in value}
    return roles.pop() if len(roles) == 1 else ""


def is_kind(o: object, kind: str) -> bool:
    return isinstance(o, Simple) and o.kind == kind


class Scope:
    def __init__(self, parent: Scope | None = None):
        self.vars: dict[str, frozenset] = {}
        self.parent = parent
        self.declared: dict[str, Scope] = {}  # global and nonlocal names: the scope they live in

    def get(self, name: str) -> frozenset | None:
        scope = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        return None

    def set(self, name: str, value: frozenset) -> None:
        (self.declared.get(name) or self).vars[name] = value
