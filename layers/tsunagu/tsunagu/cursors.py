"""Opaque cursors for paged lists: what the next page starts from, as a URL-safe string a client
hands back unchanged. A cursor that was not made here, or for another list, is a 422."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from tsunagu.errors import FieldError, ValidationFailed


def encode_cursor(position: dict[str, Any]) -> str:
    text = json.dumps(position, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The position; ValidationFailed for anything that is not a cursor of ours."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise not_a_cursor() from None
    if not isinstance(value, dict):
        raise not_a_cursor()
    return value


def not_a_cursor() -> ValidationFailed:
    return ValidationFailed([FieldError("cursor", "not a cursor of this list")])


PAGE_KEY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,15}Z#[A-Za-z0-9_-]{1,80}")
"""A ``next_before`` as the lists that page back in time give it (an event's storage key, an audit
entry's page key): an instant and an id. Checked before it reaches a key condition."""


def checked_page_key(key: str, field: str = "before") -> str:
    """``key`` when it is a ``next_before`` (see PAGE_KEY); ValidationFailed naming ``field``."""
    if not PAGE_KEY.fullmatch(key):
        raise ValidationFailed([FieldError(field, "is not a next_before this list gave")])
    return key
