"""Files a student controls, read within limits: a breach is a ValueError saying why, never a crash or a hang.

``read_bytes`` refuses a pipe, device or socket before opening it (opening a FIFO for reading blocks until
someone writes) and reads at most a given number of bytes.

``json.loads`` alone lets a 5,000-digit integer through as a ValueError of its own, deep nesting as a
RecursionError (or, below the recursion limit, into the grader's recursive readers), and a small file
of ``[],[],...`` expands twenty-fold in memory. Here the number of values is bounded before parsing (by
counting the characters that can start one, an upper bound), integers by their digits while parsing, and
nesting after it, by an iterative walk.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pathlib
import stat
from dataclasses import dataclass
from typing import Any


class UnreadableFile(ValueError):
    """The file cannot be read as data; the message completes "the file ...": "is a pipe, device or socket"."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # missing, folder, special (pipe, device, socket), large, or unreadable


def read_bytes(path: pathlib.Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (a link is followed), at most ``limit`` of them."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UnreadableFile("does not exist", "missing") from None
    except OSError as e:
        raise UnreadableFile(f"cannot be read ({e.strerror})", "unreadable") from None
    if stat.S_ISDIR(info.st_mode):
        raise UnreadableFile("is a folder", "folder")
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile("is not a regular file (a device, pipe or socket)", "special")
    if info.st_size > limit:
        raise UnreadableFile(f"is {info.st_size / 2**20:.0f} MB, more than the limit of {limit / 2**20:g} MB", "large")
    try:
        # Non-blocking: should the file have become a pipe since stat(), open() still returns at once.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise UnreadableFile(f"cannot be read ({e.strerror})", "unreadable") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise UnreadableFile("is not a regular file (a device, pipe or socket)", "special")
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise UnreadableFile(f"is more than the limit of {limit / 2**20:g} MB", "large")
    return raw


class JsonLimitError(ValueError):
    """The text is not JSON the grader reads; the message completes "the file ...": "is nested too deeply"."""


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int = 100  # containers inside containers; the exporter writes at most about 60
    max_values: int = 1_000_000  # each value costs 50-200 bytes once parsed
    max_int_digits: int = 1000  # Python refuses more than 4,300 digits, with a ValueError of its own


def count_upper_bound(text: str) -> int:
    """At least the number of values in the JSON ``text``, counted without parsing it."""
    # Every value but the first follows a comma, a colon or an opening bracket; strings may add a few more.
    return 1 + text.count(",") + text.count(":") + text.count("[") + text.count("{")


def _walk_depth(value: Any, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise JsonLimitError(f"is nested more than {max_depth} levels deep")
        for child in item.values() if type(item) is dict else item:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))


@contextlib.contextmanager
def _no_gc():
    """The cyclic collector off while a million fresh containers are made: it would scan them again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def loads(text: str, limits: JsonLimits = JsonLimits()) -> Any:
    """Parse ``text``; raises ``JsonLimitError`` (a ValueError) for invalid JSON and for any limit it breaks."""
    if count_upper_bound(text) > limits.max_values:
        raise JsonLimitError(f"holds more than {limits.max_values:,} values")

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.max_int_digits:
            raise JsonLimitError(f"holds a number with more than {limits.max_int_digits} digits")
        return int(digits)

    try:
        with _no_gc():
            value = json.loads(text, parse_int=integer)
            if isinstance(value, (dict, list)):
                _walk_depth(value, limits.max_depth)
    except JsonLimitError:
        raise
    except RecursionError:
        raise JsonLimitError(f"is nested more than {limits.max_depth} levels deep") from None
    except MemoryError:
        raise JsonLimitError("does not fit in the grader's memory") from None
    except ValueError as e:  # JSONDecodeError, and Python's own refusals
        raise JsonLimitError(f"is not valid JSON: {e}") from None
    return value
