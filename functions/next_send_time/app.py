"""next_send_time — a journey step: the next allowed moment to send, for a Wait state's
TimestampPath.

Input: ``{"rule": {"kind": "next_business_day", "at": "10:00"}, "time_zone"?: "Asia/Tokyo",
"state"?: {...}}`` - a journey passes its state (``"state.$": "$"``), whose ``time_zone`` (the
lead's, when known at entry) is used when no ``time_zone`` is given.
(rule kinds: next_business_day, business_days_later with days, same_day_or_next with cutoff,
after with hours). Output: ``{"send_at": "2026-11-24T01:00:00Z"}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.journeys.business_time import SendTimeRule, next_send_time, step_functions_timestamp
from tsunagu.observability import observed
from tsunagu.settings import get_settings


class NextSendTimeInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rule: SendTimeRule
    time_zone: str | None = Field(default=None, max_length=64)
    state: dict[str, Any] = Field(default_factory=dict)


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    settings = get_settings()
    request = NextSendTimeInput.model_validate(event)
    send_at = next_send_time(
        request.rule,
        now=services.clock(settings).now(),
        time_zone=request.time_zone
        or str(request.state.get("time_zone") or settings.default_time_zone),
        calendar=services.business_calendar(settings),
        quiet=services.quiet_hours(settings),
    )
    return {"send_at": step_functions_timestamp(send_at)}
