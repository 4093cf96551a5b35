"""A site's signing secret, which its own server signs tracking posts with (server-side
tracking: tsunagu.tracking.server_posts). Created or rotated by an admin - it lets a server say
what a person did - shown once, and audited without the secret."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, recorded
from tsunagu.errors import NotFound
from tsunagu.tracking.server_posts import new_key_id, site_secret
from tsunagu.tracking.stored_sites import is_site_id


class SiteSigningKeys(Protocol):
    def signing_key(self, site_id: str, /) -> tuple[str, str] | None:
        """The site's signing key id and when it was made; None when it has none, NotFound
        when there is no such site (before any key is read)."""
        ...

    def set_signing_key(self, site_id: str, key_id: str, created_at: str, /) -> None:
        """NotFound when there is no such site."""
        ...


@dataclass(frozen=True)
class SiteCommands:
    audit: AuditLog
    clock: Clock
    sites: SiteSigningKeys
    master_key: Callable[[], bytes]
    """The stack's site-signing key (Secrets Manager), read only when a secret is made."""


@dataclass(frozen=True)
class SigningSecret:
    site_id: str
    secret: str
    """Shown this once: Tsunagu keeps only ``key_id``."""
    key_id: str
    created_at: str
    replaced: bool
    """True when the site had a secret, which no longer verifies."""

    def as_body(self) -> dict[str, object]:
        return {
            "site_id": self.site_id,
            "secret": self.secret,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "replaced": self.replaced,
        }


def rotate_signing_secret(ports: SiteCommands, actor: Actor, site_id: str) -> SigningSecret:
    """Give the site a new signing secret (its first, or one in place of the current: the old
    one stops verifying as soon as the tracking functions read the site again: at once in a
    new one, within ``form_cache_seconds`` (30 s) in a warm one). NotFound for a site no one
    registered."""
    with recorded(ports.audit, ports.clock, actor, "sites.rotate_secret", f"site:{site_id}") as log:
        if not is_site_id(site_id):  # no such site can be stored; and no key DynamoDB refuses
            raise NotFound(f"no site with id {site_id[:64]!r}")
        before = ports.sites.signing_key(site_id)
        key_id = new_key_id()
        created_at = isoformat(ports.clock.now())
        # Made before it is stored: if the key cannot be read, the site keeps its old secret
        # rather than getting one nobody was shown.
        secret = site_secret(ports.master_key(), site_id, key_id)
        ports.sites.set_signing_key(site_id, key_id, created_at)
        # The key ids say which secret was current; the secret itself never reaches the log.
        log.changed({"signing_key_id": before[0]} if before else {}, {"signing_key_id": key_id})
        log.detail = "rotated" if before else "created"
    return SigningSecret(site_id, secret, key_id, created_at, replaced=before is not None)
