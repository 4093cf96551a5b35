"""wait_for_event — a journey's ``.waitForTaskToken`` task: "wait until the lead does X".

Task parameters (the state machine passes them; the token comes from ``$$.Task.Token``)::

    {"token.$": "$$.Task.Token", "lead_id.$": "$.lead_id",
     "wait_id.$": "States.Format('{}:{}', $$.Execution.Name, $$.State.Name)",
     "events": [{"type": "link_clicked", "message_id.$": "$.mail.message_id", "label": "clicked"}],
     "timeout_seconds": 259200, "journey_id": "seminar_follow_up", "node": "click_or_attend",
     "journey_version.$": "$.journey_version", "execution.$": "$$.Execution"}

It registers the wait, ends it at once if the lead already did what it waits for since entering
the journey (tsunagu.journeys.waits.catch_up), and returns; otherwise route_events resumes the
execution with the matching event (a person's, never a scanner's), and the task's
TimeoutSeconds ends it if none comes.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.journeys.waits import EventMatch, register_wait
from tsunagu.observability import observed
from tsunagu.settings import get_settings


class WaitForEventInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1, max_length=4096)
    lead_id: str = Field(min_length=1, max_length=64)
    wait_id: str = Field(min_length=1, max_length=512)
    event: EventMatch | None = None
    events: list[EventMatch] = Field(default_factory=list, max_length=10)
    """Several events, any of which ends the wait (each with a ``label`` to branch on)."""
    timeout_seconds: int = Field(ge=1, le=365 * 24 * 3600)
    """The same as the task's TimeoutSeconds: the wait is forgotten after it."""
    journey_id: str | None = Field(default=None, max_length=63)
    journey_version: int | None = Field(default=None, ge=1)
    node: str | None = Field(default=None, max_length=63)
    """The wait_for node: the event that ends the wait is recorded as its decision."""
    execution: dict[str, Any] | None = None
    """``$$.Execution``: its StartTime, and its Input's ``entered_on`` and ``entered_by`` (the
    event that entered the lead, when one did). What the lead did since counts (None: a state
    machine compiled before, which waits only for what comes after)."""


def _entered(execution: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """Since when the lead is in the journey, and the event that entered it (if one did)."""
    if execution is None:
        return None, None
    given = execution.get("Input")
    given = json.loads(given) if isinstance(given, str) else given
    given = given if isinstance(given, dict) else {}
    since = given.get("entered_on") or execution.get("StartTime")
    return (str(since) if since else None), given.get("entered_by")


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    request = WaitForEventInput.model_validate(event)
    matches = [request.event] if request.event else request.events
    if not matches:
        raise ValueError("wait_for_event needs an event or events to wait for")
    wait = register_wait(
        request.lead_id,
        request.wait_id,
        request.token,
        matches,
        request.timeout_seconds,
        store=services.wait_repository(settings),
        clock=services.clock(settings),
        journey_id=request.journey_id,
        node=request.node,
        journey_version=request.journey_version,
    )
    since, entered_by = _entered(request.execution)
    caught_up = since is not None and services.journey_waits(settings).catch_up(
        wait, since, entered_by
    )
    return {"registered": wait.wait_id, "deadline": wait.deadline, "caught_up": caught_up}
