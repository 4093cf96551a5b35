"""A site that carries the tracking snippet: where its events may come from, and its privacy
settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tsunagu.origins import check_origin
from tsunagu.tracking.stored_sites import SITE_ID_PATTERN


class SiteDefinition(BaseModel):
    """A site as it is saved: checked here. The tracking function reads it back as a
    StoredSite (tsunagu.tracking.stored_sites), without pydantic."""

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
