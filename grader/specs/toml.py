"""Read TOML tables with typed getters whose errors name the file and the field.

>>> t = Table({"points": "four"}, pathlib.Path("spec.toml"), "checks[1].")
>>> t.number("points")
Traceback (most recent call last):
...
grader.specs.toml.SpecError: spec.toml: checks[1].points: expected a non-negative number, got 'four'
"""

from __future__ import annotations

import pathlib
from typing import Any

from grader.errors import UserError

try:
    import tomllib  # novermin - Python 3.10 has the same parser as the tomli backport, below
except ModuleNotFoundError:
    import tomli as tomllib


class SpecError(UserError, ValueError):
    """A spec or quiz file that cannot be used; the message names the file and the field."""

    @classmethod
    def at(cls, path: pathlib.Path | str, where: str, problem: str) -> SpecError:
        return cls(f"{path}: {where}: {problem}")


def load_toml(path: pathlib.Path) -> dict:
    """The file's data; SpecError when it is unreadable or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None


def type_names(types: type | tuple[type, ...]) -> str:
    """How an author reads a field's type: ``(int, float)`` is "a number"."""
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
             dict: "a table"}
    types = tuple(t for t in as_tuple(types) if not (t is int and float in as_tuple(types)))
    return " or ".join(names.get(t, t.__name__) for t in types)


def as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def is_instance(value: Any, types: type | tuple[type, ...]) -> bool:
    """isinstance, except that true/false is not a number: TOML's ``points = true`` is a typo, not 1."""
    return isinstance(value, types) and (not isinstance(value, bool) or bool in as_tuple(types))


class Table:
    """A TOML table with typed getters that raise SpecError naming file and field."""

    def __init__(self, data: dict, path: pathlib.Path, where: str) -> None:
        self.data, self.path, self.where = data, path, where
        self.used: set[str] = set()

    def fail(self, key: str, problem: str) -> SpecError:
        return SpecError.at(self.path, f"{self.where}{key}" if self.where else key, problem)

    def get(self, key: str, types: type | tuple[type, ...], default: Any = ..., expected: str = "") -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "required field is missing")
            return default
        value = self.data[key]
        if not is_instance(value, types):
            raise self.fail(key, f"expected {expected or type_names(types)}, got {value!r}")
        return value

    def number(self, key: str, default: Any = ..., minimum: float = 0.0) -> float:
        value = self.get(key, (int, float), default, expected="a non-negative number")
        if value is not default and value < minimum:
            raise self.fail(key, f"expected a number >= {minimum}, got {value!r}")
        return value

    def choice(self, key: str, options, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise self.fail(key, f"expected one of {', '.join(sorted(options))}, got {value!r}")
        return value

    def text(self, key: str) -> str:
        """A required string that is not blank."""
        value = self.get(key, str).strip()
        if not value:
            raise self.fail(key, "must not be empty")
        return value

    def table(self, key: str) -> Table:
        return Table(self.get(key, dict, {}), self.path, f"{self.where}{key}.")

    def tables(self, key: str) -> list[Table]:
        items = self.get(key, list, [])
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", f"expected a table, got {item!r}")
            out.append(Table(item, self.path, f"{self.where}{key}[{i}]."))
        return out

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown field (a typo?)")
