"""route_events' side of journeys: who enters on an event, who leaves on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.event_kinds import enters_journeys
from tsunagu.journeys.lifecycle import (
    Executions,
    JourneyStore,
    Occurrence,
    WaitCleaner,
    enter,
    lead_payload,
    leave_journeys,
    may_end_journeys,
    triggered_journeys,
)
from tsunagu.journeys.model import Journey
from tsunagu.journeys.waits import arrival
from tsunagu.leads.model import Lead


class Definitions(JourneyStore, Protocol):
    def journeys(self) -> list[Journey]: ...


class LeadReader(Protocol):
    def get_lead(self, lead_id: str) -> Lead | None: ...

    def consent_state(self, lead_id: str) -> dict[str, str]:
        """The lead's consent per topic (opted_in, opted_out, pending)."""
        ...


class JourneyRouting:
    """The journey definitions are read once per stream batch (a scan of a small table), not per
    event: a journey switched on, paused or changed applies from the next batch on. (A cache of
    half a minute once left a lead who came in that window silently not entered.)"""

    def __init__(
        self,
        store: Definitions,
        executions: Executions,
        waits: WaitCleaner,
        clock: Clock,
        state_machine_arn: Callable[[Journey], str],
        leads: LeadReader,
    ) -> None:
        self._store = store
        self._leads = leads
        self._executions = executions
        self._waits = waits
        self._clock = clock
        self._state_machine_arn = state_machine_arn
        self._batch: list[Journey] | None = None

    def begin_batch(self) -> None:
        """A new stream batch: read the definitions again, at its first event that needs them."""
        self._batch = None

    def journeys(self) -> list[Journey]:
        if self._batch is None:
            self._batch = self._store.journeys()
        return self._batch

    def on_event(self, event: Occurrence, *, by_person: bool) -> None:
        journeys = self.journeys()
        if not journeys:
            return
        if may_end_journeys(event.type, journeys):
            leave_journeys(
                event,
                {j.journey_id: j for j in journeys},
                store=self._store,
                executions=self._executions,
                waits=self._waits,
                clock=self._clock,
                consent=self._leads.consent_state,
            )
        if not enters_journeys(event.type, by_person=by_person):
            return  # a scanner's click or Tsunagu's own record enters nobody
        entering = triggered_journeys(journeys, event)
        # The lead's own (its time zone), as a manual start gives it: read once, when it enters
        lead = self._leads.get_lead(event.lead_id) if entering else None
        for journey in entering:
            enter(
                journey,
                event.lead_id,
                cause=f"event:{event.event_id}",
                trigger=event.type,
                trigger_event_id=event.event_id,
                # What the lead does from here on counts for the journey's waits: from when
                # the server had the event (a browser's clock may be far off), as every
                # event's own arrival is compared with it (JourneyWait.counts).
                payload={
                    **lead_payload(lead),
                    "entered_on": isoformat(arrival(event.occurred_at, event.properties)),
                    "entered_by": event.event_id,
                },
                state_machine_arn=self._state_machine_arn(journey),
                store=self._store,
                executions=self._executions,
                clock=self._clock,
            )
