"""The data checks measure on, made in the grader's process (hidden sets never enter a kernel).

A check names its data in the spec, e.g. ``{kind = "checkerboard", n_per_cell = 20,
noise = 0.1, seed = 0}``; ``seed = "hidden"`` draws the seed from the instructor secret.
``{kind = "mnist", split = "train"}`` reads the grader's MNIST root (the one the kernel
was shown read-only), pixels exactly as ``ToTensor`` gives them. Each data kind is one
entry of ``DATA_KINDS``: its fields, their validation, and how to make the data.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grader.specs.toml import is_instance, type_names


class DataUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Tensors:
    X: Any  # torch.Tensor of inputs, (n, *sample_shape)
    Y: Any  # torch.Tensor of class labels, (n,)


@dataclass(frozen=True)
class Field:
    types: type | tuple[type, ...]
    default: Any
    allowed: Callable[[Any], bool] = lambda value: True
    expected: str = ""  # how an error names the allowed values


def _seed(value: Any) -> bool:
    return value == "hidden" or is_instance(value, int) and value >= 0


@dataclass(frozen=True)
class DataKind:
    doc: str
    fields: dict[str, Field]
    make: Callable[[DataFactory, dict, str], Any]  # (factory, description with defaults filled in, label)


@dataclass
class DataFactory:
    """Makes the data sets specs describe, once each per grading (hidden ones from the instructor secret)."""

    hidden_seed: Callable[[str], int] | None = None
    data_root: pathlib.Path | None = None
    _cache: dict = field(default_factory=dict)

    def seed_for(self, desc: dict, label: str) -> int:
        seed = desc.get("seed", 0)
        if seed == "hidden":
            if self.hidden_seed is None:
                raise DataUnavailable("hidden data needs the instructor secret")
            return self.hidden_seed(label)
        return int(seed)

    def make(self, desc: dict, label: str = "") -> Any:
        """The dataset ``desc`` describes; ``label`` tells hidden sets of different checks apart."""
        kind = DATA_KINDS.get(desc.get("kind"))
        if kind is None:  # specs are validated on load; this is a caller's mistake
            raise DataUnavailable(f"unknown data kind {desc.get('kind')!r}")
        full = {name: desc.get(name, f.default) for name, f in kind.fields.items()}
        return kind.make(self, full, label)

    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


def _checkerboard(factory: DataFactory, desc: dict, label: str) -> Any:
    from reference.data import generate_checkerboard_dataset

    seed = factory.seed_for(desc, label)
    return factory.cached(("checkerboard", desc["n_per_cell"], desc["noise"], seed),
                          lambda: generate_checkerboard_dataset(int(desc["n_per_cell"]), float(desc["noise"]), seed))


def _mnist(factory: DataFactory, desc: dict, label: str) -> Tensors:
    from reference.mnist.data import MnistNotFound, load_mnist_tensors

    if factory.data_root is None:
        raise DataUnavailable(f"MNIST split {desc['split']!r} needs the grader's data root (--data-root)")

    def load() -> Tensors:
        try:
            data = load_mnist_tensors(factory.data_root, train=desc["split"] == "train")
        except (MnistNotFound, FileNotFoundError) as e:
            raise DataUnavailable(str(e)) from None
        return Tensors(data.x, data.y)

    return factory.cached(("mnist", str(factory.data_root), desc["split"]), load)


DATA_KINDS: dict[str, DataKind] = {
    "checkerboard": DataKind(
        "the unit's noisy 3x3 checkerboard (reference.data.generate_checkerboard_dataset)",
        {"n_per_cell": Field(int, 20, lambda n: n >= 1, "a positive integer"),
         "noise": Field((int, float), 0.5, lambda x: x >= 0, "a non-negative number"),
         "seed": Field((int, str), 0, _seed, 'a non-negative integer or "hidden"')},
        _checkerboard),
    "mnist": DataKind(
        "a split of the grader's MNIST root, pixels as ToTensor gives them",
        {"split": Field(str, "test", lambda s: s in ("train", "test"), '"train" or "test"')},
        _mnist),
}


def data_problem(desc: Any) -> str | None:
    """Why a spec's data description is unusable, for the author; None when it is fine."""
    if not isinstance(desc, dict):
        return f"expected a table such as {{kind = \"checkerboard\", ...}}, got {desc!r}"
    kind = DATA_KINDS.get(desc.get("kind"))
    if kind is None:
        return f"expected a data kind, one of {', '.join(sorted(DATA_KINDS))}, got kind = {desc.get('kind')!r}"
    for name, value in desc.items():
        if name == "kind":
            continue
        if name not in kind.fields:
            return f"unknown field {name!r} for {desc['kind']} data (expected {', '.join(kind.fields)})"
        f = kind.fields[name]
        if not is_instance(value, f.types) or not f.allowed(value):
            return f"{name} must be {f.expected or type_names(f.types)}, got {value!r}"
    return None
