"""A site that carries the tracking snippet: where its events may come from, and its privacy
settings."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tsunagu.origins import check_origin

SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


def is_site_id(text: str) -> bool:
    """Checked before a look-up: DynamoDB refuses empty or over-long keys with a 500."""
    return re.match(SITE_ID_PATTERN, text) is not None


class SiteDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(pattern=SITE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    allowed_origins: list[str] = Field(min_length=1, max_length=50)
    truncate_ip: bool = True
    """Store visitors' IP addresses cut to /24 (IPv4) or /48 (IPv6)."""

    @field_validator("allowed_origins")
    @classmethod
    def _normalise_origins(cls, origins: list[str]) -> list[str]:
        return [check_origin(o) for o in origins]

    def allows_origin(self, origin: str) -> bool:
        try:
            return check_origin(origin) in self.allowed_origins
        except ValueError:
            return False
