"""next_send_time — a journey step: the next allowed moment to send, for a Wait state's
TimestampPath.

Input: ``{"rule": {"kind": "next_business_day", "at": "10:00"}, "time_zone"?: "Asia/Tokyo",
"state"?: {...}}`` - a journey passes its state (``"state.$": "$"``), whose ``time_zone`` (the
lead's, when known at entry) is used when no ``time_zone`` is given.
(rule kinds: next_business_day, business_days_later with days, same_day_or_next with cutoff,
after with hours; ``only_that_day`` for a mail that makes sense on one day only). A journey's
wait node also passes ``journey_id``, ``node`` and ``execution``: the execution is recorded as
waiting there until the send time. Output:
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
    time_zone_or,
)
from tsunagu.journeys.lifecycle import WaitingAt
from tsunagu.observability import observed
from tsunagu.settings import get_settings


class NextSendTimeInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rule: SendTimeRule
    time_zone: str | None = Field(default=None, max_length=64)
    state: dict[str, Any] = Field(default_factory=dict)
    journey_id: str | None = Field(default=None, max_length=63)
    node: str | None = Field(default=None, max_length=63)
    execution: str | None = Field(default=None, max_length=80)
    """A journey's wait node passes these: the execution is recorded as waiting there until
    the send time (the console's live counts)."""


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    settings = get_settings()
    request = NextSendTimeInput.model_validate(event)
    # A lead's time zone that is not one (free text from a form or an import): the stack's
    time_zone = time_zone_or(
        request.time_zone or request.state.get("time_zone"), settings.default_time_zone
    )
    quiet = services.quiet_hours(settings)
    now = services.clock(settings).now()
    send_at = next_send_time(
        request.rule,
        now=now,
        time_zone=time_zone,
        calendar=services.business_calendar(settings),
        quiet=quiet,
    )
    lead_id = request.state.get("lead_id")
    if request.journey_id and request.node and request.execution and isinstance(lead_id, str):
        services.journey_repository(settings).mark_waiting(
            WaitingAt(
                request.journey_id,
                request.node,
                request.execution,
                lead_id,
                isoformat(now),
                isoformat(send_at),
            )
        )
    answer = {"send_at": step_functions_timestamp(send_at)}
    if request.rule.only_that_day:
        answer["send_by"] = isoformat(send_by(send_at, time_zone, quiet))
    return answer
