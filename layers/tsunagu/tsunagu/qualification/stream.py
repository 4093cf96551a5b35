"""route_events' side of qualification: score what a person did; hand a new MQL to sales."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from tsunagu.clock import Clock
from tsunagu.event_kinds import LEAD_IMPORTED, SYSTEM_EVENT_KINDS
from tsunagu.journeys.lifecycle import Occurrence
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.pipeline import score_event
from tsunagu.stream_batch import BatchAwards, ScoreStore

# Tsunagu's own records of what it did never score, whatever a rule says; an unsubscribe (a
# consent change) is the lead's doing and scores by its rule, and so may a lead's arrival in an
# imported list (the visitors a trade show's list brings).
NEVER_SCORED = SYSTEM_EVENT_KINDS - {"consent_changed", LEAD_IMPORTED}


class Starter(Protocol):
    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> object: ...


class QualificationRouting:
    def __init__(
        self,
        config: Callable[[], QualificationConfig],
        store: ScoreStore,
        executions: Starter,
        clock: Clock,
        hand_off_arn: str | None,
    ) -> None:
        self._config = config
        self._store = BatchAwards(store)
        self._executions = executions
        self._clock = clock
        self._hand_off_arn = hand_off_arn

    def begin_batch(self) -> None:
        self._store.begin_batch()

    def on_event(self, event: Occurrence, *, automated: bool) -> None:
        if automated or event.type in NEVER_SCORED:
            return
        score_event(
            event.lead_id,
            event.event_id,
            event.type,
            event.occurred_at,
            event.properties,
            config=self._config(),
            store=self._store,
            now=self._clock.now(),
        )

    def on_stage_change(self, event: Occurrence) -> None:
        """A lead became MQL: start its hand-off, once (named by the stage event)."""
        if event.type != "stage_changed" or event.properties.get("to") != "mql":
            return
        if self._hand_off_arn is None:
            raise RuntimeError("TSUNAGU_STATE_MACHINE_ARN_PREFIX is not set for route_events")
        self._executions.start(
            self._hand_off_arn,
            f"mql-{event.event_id}",
            {"lead_id": event.lead_id, "stage_event_id": event.event_id},
        )
