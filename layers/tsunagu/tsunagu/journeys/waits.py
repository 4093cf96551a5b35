"""Waiting for behaviour: "did the lead click within 3 days?"

A journey's ``.waitForTaskToken`` task registers what it waits for (wait_for_event); when
route_events sees a matching event *by a person* it resumes the execution with the event
(SendTaskSuccess). Nobody polls: if nothing matches, the task's own TimeoutSeconds ends the
wait and the journey's Catch on States.Timeout takes the "did not" branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.clock import Clock, isoformat, parse_instant


class EventMatch(BaseModel):
    """Which event ends the wait. Every field given must match; none given matches any event
    of the type."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    message_id: str | None = Field(default=None, max_length=64)
    link_id: str | None = Field(default=None, max_length=64)
    form_id: str | None = Field(default=None, max_length=64)
    url_contains: str | None = Field(default=None, max_length=500)
    """For page views: a part of the URL ("/pricing")."""
    properties: dict[str, str] = Field(default_factory=dict, max_length=10)
    """Any other property, compared as text (e.g. {"status": "attended"})."""
    label: str | None = Field(default=None, max_length=40)
    """Named in the resumed output as ``matched``, so a Choice can branch on which of several
    awaited events came ("pricing" or "case_study")."""

    def matches(self, event_type: str, properties: Mapping[str, Any]) -> bool:
        if event_type != self.type:
            return False
        for name in ("message_id", "link_id", "form_id"):
            wanted = getattr(self, name)
            if wanted is not None and properties.get(name) != wanted:
                return False
        if self.url_contains is not None and self.url_contains not in str(
            properties.get("url") or ""
        ):
            return False
        return all(str(properties.get(k)) == v for k, v in self.properties.items())


@dataclass(frozen=True)
class JourneyWait:
    lead_id: str
    wait_id: str
    """Unique per execution and state: registering twice (a retried task) is one wait."""
    token: str
    matches: tuple[EventMatch, ...]
    """Any one of these ends the wait."""
    deadline: str

    def first_match(self, event_type: str, properties: Mapping[str, Any]) -> EventMatch | None:
        return next((m for m in self.matches if m.matches(event_type, properties)), None)


class WaitStore(Protocol):
    def register_wait(self, wait: JourneyWait) -> None: ...

    def waits_of(self, lead_id: str) -> list[JourneyWait]: ...

    def end_wait(self, wait: JourneyWait) -> None: ...


class Resumer(Protocol):
    def resume(self, token: str, output: Mapping[str, Any]) -> bool:
        """Hand the event to the waiting execution; False if it no longer waits."""
        ...


def register_wait(
    lead_id: str,
    wait_id: str,
    token: str,
    matches: EventMatch | Sequence[EventMatch],
    timeout_seconds: int,
    *,
    store: WaitStore,
    clock: Clock,
) -> JourneyWait:
    deadline = clock.now() + timedelta(seconds=timeout_seconds)
    alternatives = (matches,) if isinstance(matches, EventMatch) else tuple(matches)
    wait = JourneyWait(lead_id, wait_id, token, alternatives, isoformat(deadline))
    store.register_wait(wait)
    return wait


def resume_waits(
    lead_id: str,
    event_type: str,
    event_id: str,
    occurred_at: str,
    properties: Mapping[str, Any],
    *,
    store: WaitStore,
    resumer: Resumer,
) -> Sequence[JourneyWait]:
    """Resume every wait of this lead the event matches; returns those resumed.

    The execution is resumed before its wait is removed: a batch redelivered after a failure in
    between resumes again, which Step Functions refuses for a used token (and that is fine).
    """
    event_time = parse_instant(occurred_at)
    resumed = []
    for wait in store.waits_of(lead_id):
        if parse_instant(wait.deadline) < event_time:
            continue  # too late: the task has timed out (or is about to)
        matched = wait.first_match(event_type, properties)
        if matched is None:
            continue
        output = {
            "matched": matched.label or event_type,
            "event": event_type,
            "event_id": event_id,
            "occurred_at": occurred_at,
            "properties": {k: v for k, v in properties.items() if k != "signals"},
        }
        resumer.resume(wait.token, output)
        store.end_wait(wait)
        resumed.append(wait)
    return resumed


def deadline_passed(wait: JourneyWait, now: datetime) -> bool:
    return parse_instant(wait.deadline) < now
