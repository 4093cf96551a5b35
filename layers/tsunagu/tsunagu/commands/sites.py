"""A site's signing secret, which its own server signs tracking posts with (server-side
tracking: tsunagu.tracking.server_posts). Created or rotated by an admin - it lets a server say
what a person did - shown once, and audited without the secret. A rotation keeps the secret it
replaced accepted for a day (the servers switching meanwhile), unless the admin revokes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, recorded
from tsunagu.errors import NotFound
from tsunagu.tracking.server_posts import PREVIOUS_SECRET_OVERLAP, new_key_id, site_secret
from tsunagu.tracking.stored_sites import SigningKeys, is_site_id


class SiteSigningKeys(Protocol):
    def signing_keys(self, site_id: str, /) -> SigningKeys | None:
        """The site's signing keys; None when it has none, NotFound when there is no such site
        (before any key is read)."""
        ...

    def set_signing_keys(
        self, site_id: str, keys: SigningKeys, /, *, replacing: str | None
    ) -> None:
        """Only while the site's current key id is ``replacing`` (ConcurrentUpdate otherwise);
        NotFound when there is no such site."""
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
    """True when the site had a secret, which this one replaces."""
    previous_accepted_until: str | None
    """Until when the secret replaced is still accepted (PREVIOUS_SECRET_OVERLAP after now);
    None when none was replaced, or it was revoked at once."""
    ended_overlap_until: str | None
    """An earlier rotation's replaced secret, still accepted until then, which this rotation
    ended (one previous secret only); None when there was none."""

    def as_body(self) -> dict[str, object]:
        return {
            "site_id": self.site_id,
            "secret": self.secret,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "replaced": self.replaced,
            "previous_secret_accepted_until": self.previous_accepted_until,
            "ended_overlap_until": self.ended_overlap_until,
        }


def rotate_signing_secret(
    ports: SiteCommands, actor: Actor, site_id: str, *, revoke_previous: bool = False
) -> SigningSecret:
    """Give the site a new signing secret: its first, or one in place of the current, which is
    still accepted for PREVIOUS_SECRET_OVERLAP (24 hours) so that every server of the site can
    switch. One previous secret only: a rotation inside an overlap ends the earlier secret's at
    once. ``revoke_previous`` (a leaked secret): the one replaced, and any earlier one, stop
    being accepted as soon as the tracking functions read the site again (at once in a new one,
    within ``form_cache_seconds``, 30 s, in a warm one). NotFound for a site no one registered;
    ConcurrentUpdate if another rotation of the site landed meanwhile."""
    with recorded(ports.audit, ports.clock, actor, "sites.rotate_secret", f"site:{site_id}") as log:
        if not is_site_id(site_id):  # no such site can be stored; and no key DynamoDB refuses
            raise NotFound(f"no site with id {site_id[:64]!r}")
        before = ports.sites.signing_keys(site_id)
        now = ports.clock.now()
        key_id = new_key_id()
        created_at = isoformat(now)
        # Made before it is stored: if the key cannot be read, the site keeps its old secret
        # rather than getting one nobody was shown.
        secret = site_secret(ports.master_key(), site_id, key_id)
        replacing = before.key_id if before is not None else None
        # One previous secret only: an earlier rotation's, still accepted, is dropped here
        ended = before.previous_accepted_at(now) if before is not None else None
        until = None
        if replacing is not None and not revoke_previous:
            until = isoformat(now + PREVIOUS_SECRET_OVERLAP)
        keys = SigningKeys(key_id, created_at, replacing if until else None, until)
        ports.sites.set_signing_keys(site_id, keys, replacing=replacing)
        # The key ids say which secrets were accepted; the secrets themselves never reach the log.
        log.changed(_logged(before, now), _logged(keys, now))
        log.detail = _detail(before, until, ended, revoke_previous)
    return SigningSecret(site_id, secret, key_id, created_at, before is not None, until, ended)


def _logged(keys: SigningKeys | None, now: datetime) -> dict[str, object]:
    if keys is None:
        return {}
    logged: dict[str, object] = {"signing_key_id": keys.key_id}
    until = keys.previous_accepted_at(now)
    if until is not None:
        logged |= {
            "previous_signing_key_id": keys.previous_key_id,
            "previous_accepted_until": until,
        }
    return logged


def _detail(
    before: SigningKeys | None, until: str | None, ended: str | None, revoke_previous: bool
) -> str:
    if before is None:
        return "created"
    said = [
        f"the replaced secret accepted until {until}"
        if until is not None
        else "the replaced secret revoked at once"
    ]
    if ended is not None:
        how = "revoked" if revoke_previous else "ended"
        said.append(f"the secret before it, accepted until {ended}, {how} at once")
    return "rotated: " + "; ".join(said)
