"""Calls, read the way they run: torch classes make optimizers and schedulers, the notebook's own functions and
methods are read with their arguments bound, containers and a few builtins move objects around.

``Calls`` is half of the reader (``grader.checks.code.reader.Reader``): it uses the reader's
``eval``, ``block``, ``loop``, ``step`` and ``site``.
"""

from __future__ import annotations

import ast

from grader.checks.code.values import (NONE, UNKNOWN, Box, Func, Instance, Simple, Torch, U, UserClass, constant,
                                       is_kind, one, ordered, role, union)

MAX_DEPTH = 8  # nested calls of the notebook's own functions
# Calls that store or read an object and never step it, whatever they are called on.
CONTAINER_METHODS = {"append", "extend", "insert", "add", "update", "setdefault", "get", "pop", "remove", "index",
                     "count", "copy", "items", "values", "keys", "clear"}
DYNAMIC = ("exec", "eval", "compile", "__import__", "globals", "locals")
# What torch's step() methods take (optimizer: closure; ReduceLROnPlateau: metrics): any other step() call,
# such as matplotlib's ax.step(x, y, where="post"), is not one.
STEP_KEYWORDS = {"closure", "metrics", "epoch"}


class Calls:
    def e_Call(self, node: ast.Call) -> frozenset:
        args: list[frozenset | None] = []  # None: more arguments, unknown, from *args
        for a in node.args:
            value = self.eval(a.value if isinstance(a, ast.Starred) else a)
            boxes = [o for o in value if isinstance(o, Box) and o.items is not None]
            if not isinstance(a, ast.Starred):
                args.append(value)
            elif len(boxes) == 1 == len(value):
                args += boxes[0].items
            else:
                args.append(None)
        kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
        for k in node.keywords:
            if k.arg is None:
                self.eval(k.value)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "step" and len(node.args) <= 1 \
                and all(k.arg in STEP_KEYWORDS for k in node.keywords):
            return self.step_call(node, args)
        return union(*(self.call(fn, node, args, kwargs) for fn in ordered(self.eval(node.func))))

    def step_call(self, node: ast.Call, args: list) -> frozenset:
        """``x.step(...)``: the notebook's own step method is read; otherwise a step of whatever ``x`` is."""
        receiver = ast.unparse(node.func.value)
        roles, out, hooked = set(), [], []
        for o in ordered(self.eval(node.func.value)):
            method = o.cls.lookup("step") if isinstance(o, Instance) else None
            if method is not None:
                out += [self.call_func(f.bound(o), args, {}) for f in ordered(method) if isinstance(f, Func)]
            elif isinstance(o, (Torch, Instance)) and o.role:
                roles.add(o.role)
                self.stepped(o)
                hooked += [o] if isinstance(o, Torch) and o.role == "optimizer" else []
            elif o is UNKNOWN or isinstance(o, Instance):
                roles.add("unknown")
        if any(role(a) == "optimizer" for a in args if a):  # GradScaler.step(optimizer) steps that optimizer
            roles = {"optimizer"}
        if len(roles) == 1 and roles != {"unknown"}:
            if roles == {"scheduler"} and (node.args or node.keywords) and not self.silent:
                self.epochs[self.site(node)] = None
            self.run_hooks(hooked, "pre")
            self.step(roles.pop(), node, receiver)
            self.run_hooks(hooked, "post")
        elif roles:
            why = "may be an optimizer or a scheduler" if {"optimizer", "scheduler"} <= roles else \
                "cannot be traced to an optimizer or a scheduler"
            self.step("unknown", node, receiver, f"`{receiver}` {why}")
        return union(*out) if out else U

    def call(self, fn: object, node: ast.Call, args: list, kwargs: dict) -> frozenset:
        if isinstance(fn, Func):
            return self.call_func(fn, args, kwargs)
        if isinstance(fn, UserClass):
            instance = Instance(fn)
            for init in ordered(fn.lookup("__init__") or frozenset()):
                if isinstance(init, Func):
                    self.call_func(init.bound(instance), args, kwargs)
            return one(instance)
        if isinstance(fn, Instance):  # calling an object of the notebook's own class runs its __call__
            return self.run_method(fn, "__call__", args, kwargs)
        if is_kind(fn, "class"):
            first = args[0] if args and args[0] is not None else kwargs.get("optimizer", frozenset())
            return one(Torch(fn.value, self.site(node), tuple(self.loops), first))
        if is_kind(fn, "method"):
            return self.method(fn.owner, fn.value, node, args, kwargs)
        if is_kind(fn, "builtin"):
            return self.builtin(fn.value, node, args)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if fn is UNKNOWN and name not in CONTAINER_METHODS and any(role(a) == "optimizer" for a in args if a):
            code = ast.unparse(node.func)
            self.step("unknown", node, code, f"`{code}(...)` receives the optimizer and cannot be read, so it may "
                      "step it")
        return U

    def run_hooks(self, optimizers: list[Torch], when: str) -> None:
        """The step hooks the notebook registered on these optimizers, called as torch calls them: (optimizer, args,
        kwargs), before (``pre``) or after (``post``) each step."""
        for optimizer in optimizers:
            for hook in list(optimizer.hooks[when].values()):
                self.call_func(hook, [one(optimizer), U, U], {})

    def method(self, owner: object, name: str, node: ast.Call, args: list, kwargs: dict) -> frozenset:
        arg = [a if a is not None else U for a in args] + [U, U]
        if isinstance(owner, Torch) and owner.role == "optimizer" and name in ("register_step_pre_hook",
                                                                              "register_step_post_hook"):
            when = "pre" if name == "register_step_pre_hook" else "post"
            owner.hooks[when].update((f.node, f) for f in ordered(arg[0]) if isinstance(f, Func))
            return U
        if isinstance(owner, (Torch, Instance)):
            if name == "step":  # a step method kept in a variable, e.g. tick = scheduler.step
                self.step(owner.role or "unknown", node, ast.unparse(node.func))
                self.stepped(owner)
            return U
        if is_kind(owner, "builtin") and owner.value == "dict" and name == "fromkeys":
            made = Box("dict", self.site(node), tuple(self.loops))
            made.add(arg[1])
            if any(isinstance(o, Box) and o.kind == "list" for o in arg[1]):
                self.shared[self.site(node)] = None  # one list object under every key
            return one(made)
        if not isinstance(owner, Box):
            return U
        if name in ("append", "add", "insert"):
            owner.add(arg[1] if name == "insert" else arg[0])
        elif name == "extend":
            owner.add(self.iterate(arg[0]))
        elif name == "update":
            for o in arg[0]:
                if isinstance(o, Box):
                    owner.add(o.values)
                    owner.keys.update(o.keys)
            for key, value in kwargs.items():
                owner.add(value, key)
        elif name == "setdefault":
            key = constant(arg[0])
            if key not in owner.keys:
                owner.add(arg[1], key)
            return owner.keys.get(key) or owner.elements() or U
        elif name in ("get", "pop"):
            key = constant(arg[0])
            return owner.keys[key] if key in owner.keys else union(owner.elements(), arg[1] if len(args) > 1 else U)
        elif name in ("items", "values", "keys"):
            made = Box("list", self.site(node), tuple(self.loops))
            keys = frozenset(Simple("const", k) for k in owner.keys) or U
            made.add({"items": one(Box("tuple", None, (), [keys, owner.elements()])), "keys": keys,
                      "values": owner.elements()}[name])
            return one(made)
        elif name == "copy":
            return one(self.copy(owner, node))
        return U

    def copy(self, box: Box, node: ast.AST) -> Box:
        made = Box(box.kind, self.site(node), tuple(self.loops))
        made.add(box.elements())
        made.keys.update(box.keys)
        return made

    def builtin(self, name: str, node: ast.Call, args: list) -> frozenset:
        arg = [a if a is not None else U for a in args] + [U, U]
        made = Box("list", self.site(node), tuple(self.loops))
        if name in DYNAMIC:
            self.note(node, f"`{name}()` runs code the grader cannot read")
        elif name == "getattr":
            return self.getattr(node, arg[0], constant(arg[1]))
        elif name == "vars":
            return frozenset(Simple("module", o.value, "dict") for o in arg[0] if is_kind(o, "module")) or U
        elif name in ("list", "tuple", "set", "sorted", "reversed", "iter", "frozenset", "filter"):
            made.add(self.iterate(arg[1] if name == "filter" else arg[0]) if args else frozenset())
            return one(made)
        elif name == "dict":
            dicts = [o for o in arg[0] if isinstance(o, Box) and o.kind == "dict"]
            if len(dicts) == 1:
                return one(self.copy(dicts[0], node))
            pairs = [b for b in self.iterate(arg[0]) if isinstance(b, Box) and b.items and len(b.items) == 2]
            made.kind = "dict"
            made.add(union(*(b.items[1] for b in pairs)))
            return one(made)
        elif name in ("zip", "enumerate"):
            parts = [self.iterate(a) for a in args if a is not None] if name == "zip" else [U, self.iterate(arg[0])]
            made.add(one(Box("tuple", None, (), parts)))
            return one(made)
        elif name == "next":  # an iterator of the notebook's own class runs its __next__
            return union(self.iterate(arg[0]), *(self.run_method(o, "__next__", [], {}) for o in ordered(arg[0])
                                                 if isinstance(o, Instance)))
        elif name == "map":  # map(f, xs) is a loop calling f
            items = [self.iterate(a) for a in args[1:] if a is not None]
            self.loop(lambda: made.add(union(*(self.call(f, node, items, {}) for f in ordered(arg[0])))))
            return one(made)
        return U

    def getattr(self, node: ast.Call, owners: frozenset, name: object) -> frozenset:
        if isinstance(name, str):
            return union(*(self.attribute(o, name) for o in owners))
        modules = [o for o in owners if is_kind(o, "module")]
        if modules:  # getattr(lr_scheduler, name): some class of that module
            return union(*(self.module_attr(o.value, None) for o in modules))
        if any(isinstance(o, (Torch, Instance, Box)) for o in owners):
            self.note(node, "`getattr()` with a computed name")
        return U

    def run_method(self, instance: Instance, name: str, args: list, kwargs: dict) -> frozenset:
        """What ``instance``'s own method ``name`` returns, read as called there; nothing when its class has none."""
        out = [self.call_func(f.bound(instance), args, kwargs) for f in ordered(instance.cls.lookup(name) or frozenset())
               if isinstance(f, Func)]
        return union(*out) if out else U

    def call_func(self, fn: Func, args: list, kwargs: dict) -> frozenset:
        """The value ``fn`` returns, reading its body with the arguments bound (its steps happen here)."""
        node = fn.node
        if node in self.calls or len(self.calls) >= MAX_DEPTH:
            return U
        self.called.add(node)
        saved = self.scope, self.cell, self.lines
        self.scope, self.cell, self.lines = self.bind(fn, args, kwargs), fn.cell, fn.lines
        self.calls.append(node)
        self.returns.append([])
        try:
            if isinstance(node, ast.Lambda):
                return self.eval(node.body)
            self.block(node.body)
            result = union(*self.returns[-1]) if self.returns[-1] else one(NONE)
            if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(node)):
                made = Box("list", None, tuple(self.loops))  # a generator: what it yields, to iterate over
                made.add(result)
                result = one(made)
            return result
        finally:
            self.calls.pop()
            self.returns.pop()
            self.scope, self.cell, self.lines = saved

    def bind(self, fn: Func, args: list, kwargs: dict):
        """A scope for one call of ``fn``: parameters bound to the arguments, defaults, or unknown."""
        scope = type(self.scope)(fn.scope)
        spec = fn.node.args
        positional = spec.posonlyargs + spec.args
        given = ([one(fn.self_value)] if fn.self_value is not None else []) + list(args)
        known = given[:given.index(None)] if None in given else given
        first_default = len(positional) - len(spec.defaults)
        for i, param in enumerate(positional):
            default = fn.defaults[i - first_default] if i >= first_default and len(known) == len(given) else U
            scope.set(param.arg, known[i] if i < len(known) else kwargs.get(param.arg, default))
        for i, param in enumerate(spec.kwonlyargs):
            scope.set(param.arg, kwargs.get(param.arg, fn.defaults[len(spec.defaults) + i]))
        if spec.vararg:
            scope.set(spec.vararg.arg, one(Box("tuple", None, (), known[len(positional):])))
        if spec.kwarg:
            extra = Box("dict", None, ())
            for key, value in kwargs.items():
                extra.add(value, key)
            scope.set(spec.kwarg.arg, one(extra))
        return scope
