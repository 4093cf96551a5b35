"""wait_for_event — a journey's ``.waitForTaskToken`` task: "wait until the lead does X".

Task parameters (the state machine passes them; the token comes from ``$$.Task.Token``)::

    {"token.$": "$$.Task.Token", "lead_id.$": "$.lead_id",
     "wait_id.$": "States.Format('{}:{}', $$.Execution.Name, $$.State.Name)",
     "event": {"type": "link_clicked", "message_id.$": "$.mail.message_id"},
     "timeout_seconds": 259200}

It only registers the wait and returns; route_events resumes the execution with the matching
event (a person's, never a scanner's), and the task's TimeoutSeconds ends it otherwise.
"""

from __future__ import annotations

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
    return {"registered": wait.wait_id, "deadline": wait.deadline}
