"""Waiting for behaviour: "did the lead click within 3 days?"

A journey's ``.waitForTaskToken`` task registers what it waits for (wait_for_event); when
route_events sees a matching event *by a person* it resumes the execution with the event
(SendTaskSuccess). Nobody polls: if nothing matches, the task's own TimeoutSeconds ends the
wait and the journey's Catch on States.Timeout takes the "did not" branch.

What the lead did after entering the journey but before the wait was registered counts too
(``catch_up``): a pricing page opened from the thank-you page, while the welcome mail was still
being sent, is a visit to the pricing page. An event counts once per execution: one that ended
an earlier wait of the same execution does not end a later one. Both ways a wait ends keep
these rules by asking the wait itself (``JourneyWait.counts``): the stream delivers a record
again after a partial batch failure (Lambda retries from the first failed record, so every
later one comes again), and a visit that ended the first wait must not end the second.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict, Field

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.event_kinds import resumes_waits
from tsunagu.event_match import EventConditions
from tsunagu.leads.history import is_claimed_history

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
    entered_at: str | None = None
    """When the lead entered the journey (when the server had the entering event, or the
    execution's start): what arrived before does not end the wait. None: not known (a state
    machine compiled before, or a wait registered before it was kept), no event is too early."""
    entered_by: str | None = None
    """The event that entered the lead, if one did: it does not end a wait of its journey."""
    taken: frozenset[str] = frozenset()
    """The events that ended earlier waits of the same execution (its state says which)."""

    def counts(
        self,
        event_id: str,
        arrived_at: datetime,
        *,
        since: datetime | None = None,
        claimed: Collection[str] = (),
    ) -> bool:
        """Whether an event the server had at ``arrived_at`` may end this wait, whichever way
        it comes (route_events, catch_up): not one the execution already took (``taken``, or
        ``claimed``: what else is known to be taken), not the event that entered the lead, not
        one that arrived before the entry (``since``: the entry, when known more exactly than
        ``entered_at``). An event that arrived in the same instant as the entry counts (on
        virtual time, where the clock stands still while work is in flight, that is the page
        opened from the thank-you page). Whether a person did it is the caller's to say."""
        if event_id in self.taken or event_id in claimed or event_id == self.entered_by:
            return False
        entry = since or (parse_instant(self.entered_at) if self.entered_at else None)
        return entry is None or arrived_at >= entry

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
    entered_at: datetime | None = None,
    entered_by: str | None = None,
    taken: Collection[str] = (),
) -> JourneyWait:
    """Register what the execution waits for; ``entered_at``, ``entered_by`` and ``taken`` say
    which events may end it (JourneyWait.counts)."""
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
        entered_at=isoformat(entered_at) if entered_at is not None else None,
        entered_by=entered_by,
        taken=frozenset(taken),
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
    A record redelivered once the execution has gone on to its next wait finds that wait, which
    the event does not end (JourneyWait.counts). ``on_decided`` records a wait the event
    decided, before the wait is removed.
    """
    event_time = parse_instant(occurred_at)
    arrived_at = arrival(occurred_at, properties)
    resumed = []
    for wait in store.waits_of(lead_id):
        if parse_instant(wait.deadline) < event_time:
            continue  # too late: the task has timed out (or is about to)
        if not wait.counts(event_id, arrived_at):
            continue
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
        # Every event the execution has taken so far: its state keeps this (``response``),
        # and the next wait it registers is ended by none of them (JourneyWait.taken).
        "taken": sorted(wait.taken | {event.event_id}),
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
    store: WaitStore,
    resumer: Resumer,
    on_decided: Callable[[Resumed], None] | None = None,
) -> Resumed | None:
    """End a wait just registered with what the lead already did, if anything counts.

    ``history``: the lead's events, oldest first, from a day before the wait's ``entered_at``
    (a browser event keeps its browser's time, up to a day behind the server's). What counts
    is what the wait counts (JourneyWait.counts): arrived at the server since the entry (the
    entering event's own arrival, when it is in the history), not the entering event, not an
    event the execution already took (the wait's ``taken``, from the execution's own state:
    the previous wait's decision may not be written yet; or one whose ``journey_decision`` is
    in the history). The first such event that a person did and the wait matches ends the
    wait, as route_events would have ended it had the wait been there: not an automated event
    or one Tsunagu recorded, not a click whose judgement is not final yet (it comes back
    through the stream once it is, and the wait is there by then). None when nothing counts,
    or when the wait does not know when the lead entered: the wait stays.
    """
    if wait.entered_at is None:
        return None
    entry = next((e for e in history if e.event_id == wait.entered_by), None)
    since = arrived(entry) if entry is not None else None
    execution = wait.wait_id.split(":", 1)[0]
    claimed = {
        str(event.properties.get("values", {}).get("event_id"))
        for event in history
        if event.type == "journey_decision"
        and event.properties.get("execution_name") == execution
        and event.properties.get("kind") == "wait_for"
    }
    for event in history:
        if (
            not wait.counts(event.event_id, arrived(event), since=since, claimed=claimed)
            or not resumes_waits(event.type)
            or event.properties.get("automated")
            or (event.type == "link_clicked" and not event.properties.get("settled"))
            or is_claimed_history(event.properties)  # as route_events: tsunagu.leads.history
        ):
            continue
        matched = wait.first_match(event.type, event.properties)
        if matched is not None:
            happened = Happened(event.type, event.event_id, event.occurred_at, event.properties)
            return _resume(wait, matched, happened, store, resumer, on_decided)
    return None


def arrival(occurred_at: str, properties: Mapping[str, Any]) -> datetime:
    """When the server had an event: its time, or for a browser event that kept the browser's
    time, when it was received."""
    return parse_instant(str(properties.get("received_at") or occurred_at))


def arrived(event: LeadEvent) -> datetime:
    """When the server had the stored event (``arrival``)."""
    return arrival(event.occurred_at, event.properties)


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
