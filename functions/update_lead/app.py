"""update_lead — a journey step that sets a lead's stage, tags, fields or CRM status.

Input: ``{"lead_id", "stage"?, "add_tags"?, "remove_tags"?, "fields"?, "crm_status"?,
"journey_id"?}``. Each change is also an event on the stream (``stage_changed``,
``crm_status_changed``, ``lead_updated``), so other journeys can start or end on it.
Output: ``{"changed": [event kinds], "stage", "tags"}``.

Fields merge as the ``journey`` channel, which ranks as a person's edit (tsunagu.leads.merge):
a journey's ``interest: pricing`` replaces what the web form said; a value the CRM set stays,
and ``lead_updated`` names it (``kept_fields``, ``kept_reasons``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from tsunagu import services
from tsunagu.leads.merge import Channel
from tsunagu.leads.updates import LeadUpdate, update_lead
from tsunagu.observability import logger, observed
from tsunagu.settings import get_settings


class UpdateLeadInput(LeadUpdate):
    model_config = ConfigDict(extra="forbid")

    lead_id: str = Field(min_length=1, max_length=64)
    journey_id: str | None = Field(default=None, max_length=63)


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    request = UpdateLeadInput.model_validate(event)
    update = LeadUpdate.model_validate(request.model_dump(exclude={"lead_id", "journey_id"}))
    lead, events = update_lead(
        request.lead_id,
        update,
        by=f"journey:{request.journey_id}" if request.journey_id else "journey",
        source=Channel.JOURNEY,
        store=services.lead_repository(settings),
        now=services.clock(settings).now(),
    )
    logger.info("lead updated", extra={"lead_id": lead.lead_id, "events": len(events)})
    return {"changed": [e.type for e in events], "stage": lead.stage, "tags": sorted(lead.tags)}
