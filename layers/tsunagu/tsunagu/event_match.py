"""Conditions on an event, shared by everything that reacts to one: a journey waiting for it, a
trigger entering a lead on it, a scoring rule giving it points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

EVENT_KIND_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class EventConditions(BaseModel):
    """Every condition given must match; none given matches every event of the kind."""

    type: str = Field(pattern=EVENT_KIND_PATTERN)
    """The event kind (``link_clicked``, ``page_view``, ``seminar_attended``...)."""
    url_contains: str | None = Field(default=None, min_length=1, max_length=500)
    """For page views: a part of the URL (``/pricing``)."""
    form_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    link_id: str | None = Field(default=None, max_length=64)
    template_id: str | None = Field(default=None, max_length=64)
    properties: dict[str, str] = Field(default_factory=dict, max_length=10)
    """Any other property, compared as text (``{"status": "opted_out"}``)."""

    def matches(self, event_type: str, properties: Mapping[str, Any]) -> bool:
        if event_type != self.type:
            return False
        for name in ("form_id", "message_id", "link_id", "template_id"):
            wanted = getattr(self, name)
            if wanted is not None and properties.get(name) != wanted:
                return False
        if self.url_contains is not None and self.url_contains not in str(
            properties.get("url") or ""
        ):
            return False
        # A missing property never matches, even the text "None".
        return all(k in properties and str(properties[k]) == v for k, v in self.properties.items())
