"""route_events' side of journeys: who enters on an event, who leaves on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from tsunagu.clock import Clock
from tsunagu.journeys.lifecycle import (
    Executions,
    JourneyStore,
    Occurrence,
    WaitCleaner,
    enter,
    leave_journeys,
    may_end_journeys,
    triggered_journeys,
)
from tsunagu.journeys.model import Journey

JOURNEY_CACHE_SECONDS = 30.0

# Tsunagu's own records that may still enter a lead: a journey can start on a stage or a score.
ENTERING_SYSTEM_EVENTS = frozenset({"stage_changed", "score_changed"})


class Definitions(JourneyStore, Protocol):
    def journeys(self) -> list[Journey]: ...


class JourneyRouting:
    """The journey definitions are read once per half minute (a scan of a small table), not per
    event: a journey switched on or off takes effect within that time."""

    def __init__(
        self,
        store: Definitions,
        executions: Executions,
        waits: WaitCleaner,
        clock: Clock,
        state_machine_arn: Callable[[Journey], str],
    ) -> None:
        self._store = store
        self._executions = executions
        self._waits = waits
        self._clock = clock
        self._state_machine_arn = state_machine_arn
        self._cached: tuple[float, list[Journey]] | None = None

    def journeys(self) -> list[Journey]:
        if self._cached is None or time.monotonic() - self._cached[0] > JOURNEY_CACHE_SECONDS:
            self._cached = (time.monotonic(), self._store.journeys())
        return self._cached[1]

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
            )
        if not by_person and event.type not in ENTERING_SYSTEM_EVENTS:
            return  # a scanner's click or Tsunagu's own record enters nobody
        for journey in triggered_journeys(journeys, event):
            enter(
                journey,
                event.lead_id,
                cause=f"event:{event.event_id}",
                trigger=event.type,
                trigger_event_id=event.event_id,
                payload={"entered_on": event.occurred_at},
                state_machine_arn=self._state_machine_arn(journey),
                store=self._store,
                executions=self._executions,
                clock=self._clock,
            )
