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
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.clock import parse_instant
from tsunagu.journeys.waits import EventMatch, JourneyWait, register_wait
from tsunagu.observability import logger, metrics, observed
from tsunagu.settings import Settings, get_settings


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
    state: dict[str, Any] | None = None
    """The execution's state (``$``): its ``response`` is what ended the previous wait_for,
    and names every event the execution took so far, none of which ends this one. Passed, not
    read from the decisions: the previous wait's decision may be written a moment after the
    execution went on."""


def _entered(execution: dict[str, Any] | None) -> tuple[datetime, str | None] | None:
    """When the lead entered the journey (the entering event's time, or the execution's
    start), and the event that entered it (if one did); None: not given, or not readable."""
    if execution is None:
        return None
    given = execution.get("Input")
    given = json.loads(given) if isinstance(given, str) else given
    given = given if isinstance(given, dict) else {}
    try:
        entered = parse_instant(str(given.get("entered_on") or execution["StartTime"]))
    except (KeyError, ValueError):
        return None
    entered_by = given.get("entered_by")
    return entered, str(entered_by) if entered_by else None


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    request = WaitForEventInput.model_validate(event)
    matches = [request.event] if request.event else request.events
    if not matches:
        raise ValueError("wait_for_event needs an event or events to wait for")
    entered = _entered(request.execution)
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
        entered_at=entered[0] if entered else None,
        entered_by=entered[1] if entered else None,
        taken=_taken(request.state),
    )
    return {
        "registered": wait.wait_id,
        "deadline": wait.deadline,
        "caught_up": _catch_up(settings, wait),
    }


def _taken(state: dict[str, Any] | None) -> set[str]:
    """The events that ended the execution's earlier waits: the previous wait's response names
    them all (``taken``), or only its own event (a wait resumed before responses named them)."""
    response = (state or {}).get("response")
    if not isinstance(response, dict):
        return set()
    taken = response.get("taken")
    named = [*(taken if isinstance(taken, list) else []), response.get("event_id")]
    return {str(event_id) for event_id in named if event_id}


def _catch_up(settings: Settings, wait: JourneyWait) -> bool:
    """End the wait at once with what the lead did since entering, if anything counts. Only
    a help: the wait is registered, and route_events ends it with what the lead does next, so
    a failure here is logged and counted, never the task's (which would end the execution)."""
    try:
        return services.journey_waits(settings).catch_up(wait)
    except Exception:
        logger.exception("could not look back for the wait", extra={"wait_id": wait.wait_id})
        metrics.add_metric(name="WaitLookBackFailed", unit="Count", value=1)
        return False
