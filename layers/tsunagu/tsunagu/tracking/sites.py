"""A site that carries the tracking snippet: where its events may come from, and its privacy
settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tsunagu.origins import check_origin


class SiteDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(min_length=1, max_length=200)
    allowed_origins: list[str] = Field(min_length=1, max_length=50)
    consent_required: bool = False
    """The snippet sets no cookie and sends nothing until the page calls
    ``tsunagu("consent", true)`` (for sites under a cookie-consent banner)."""
    truncate_ip: bool = True
    """Store visitors' IP addresses cut to /24 (IPv4) or /48 (IPv6)."""
    cookie_days: int = Field(default=395, ge=1, le=730)

    @field_validator("allowed_origins")
    @classmethod
    def _normalise_origins(cls, origins: list[str]) -> list[str]:
        return [check_origin(o) for o in origins]

    def allows_origin(self, origin: str) -> bool:
        try:
            return check_origin(origin) in self.allowed_origins
        except ValueError:
            return False
