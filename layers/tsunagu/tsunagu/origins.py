"""Web origins (scheme://host[:port]), as browsers send them in the Origin header."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit


def check_origin(origin: str) -> str:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"{origin!r} is not an origin like https://www.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def origin_allowed(origin: str, allowed: Collection[str]) -> bool:
    """Whether a request's Origin header names one of ``allowed`` (normalised as check_origin
    normalises them when a form or site is saved); an unreadable origin is not allowed."""
    try:
        return check_origin(origin) in allowed
    except ValueError:
        return False
