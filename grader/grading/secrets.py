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
    """The secret from a file (first line, stripped) or the environment; None when neither is set."""
    if secret_file is not None:
        try:
            text = pathlib.Path(secret_file).read_text().strip()
        except OSError as e:
            raise SecretError(f"cannot read the secret file {secret_file}: {e.strerror}") from None
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


def fingerprint(secret: bytes) -> str:
    """A short public name for a secret, stored with every result: an HMAC of a fixed label, never the secret.

    >>> fingerprint(b"s3cret") == fingerprint(b"s3cret") != fingerprint(b"other")
    True
    >>> len(fingerprint(b"s3cret"))
    12
    """
    return hmac.new(secret, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:12]
