"""Signed tokens for mail links and open pixels.

A token names the message, the lead and (for a click) the link and its destination, and carries
an HMAC so that nobody can forge one, alter its destination or point it at another lead. The
destination lives inside the signed token: a click can only ever redirect to where Tsunagu sent
it, never to an address taken from the request.

Layout: ``<key id>.<base64url(JSON payload)>.<base64url(HMAC-SHA256 truncated to 128 bits)>``.
The key id lets a key be rotated while mail sent with the old one keeps working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

MAX_TOKEN_LENGTH = 4096
# One encoder for every token: json.dumps builds a new one per call (a mail signs dozens).
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_SIGNATURE_BYTES = 16


class TokenKind(StrEnum):
    OPEN = "o"
    CLICK = "c"
    HONEYPOT = "h"
    """A link in every mail that no person can see; anything that follows it is a machine."""
    UNSUBSCRIBE = "u"
    """The personal unsubscribe and preference link (its topic is the mail's topic)."""


class InvalidToken(ValueError):
    """Forged, altered, truncated, or signed with a key Tsunagu does not have."""


@dataclass(frozen=True)
class TrackingToken:
    kind: TokenKind
    message_id: str
    lead_id: str
    sent_at: int
    """Epoch seconds the mail was handed to SES: the basis of "too soon after delivery"."""
    url: str | None = None
    link_id: str | None = None
    topic: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "k": self.kind.value,
            "m": self.message_id,
            "l": self.lead_id,
            "t": self.sent_at,
        }
        if self.url is not None:
            data["u"] = self.url
        if self.link_id is not None:
            data["i"] = self.link_id
        if self.topic is not None:
            data["p"] = self.topic
        return data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_redirectable(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class TokenSigner:
    """Signs with the current key; verifies with any key it has (old keys during rotation)."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"no signing key with id {current!r}")
        if any(len(key) < 32 for key in keys.values()):
            raise ValueError("signing keys must have at least 32 bytes")
        self._keys = dict(keys)
        self._current = current

    def _signature(self, key_id: str, body: str) -> str:
        digest = hmac.digest(self._keys[key_id], f"{key_id}.{body}".encode(), hashlib.sha256)
        return _b64(digest[:_SIGNATURE_BYTES])

    def sign(self, token: TrackingToken) -> str:
        if token.kind in (TokenKind.CLICK, TokenKind.HONEYPOT) and (
            token.url is None or not is_redirectable(token.url)
        ):
            raise ValueError("a link token needs an absolute http(s) destination")
        body = _b64(_COMPACT_JSON.encode(token.payload()).encode())
        return f"{self._current}.{body}.{self._signature(self._current, body)}"

    def verify(self, text: str) -> TrackingToken:
        if len(text) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too long")
        parts = text.split(".")
        if len(parts) != 3 or parts[0] not in self._keys or not all(map(_B64URL.match, parts)):
            raise InvalidToken("not a Tsunagu token")
        key_id, body, signature = parts
        if not hmac.compare_digest(self._signature(key_id, body), signature):
            raise InvalidToken("bad signature")
        try:
            data = json.loads(_unb64(body))
            token = TrackingToken(
                kind=TokenKind(data["k"]),
                message_id=str(data["m"]),
                lead_id=str(data["l"]),
                sent_at=int(data["t"]),
                url=data.get("u"),
                link_id=data.get("i"),
                topic=data.get("p"),
            )
        except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise InvalidToken("unreadable payload") from None
        if token.url is not None and not is_redirectable(token.url):
            raise InvalidToken("destination is not an http(s) URL")
        return token
