"""Web origins (scheme://host[:port]), as browsers send them in the Origin header."""

from __future__ import annotations

from urllib.parse import urlsplit


def check_origin(origin: str) -> str:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"{origin!r} is not an origin like https://www.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"
