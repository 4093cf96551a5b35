"""A site as the tracking function reads it from the store: a plain record, without pydantic.

The definition is validated once, when it is saved (tsunagu.tracking.sites.SiteDefinition, a
pydantic model: the admin API's body, the CLI's file). The tracking function reads it on every
cold start, and importing pydantic there would cost about 50 ms (README, Deploying to AWS), so it
reads the stored document into this record instead. A test keeps the two alike: a field added to
SiteDefinition must be added here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tsunagu.clock import parse_instant
from tsunagu.origins import origin_allowed

SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


def is_site_id(text: str) -> bool:
    """Checked before a look-up: DynamoDB refuses empty or over-long keys with a 500."""
    return re.match(SITE_ID_PATTERN, text) is not None


@dataclass(frozen=True)
class SigningKeys:
    """Which secrets a site's server may sign its posts with (tracking.server_posts), stored
    beside the site's definition: the current key id and when it was made, and the key id the
    last rotation replaced with when it stops being accepted (both None: there is none, or it
    was revoked). Times are ISO text as stored."""

    key_id: str
    created_at: str
    previous_key_id: str | None = None
    previous_accepted_until: str | None = None

    def previous_accepted_at(self, now: datetime) -> str | None:
        """Until when the replaced secret is accepted, if it still is at ``now``; else None.
        ``now`` is the runtime's clock, so the overlap ends on the instant whatever a warm
        function's cache holds."""
        until = self.previous_accepted_until
        if self.previous_key_id is None or until is None or parse_instant(until) <= now:
            return None
        return until

    def accepted_key_ids(self, now: datetime) -> tuple[str, ...]:
        """The key ids a post may be signed with at ``now``: the current one first."""
        if self.previous_key_id is not None and self.previous_accepted_at(now) is not None:
            return (self.key_id, self.previous_key_id)
        return (self.key_id,)


@dataclass(frozen=True)
class StoredSite:
    site_id: str
    name: str
    allowed_origins: tuple[str, ...]
    """As SiteDefinition normalised them when the site was saved."""
    truncate_ip: bool = True
    signing_keys: SigningKeys | None = None
    """Which signing secrets the site's server signs its posts with (tracking.server_posts);
    stored beside the definition, not in it: saving the site's settings keeps them. None: the
    site has none, and only browsers' posts are a person's."""

    @classmethod
    def from_definition(
        cls, definition: Mapping[str, Any], signing_keys: SigningKeys | None = None
    ) -> StoredSite:
        """The site in a definition as SiteDefinition stored it (``model_dump(mode="json")``)."""
        return cls(
            site_id=definition["site_id"],
            name=definition["name"],
            allowed_origins=tuple(definition["allowed_origins"]),
            truncate_ip=definition.get("truncate_ip", True),
            signing_keys=signing_keys,
        )

    def allows_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.allowed_origins)
