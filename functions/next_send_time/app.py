"""next_send_time — a journey step: the next allowed moment to send, for a Wait state's
TimestampPath.

Input: ``{"rule": {"kind": "next_business_day", "at": "10:00"}, "time_zone"?: "Asia/Tokyo",
"state"?: {...}}`` - a journey passes its state (``"state.$": "$"``), whose ``time_zone`` (the
lead's, when known at entry) is used when no ``time_zone`` is given.
(rule kinds: next_business_day, business_days_later with days, same_day_or_next with cutoff,
after with hours; ``only_that_day`` for a mail that makes sense on one day only). Output:
``{"send_at": "2026-11-24T01:00:00Z"}``, with ``"send_by"`` (when quiet hours begin that day)
for an ``only_that_day`` rule.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.journeys.business_time import (
    SendTimeRule,
    next_send_time,
    send_by,
    step_functions_timestamp,
)
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
    time_zone = request.time_zone or str(
        request.state.get("time_zone") or settings.default_time_zone
    )
    quiet = services.quiet_hours(settings)
    send_at = next_send_time(
        request.rule,
        now=services.clock(settings).now(),
        time_zone=time_zone,
        calendar=services.business_calendar(settings),
        quiet=quiet,
    )
    answer = {"send_at": step_functions_timestamp(send_at)}
    if request.rule.only_that_day:
        answer["send_by"] = isoformat(send_by(send_at, time_zone, quiet))
    return answer
