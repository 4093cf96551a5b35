"""Waiting for behaviour: "did the lead click within 3 days?"

A journey's ``.waitForTaskToken`` task registers what it waits for (wait_for_event); when
route_events sees a matching event *by a person* it resumes the execution with the event
(SendTaskSuccess). Nobody polls: if nothing matches, the task's own TimeoutSeconds ends the
wait and the journey's Catch on States.Timeout takes the "did not" branch.

What the lead did after entering the journey but before the wait was registered counts too
(``catch_up``): a pricing page opened from the thank-you page, while the welcome mail was still
being sent, is a visit to the pricing page. An event counts once per execution: one that ended
an earlier wait of the same execution does not end a later one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict, Field

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.event_kinds import SYSTEM_EVENT_KINDS
from tsunagu.event_match import EventConditions

if TYPE_CHECKING:
    from tsunagu.leads.model import LeadEvent


class EventMatch(EventConditions):
    """Which event ends the wait (or enters a lead, or reaches a journey's goal)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=40)
    """Named in the resumed output as ``matched``, so a Choice can branch on which of several
    awaited events came ("pricing" or "case_study")."""


@dataclass(frozen=True)
class JourneyWait:
    lead_id: str
    wait_id: str
    """Unique per execution and state: registering twice (a retried task) is one wait."""
    token: str
    matches: tuple[EventMatch, ...]
    """Any one of these ends the wait."""
    deadline: str
    journey_id: str | None = None
    node: str | None = None
    """The journey and its ``wait_for`` node: the event that ends the wait is recorded as that
    node's decision (None: a wait registered before decisions were recorded)."""
    registered_at: str | None = None
    journey_version: int | None = None
    """The version the execution runs (None: deployed with the stack, or registered before
    versions were recorded)."""

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
    journey_id: str | None = None,
    node: str | None = None,
    journey_version: int | None = None,
) -> JourneyWait:
    now = clock.now()
    deadline = now + timedelta(seconds=timeout_seconds)
    alternatives = (matches,) if isinstance(matches, EventMatch) else tuple(matches)
    wait = JourneyWait(
        lead_id,
        wait_id,
        token,
        alternatives,
        isoformat(deadline),
        journey_id,
        node,
        registered_at=isoformat(now),
        journey_version=journey_version,
    )
    store.register_wait(wait)
    return wait


@dataclass(frozen=True)
class Happened:
    """The event that ended a wait."""

    type: str
    event_id: str
    occurred_at: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class Resumed:
    wait: JourneyWait
    event: Happened
    outcome: str
    """The matched event's label (the wait_for's outcome), or its type."""
    decided: bool
    """Step Functions took the event: False when the token was gone (the wait had timed out,
    or a redelivered batch resumes it again), so the event decided nothing."""


def resume_waits(
    lead_id: str,
    event_type: str,
    event_id: str,
    occurred_at: str,
    properties: Mapping[str, Any],
    *,
    store: WaitStore,
    resumer: Resumer,
    on_decided: Callable[[Resumed], None] | None = None,
) -> Sequence[Resumed]:
    """Resume every wait of this lead the event matches; returns those resumed.

    The execution is resumed before its wait is removed: a batch redelivered after a failure in
    between resumes again, which Step Functions refuses for a used token (and that is fine).
    ``on_decided`` records a wait the event decided, before the wait is removed.
    """
    event_time = parse_instant(occurred_at)
    resumed = []
    for wait in store.waits_of(lead_id):
        if parse_instant(wait.deadline) < event_time:
            continue  # too late: the task has timed out (or is about to)
        matched = wait.first_match(event_type, properties)
        if matched is None:
            continue
        event = Happened(event_type, event_id, occurred_at, properties)
        resumed.append(_resume(wait, matched, event, store, resumer, on_decided))
    return resumed


def _resume(
    wait: JourneyWait,
    matched: EventMatch,
    event: Happened,
    store: WaitStore,
    resumer: Resumer,
    on_decided: Callable[[Resumed], None] | None,
) -> Resumed:
    output = {
        "matched": matched.label or event.type,
        "event": event.type,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "properties": {k: v for k, v in event.properties.items() if k != "signals"},
    }
    entry = Resumed(wait, event, str(output["matched"]), resumer.resume(wait.token, output))
    if entry.decided and on_decided is not None:
        on_decided(entry)
    store.end_wait(wait)
    return entry


def catch_up(
    wait: JourneyWait,
    history: Sequence[LeadEvent],
    *,
    entered: datetime,
    entered_by: str | None,
    taken: str | None = None,
    store: WaitStore,
    resumer: Resumer,
    on_decided: Callable[[Resumed], None] | None = None,
) -> Resumed | None:
    """End a wait just registered with what the lead already did, if anything counts.

    ``history``: the lead's events, oldest first, from a day before ``entered`` (when the
    lead entered the journey: a browser event keeps its browser's time, up to a day behind
    the server's); ``entered_by``: the event that entered it, if one did, whose own arrival
    is then the entry. What counts arrived at the server after the entry. The first such
    event that a person did and the wait matches ends the wait, as route_events would have
    ended it had the wait been there: not an automated event or one Tsunagu recorded, not a
    click whose judgement is not final yet (it comes back through the stream once it is, and
    the wait is there by then), not the entering event itself, and not an event that already
    ended another wait of this execution: ``taken``, the previous wait's (the execution's own
    state says which: its decision may not be written yet), or one whose ``journey_decision``
    is in the history. An event that arrived in the same instant as the entry counts (on
    virtual time, where the clock stands still while work is in flight, that is the page
    opened from the thank-you page). None when nothing counts: the wait stays.
    """
    entry = next((e for e in history if e.event_id == entered_by), None)
    since = arrived(entry) if entry is not None else entered
    execution = wait.wait_id.split(":", 1)[0]
    claimed = {
        str(event.properties.get("values", {}).get("event_id"))
        for event in history
        if event.type == "journey_decision"
        and event.properties.get("execution_name") == execution
        and event.properties.get("kind") == "wait_for"
    } | ({taken} if taken else set())
    for event in history:
        if (
            event.event_id == entered_by
            or arrived(event) < since
            or event.event_id in claimed
            or event.type in SYSTEM_EVENT_KINDS
            or event.properties.get("automated")
            or (event.type == "link_clicked" and not event.properties.get("settled"))
        ):
            continue
        matched = wait.first_match(event.type, event.properties)
        if matched is not None:
            happened = Happened(event.type, event.event_id, event.occurred_at, event.properties)
            return _resume(wait, matched, happened, store, resumer, on_decided)
    return None


def arrived(event: LeadEvent) -> datetime:
    """When the server had the event: its time, or for a browser event that kept the
    browser's time, when it was received."""
    return parse_instant(str(event.properties.get("received_at") or event.occurred_at))


def wait_decision(resumed: Resumed) -> LeadEvent | None:
    """The ``journey_decision`` event for a wait a person's event ended (route_events resumes
    waits on people's events only: a scanner's click never decides); None for a wait that
    does not know its node. Keyed on the execution, the node and the event's time, so writing
    it twice writes one item. (A crash between the resume and this write loses the record: the
    batch redelivered finds the token used, and nothing says it was this event.)"""
    from tsunagu.journeys.decisions import Decided, decision_event

    wait, event = resumed.wait, resumed.event
    if wait.journey_id is None or wait.node is None:
        return None
    return decision_event(
        Decided(resumed.outcome, {"event": event.type, "event_id": event.event_id, "by": "person"}),
        lead_id=wait.lead_id,
        journey_id=wait.journey_id,
        node=wait.node,
        kind="wait_for",
        execution_name=wait.wait_id.split(":", 1)[0],
        entered_at=event.occurred_at,
        journey_version=wait.journey_version,
    )


def deadline_passed(wait: JourneyWait, now: datetime) -> bool:
    return parse_instant(wait.deadline) < now
