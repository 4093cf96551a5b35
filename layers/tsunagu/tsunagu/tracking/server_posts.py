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
API and the tracking function may read, and rotating it is a new key id. The key id it replaced
is kept beside it with when it stops being accepted (PREVIOUS_SECRET_OVERLAP, as Stripe rolls a
webhook secret): a site with several servers cannot switch them all at one instant, and a post
signed with the old secret meanwhile would be refused and its events lost. One previous secret
only: a second rotation inside the overlap ends the first one's. An admin rotating because a
secret leaked revokes the previous one at once instead (commands.sites).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tsunagu.signed_requests import SignatureRejected, VerifiedRequest, verify_signature_by_any
from tsunagu.tracking.stored_sites import StoredSite

SECRET_PREFIX = "tss_"  # noqa: S105 - a prefix, not a secret
"""Marks a site's secret where it is pasted (a server's settings, a secret scanner's rules)."""

PREVIOUS_SECRET_OVERLAP = timedelta(hours=24)
"""How long the secret a rotation replaced is still accepted: a day for every server of the site
to take the new one (a deploy, a restart), as Stripe's webhook secret roll allows."""


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
    """Prove ``post`` was signed with ``site``'s current secret (or the one it replaced, until
    that one's overlap ends at ``now``), at most the tolerance from ``now``. SignatureRejected
    or StaleRequest (401) otherwise. ``master`` is called only here, so an unsigned post costs
    no read of the key."""
    if site.signing_keys is None:
        raise SignatureRejected(
            f"site {site.site_id!r} has no signing secret: an admin creates one"
            f" (POST /admin/sites/{site.site_id}/signing-secret, or"
            f" tsunagu sites rotate-secret {site.site_id}), or send the events from a browser"
        )
    key = master()
    key_ids = site.signing_keys.accepted_key_ids(now)
    accepted = [site_secret(key, site.site_id, key_id).encode() for key_id in key_ids]
    return verify_signature_by_any(accepted, post.timestamp, post.body, post.signature, now)
