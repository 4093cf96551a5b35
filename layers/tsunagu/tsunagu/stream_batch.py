"""What route_events may remember for the length of one stream batch.

A batch holds runs of events by the same lead (a visit is several page views; a mail, an open
and a click). Reading the lead's journey waits and score awards once per batch, and moving its
last-activity mark once, to the batch's latest event, saves a request per event for each of
them. Nothing is remembered across batches: another function may register a wait or change the
lead between two invocations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from tsunagu.event_kinds import SYSTEM_EVENT_KINDS
from tsunagu.journeys.waits import JourneyWait
from tsunagu.leads.model import Lead
from tsunagu.qualification.pipeline import ScoreWrite
from tsunagu.qualification.scoring import Award
from tsunagu.tracking.settling import awaits_settling


def latest_activity(images: Iterable[Mapping[str, Any] | None]) -> dict[str, str]:
    """Each lead's latest event by a person in the batch (occurred_at). A held click is not
    acted on in this batch (see tsunagu.tracking.settling), so it is not the latest yet."""
    latest: dict[str, str] = {}
    for image in images:
        if not image or not image.get("lead_id") or awaits_settling(image):
            continue
        properties = image.get("properties") or {}
        if properties.get("automated") or str(image.get("type")) in SYSTEM_EVENT_KINDS:
            continue
        lead_id, at = str(image["lead_id"]), str(image["occurred_at"])
        latest[lead_id] = max(at, latest.get(lead_id, at))
    return latest


class ActivityStore(Protocol):
    def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool: ...


class LatestActivityOnly:
    """Moves a lead's last-activity mark only for its latest event in the batch: the earlier
    ones would be overwritten by it a moment later anyway."""

    def __init__(self, store: ActivityStore, latest: Mapping[str, str]) -> None:
        self._store = store
        self._latest = latest
        self._held: dict[str, tuple[str, str]] = {}

    def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool:
        if occurred_at < self._latest.get(lead_id, occurred_at):
            held = self._held.get(lead_id)
            if held is None or held[0] < occurred_at:
                self._held[lead_id] = (occurred_at, event_type)
            return False
        return self._store.record_activity(lead_id, event_type, occurred_at)

    def settle(self, failed: Iterable[tuple[str, str]]) -> None:
        """After the batch: a lead whose latest record failed gets the mark of its latest event
        that did not (the failed one is retried, or parked, on its own)."""
        for lead_id, occurred_at in failed:
            held = self._held.pop(lead_id, None)
            if held is not None and occurred_at == self._latest.get(lead_id):
                self._store.record_activity(lead_id, held[1], held[0])


class WaitStore(Protocol):
    def register_wait(self, wait: JourneyWait) -> None: ...

    def waits_of(self, lead_id: str) -> list[JourneyWait]: ...

    def end_wait(self, wait: JourneyWait) -> None: ...


class BatchWaits:
    """A lead's waits, read once per batch; a wait ended here leaves the memory too."""

    def __init__(self, store: WaitStore) -> None:
        self._store = store
        self._known: dict[str, list[JourneyWait]] = {}

    def begin_batch(self) -> None:
        self._known.clear()

    def register_wait(self, wait: JourneyWait) -> None:
        self._store.register_wait(wait)
        self._known.pop(wait.lead_id, None)

    def waits_of(self, lead_id: str) -> list[JourneyWait]:
        if lead_id not in self._known:
            self._known[lead_id] = self._store.waits_of(lead_id)
        return list(self._known[lead_id])

    def end_wait(self, wait: JourneyWait) -> None:
        self._store.end_wait(wait)
        known = self._known.get(wait.lead_id)
        if known is not None:
            self._known[wait.lead_id] = [w for w in known if w.wait_id != wait.wait_id]


class ScoreStore(Protocol):
    def awards_of(self, lead_id: str) -> list[Award]: ...

    def get_lead(self, lead_id: str) -> Lead | None: ...

    def record_score(self, write: ScoreWrite) -> bool: ...


class BatchAwards:
    """A lead's awards, read once per batch and kept current with what this batch wrote. A write
    refused (a redelivery, a stage moved) forgets them, so the retry reads the store."""

    def __init__(self, store: ScoreStore) -> None:
        self._store = store
        self._known: dict[str, list[Award]] = {}

    def begin_batch(self) -> None:
        self._known.clear()

    def awards_of(self, lead_id: str) -> list[Award]:
        if lead_id not in self._known:
            self._known[lead_id] = self._store.awards_of(lead_id)
        return list(self._known[lead_id])

    def get_lead(self, lead_id: str) -> Lead | None:
        return self._store.get_lead(lead_id)

    def record_score(self, write: ScoreWrite) -> bool:
        try:
            recorded = self._store.record_score(write)
        except Exception:
            self._known.pop(write.lead_id, None)
            raise
        if recorded and write.lead_id in self._known:
            self._known[write.lead_id].extend(write.awards)
        else:
            self._known.pop(write.lead_id, None)
        return recorded
