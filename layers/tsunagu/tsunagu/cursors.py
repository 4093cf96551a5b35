"""Opaque cursors for paged lists: what the next page starts from, as a URL-safe string a client
hands back unchanged. A cursor that was not made here, or for another list, is a 422."""

from __future__ import annotations

import base64
import binascii
import json
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
