"""Events a site's own server posts (server-side tracking: a purchase the shop's backend
records), proven by a per-site signing secret.

A post without ``Origin`` is no browser's, and nothing proves whose it is: it is judged a
machine's (``no_origin``, tracking.judgement). A site's server proves itself instead by signing
the body as the CRM signs its webhooks (tsunagu.signed_requests: ``x-tsunagu-timestamp`` and
``x-tsunagu-signature: v1=<hex HMAC-SHA256 of "<timestamp>." + body>``); a correctly signed post
is the site's own word about its visitor and is judged a person's.

The site's secret is never stored. It is derived from the stack's one site-signing key (in
Secrets Manager, beside the CRM webhook's) and the site's key id, a random value kept with the
site: the sites table alone gives no secret, showing it again needs the key that only the admin
API and the tracking function may read, and rotating it is a new key id (the old secret stops
working once the tracking functions read the site again: within 30 s, their site cache).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tsunagu.signed_requests import SignatureRejected, VerifiedRequest, verify_signature
from tsunagu.tracking.stored_sites import StoredSite

SECRET_PREFIX = "tss_"  # noqa: S105 - a prefix, not a secret
"""Marks a site's secret where it is pasted (a server's settings, a secret scanner's rules)."""


@dataclass(frozen=True)
class SignedPost:
    """What a request offers as proof: its two headers, and the body as it was received."""

    timestamp: str
    signature: str
    body: bytes


def new_key_id() -> str:
    return secrets.token_hex(16)


def site_secret(master: bytes, site_id: str, key_id: str) -> str:
    """The secret a site's server signs with: what the admin is shown once."""
    digest = hmac.new(master, f"site-signing:{site_id}:{key_id}".encode(), hashlib.sha256)
    return SECRET_PREFIX + digest.hexdigest()


def verify_server_post(
    site: StoredSite, post: SignedPost, master: Callable[[], bytes], now: datetime
) -> VerifiedRequest:
    """Prove ``post`` was signed with ``site``'s current secret, at most the tolerance from
    ``now``. SignatureRejected or StaleRequest (401) otherwise. ``master`` is called only
    here, so an unsigned post costs no read of the key."""
    if site.signing_key_id is None:
        raise SignatureRejected(
            f"site {site.site_id!r} has no signing secret: an admin creates one"
            f" (POST /admin/sites/{site.site_id}/signing-secret, or"
            f" tsunagu sites rotate-secret {site.site_id}), or send the events from a browser"
        )
    secret = site_secret(master(), site.site_id, site.signing_key_id)
    return verify_signature(secret.encode(), post.timestamp, post.body, post.signature, now)
