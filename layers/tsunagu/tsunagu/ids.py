"""Identifiers: time-ordered, URL-safe, unguessable (ULID layout, Crockford base32)."""

from __future__ import annotations

import secrets
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rest = divmod(number, 32)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def new_ulid(at: datetime) -> str:
    millis = int(at.timestamp() * 1000)
    return _encode(millis, 10) + _encode(secrets.randbits(80), 16)


def new_id(prefix: str, at: datetime) -> str:
    """``prefix`` + ``_`` + a ULID, e.g. ``lead_01JD...``: readable in logs, sortable by time."""
    return f"{prefix}_{new_ulid(at)}"
