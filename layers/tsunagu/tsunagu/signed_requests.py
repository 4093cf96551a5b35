"""Requests signed with a shared secret, like Stripe's webhooks: the CRM's webhooks (both
directions) and a site's server posting tracking events.

The sender puts the Unix time in ``x-tsunagu-timestamp`` and ``v1=<hex HMAC-SHA256 of
"<timestamp>." + body>`` in ``x-tsunagu-signature``. The timestamp is inside the signature, so an
old request cannot be re-dated; requests older (or newer) than the tolerance are refused, and
within it a caller that must not apply a request twice remembers each request's replay key.

No pydantic here: the tracking function imports this, and keeps pydantic out of its cold start
(README, Deploying to AWS).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tsunagu.clock import isoformat
from tsunagu.errors import FieldError, IdempotencyConflict, Unauthenticated, ValidationFailed

SIGNATURE_SCHEME = "v1"
TIMESTAMP_HEADER = "x-tsunagu-timestamp"
SIGNATURE_HEADER = "x-tsunagu-signature"
DEFAULT_TOLERANCE_SECONDS = 300
MIN_SECRET_BYTES = 16
_TIMESTAMP = re.compile(r"^\d{1,12}$")
_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class SignatureRejected(Unauthenticated):
    """The request is not proven to come from who holds the secret: no signature, a malformed
    one, or one that does not match the body. HTTP 401 through its base."""


class StaleRequest(SignatureRejected):
    """Correctly signed, but the timestamp is outside the tolerance (a replay of an old
    request, or a sender whose clock is far off). HTTP 401, like its base."""


class ReplayedRequest(IdempotencyConflict):
    """This exact signed request was already accepted. HTTP 409 through its base."""


@dataclass(frozen=True)
class VerifiedRequest:
    timestamp: datetime
    replay_key: str
    """Store it until ``keep_until``; a second request with the same key is a replay."""
    keep_until: datetime
    """After this the timestamp check refuses the request anyway, so the key can expire."""

    def refuse_a_change_dated_later(self, updated_at: datetime) -> None:
        """A record cannot have changed after the request reporting it was signed (give or take
        the tolerance, for the two clocks): a later ``updated_at`` is a CRM's bug (milliseconds
        read as seconds, a 2099-12-31 default) which, kept, would make every real update of the
        record look older, and be refused, until that date. ValidationFailed (422)."""
        if updated_at > self.keep_until:
            raise ValidationFailed(
                [
                    FieldError(
                        "updated_at",
                        f"{isoformat(updated_at)} is later than the request was signed "
                        f"({isoformat(self.timestamp)}, plus the tolerance): send when the CRM "
                        "record really changed; nothing was changed",
                    )
                ]
            )


def _digest(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        # A configuration mistake, not the sender's: never a 401.
        raise ValueError(f"a signing secret needs at least {MIN_SECRET_BYTES} bytes")


def signature_header(secret: bytes, timestamp: str, body: bytes) -> str:
    """The header value a sender puts on a request (tests, the CLI, Tsunagu's outbound
    webhook)."""
    _check_secret(secret)
    return f"{SIGNATURE_SCHEME}={_digest(secret, timestamp, body)}"


def replay_key(timestamp: str, signature: str) -> str:
    """The key a request is remembered by: the timestamp and the hex signature, hashed so the
    key has a fixed size. Pass the signature Tsunagu computed, not the header text: a header
    with extra entries or upper-case hex must not make a replay look new."""
    return hashlib.sha256(f"{timestamp}.{signature.lower()}".encode()).hexdigest()


def _offered_signatures(header: str) -> list[str]:
    """The ``v1`` entries of ``v1=<hex>[, v1=<hex>...]`` (several while a secret rotates);
    entries of other schemes are ignored so a sender can add a newer scheme first."""
    offered = []
    for part in header.split(","):
        scheme, separator, value = part.strip().partition("=")
        if separator and scheme.strip() == SIGNATURE_SCHEME and _HEX_SHA256.match(value.strip()):
            offered.append(value.strip().lower())
    return offered


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature_header: str,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> VerifiedRequest:
    """Prove the request came from who holds ``secret``, recently. Raises
    :class:`SignatureRejected` or :class:`StaleRequest`; the caller then checks the replay key
    if a repeat must not count twice.

    The signature is checked before the time, so only a sender who knows the secret learns that
    its clock is off.
    """
    return verify_signature_by_any(
        (secret,), timestamp, body, signature_header, now, tolerance_seconds
    )


def verify_signature_by_any(
    secrets: Sequence[bytes],
    timestamp: str,
    body: bytes,
    signature_header: str,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> VerifiedRequest:
    """As :func:`verify_signature`, taking a request signed with any one of ``secrets`` (a
    site's current secret, then the one it replaced while that is still accepted). The replay
    key is the first matching secret's signature, so a post signed with both is one request
    however its entries are ordered."""
    if not secrets:
        raise ValueError("at least one secret is needed")
    for secret in secrets:
        _check_secret(secret)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    timestamp = (timestamp or "").strip()
    if not _TIMESTAMP.match(timestamp):
        raise SignatureRejected(f"the {TIMESTAMP_HEADER} header must be Unix seconds")
    offered = _offered_signatures(signature_header or "")
    if not offered:
        raise SignatureRejected(
            f"the {SIGNATURE_HEADER} header must be {SIGNATURE_SCHEME}=<hex HMAC>"
        )
    # Every entry is compared with every secret's digest, each in constant time: timing says
    # nothing about which matched.
    expected = [_digest(secret, timestamp, body) for secret in secrets]
    compared = [[hmac.compare_digest(d, candidate) for candidate in offered] for d in expected]
    matched = [digest for digest, results in zip(expected, compared, strict=True) if any(results)]
    if not matched:
        raise SignatureRejected("the signature does not match the body")
    # Compared as seconds: twelve digits reach the year 33658, past what a datetime holds.
    if abs(int(timestamp) - now.timestamp()) > tolerance_seconds:
        raise StaleRequest(
            f"the request was signed at Unix time {timestamp}, more than "
            f"{tolerance_seconds} seconds from now; send it again with a fresh signature"
        )
    signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    tolerance = timedelta(seconds=tolerance_seconds)
    return VerifiedRequest(signed_at, replay_key(timestamp, matched[0]), signed_at + tolerance)
