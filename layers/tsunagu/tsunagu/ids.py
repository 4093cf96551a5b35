"""Identifiers: time-ordered, URL-safe, unguessable (ULID layout, Crockford base32)."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
# The first id of a millisecond leaves the top bit of its random part clear, so that 2**15 steps
# of up to 2**64 fit after it; a step keeps 64 bits a caller holding the id before cannot guess.
_FIRST_BITS = _RANDOM_BITS - 1
_STEP_BITS = 64


class _Monotonic:
    """The random part of ids made at one millisecond, rising in the order they are made.

    Without it, two records written in one millisecond (an audit entry and the refusal after it,
    two field changes of one request) sort by chance, and a list read newest first could show
    them the wrong way round. The order holds within a process (a Lambda's container, the local
    runtime), which is where one request's writes are made; ids from different containers in one
    millisecond still sort by chance, as no clock orders them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._millis = -1
        self._random = 0

    def next(self, millis: int) -> int:
        with self._lock:
            following = self._random + secrets.randbits(_STEP_BITS) + 1
            if millis != self._millis or following >> _RANDOM_BITS:
                following = secrets.randbits(_FIRST_BITS)
            self._millis, self._random = millis, following
            return following


_monotonic = _Monotonic()


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rest = divmod(number, 32)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def new_ulid(at: datetime) -> str:
    millis = int(at.timestamp() * 1000)
    return _encode(millis, 10) + _encode(_monotonic.next(millis), 16)


def new_id(prefix: str, at: datetime) -> str:
    """``prefix`` + ``_`` + a ULID, e.g. ``lead_01JD...``: readable in logs, sortable by time."""
    return f"{prefix}_{new_ulid(at)}"
