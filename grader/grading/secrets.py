"""The instructor secret behind hidden checks, and the seeds derived from it.

The secret is read in the grader's process only: from ``--secret-file`` or the
``GRADER_SECRET`` environment variable. The kernel's environment is built from an
allowlist, so the variable never reaches it. Seeds are HMAC-SHA256 of the exercise
and check ids, so knowing one hidden seed reveals nothing about another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pathlib
from collections.abc import Callable, Mapping

from grader.errors import UserError

ENV_VAR = "GRADER_SECRET"
FINGERPRINT_LABEL = b"grader/secret-fingerprint/v1"  # fixed: the same secret always gives the same fingerprint


class SecretError(UserError, ValueError):
    """The secret file cannot be read or is empty, or it is not the secret a gradebook's results used."""


def load_secret(secret_file: str | pathlib.Path | None = None, env: Mapping[str, str] = os.environ) -> bytes | None:
    """The secret from a file (its whole text, stripped) or the environment; None when neither is set.

    The whole text, not its first line: a secret read so since the first gradebook must keep its fingerprint.
    """
    if secret_file is not None:
        try:
            text = pathlib.Path(secret_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SecretError(f"cannot read the secret file {secret_file}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise SecretError(f"the secret file {secret_file} is not text (byte {e.start} is not UTF-8): give the "
                              "file of the secret that graded this class, or a text file with a new one") from None
        if not text:
            raise SecretError(f"the secret file {secret_file} is empty")
        return text.encode()
    value = env.get(ENV_VAR, "").strip()
    return value.encode() if value else None


def hidden_seeds(secret: bytes, exercise_id: str) -> Callable[[str], int]:
    """A function from a label (a check id) to a 31-bit seed, fixed by the secret.

    >>> seed = hidden_seeds(b"s3cret", "tiny-model")
    >>> seed("fresh-data") == seed("fresh-data") != seed("other")
    True
    """

    def seed(label: str) -> int:
        digest = hmac.new(secret, f"{exercise_id}/{label}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

    return seed


def seed_labels(checks) -> tuple[str, ...]:
    """Every label a bound check can ask hidden seeds for: its id for a ``seed = "hidden"`` data set among its
    parameters, ``<id>-<key>`` for one inside a table of data sets (as ``{train = ..., test = ...}``)."""
    labels = []
    for check in checks:
        for value in check.params.values():
            if isinstance(value, dict) and value.get("seed") == "hidden":
                labels.append(check.spec.id)
            elif isinstance(value, dict):
                labels += [f"{check.spec.id}-{key}" for key, item in value.items()
                           if isinstance(item, dict) and item.get("seed") == "hidden"]
    return tuple(dict.fromkeys(labels))


class MissingSeed(LookupError):
    """A check asked for a hidden seed the client did not derive: a grader bug, never the student's."""


def seed_table(seeds: Mapping[str, int], exercise_id: str, misses: list[str] | None = None) -> Callable[[str], int]:
    """``hidden_seeds``'s function from seeds derived beforehand (``{label: seed}``), without the secret.

    A label it lacks raises MissingSeed, and is added to ``misses``: a check may catch the exception, the
    caller still learns of it.

    >>> seed_table({"fresh-data": 7}, "tiny-model")("fresh-data")
    7
    """

    def seed(label: str) -> int:
        try:
            return seeds[label]
        except KeyError:
            if misses is not None:
                misses.append(label)
            raise MissingSeed(f"no hidden seed was derived for {exercise_id}/{label} (derived: "
                              f"{', '.join(sorted(seeds)) or 'none'})") from None

    return seed


def fingerprint(secret: bytes) -> str:
    """A short public name for a secret, stored with every result: an HMAC of a fixed label, never the secret.

    >>> fingerprint(b"s3cret") == fingerprint(b"s3cret") != fingerprint(b"other")
    True
    >>> len(fingerprint(b"s3cret"))
    12
    """
    return hmac.new(secret, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:12]
