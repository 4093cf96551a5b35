"""route_events' memory of one stream batch: fewer requests, the same outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tsunagu.journeys.waits import EventMatch, JourneyWait
from tsunagu.leads.model import Lead
from tsunagu.qualification.pipeline import ScoreWrite
from tsunagu.qualification.scoring import Award
from tsunagu.stream_batch import BatchAwards, BatchWaits, LatestActivityOnly, latest_activity


def image(lead: str, at: str, kind: str = "page_view", **properties: Any) -> dict[str, Any]:
    return {"lead_id": lead, "occurred_at": at, "type": kind, "properties": properties}


class Activity:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool:
        self.calls.append((lead_id, event_type, occurred_at))
        return True


def test_the_latest_person_event_per_lead_is_found() -> None:
    latest = latest_activity(
        [
            image("a", "2026-12-01T10:00:00Z"),
            image("a", "2026-12-01T10:05:00Z"),
            image("a", "2026-12-01T10:09:00Z", automated=True),  # a scanner is not the lead
            image("a", "2026-12-01T10:10:00Z", kind="mail_sent"),  # nor is Tsunagu
            image("b", "2026-12-01T09:00:00Z"),
            None,
            {"type": "page_view", "occurred_at": "2026-12-01T11:00:00Z"},  # anonymous
        ]
    )
    assert latest == {"a": "2026-12-01T10:05:00Z", "b": "2026-12-01T09:00:00Z"}


def test_only_the_latest_event_moves_the_mark() -> None:
    store = Activity()
    activity = LatestActivityOnly(store, {"a": "2026-12-01T10:05:00Z"})
    assert activity.record_activity("a", "page_view", "2026-12-01T10:00:00Z") is False
    assert activity.record_activity("a", "link_clicked", "2026-12-01T10:05:00Z") is True
    assert store.calls == [("a", "link_clicked", "2026-12-01T10:05:00Z")]
    activity.settle([])  # nothing failed: nothing more to write
    assert len(store.calls) == 1


def test_when_the_latest_record_fails_the_one_before_it_still_counts() -> None:
    store = Activity()
    activity = LatestActivityOnly(store, {"a": "2026-12-01T10:05:00Z"})
    activity.record_activity("a", "page_view", "2026-12-01T10:00:00Z")
    activity.record_activity("a", "link_clicked", "2026-12-01T10:01:00Z")
    # the 10:05 record raised before reaching record_activity
    activity.settle([("a", "2026-12-01T10:05:00Z")])
    assert store.calls == [("a", "link_clicked", "2026-12-01T10:01:00Z")]


class Waits:
    def __init__(self, waits: list[JourneyWait]) -> None:
        self.waits = waits
        self.reads = 0

    def register_wait(self, wait: JourneyWait) -> None:
        self.waits.append(wait)

    def waits_of(self, lead_id: str) -> list[JourneyWait]:
        self.reads += 1
        return [w for w in self.waits if w.lead_id == lead_id]

    def end_wait(self, wait: JourneyWait) -> None:
        self.waits.remove(wait)


def wait(wait_id: str) -> JourneyWait:
    match = (EventMatch(type="link_clicked"),)
    return JourneyWait("a", wait_id, "token", match, "2026-12-04T00:00:00Z")


def test_waits_are_read_once_per_batch_and_an_ended_one_is_forgotten() -> None:
    store = Waits([wait("x:1"), wait("x:2")])
    batch = BatchWaits(store)
    assert len(batch.waits_of("a")) == 2
    batch.end_wait(store.waits[0])
    assert [w.wait_id for w in batch.waits_of("a")] == ["x:2"]
    assert store.reads == 1
    batch.begin_batch()  # the next batch reads again: a wait may have been registered meanwhile
    batch.waits_of("a")
    assert store.reads == 2


class Awards:
    def __init__(self, accept: bool = True) -> None:
        self.stored: list[Award] = []
        self.reads = 0
        self.accept = accept

    def awards_of(self, lead_id: str) -> list[Award]:
        self.reads += 1
        return list(self.stored)

    def get_lead(self, lead_id: str) -> Lead | None:
        return None

    def record_score(self, write: ScoreWrite) -> bool:
        if self.accept:
            self.stored.extend(write.awards)
        return self.accept


def award(event_id: str) -> Award:
    return Award("mail-opened", 5, event_id, datetime(2026, 12, 1, tzinfo=UTC), "mail_opened")


def write_of(*awards: Award) -> ScoreWrite:
    return ScoreWrite("a", awards, 5.0, "2026-12-01T00:00:00Z", None, None, [])


def test_awards_are_kept_current_with_what_the_batch_wrote() -> None:
    store = Awards()
    batch = BatchAwards(store)
    assert batch.awards_of("a") == []
    assert batch.record_score(write_of(award("e1"))) is True
    assert [a.event_id for a in batch.awards_of("a")] == ["e1"]
    assert store.reads == 1


class FailingAwards(Awards):
    def record_score(self, write: ScoreWrite) -> bool:
        raise RuntimeError("the store is unreachable")


@pytest.mark.parametrize(
    "store", [Awards(accept=False), FailingAwards()], ids=["refused", "raised"]
)
def test_a_refused_or_failed_write_makes_the_next_read_go_to_the_store(store: Awards) -> None:
    batch = BatchAwards(store)
    batch.awards_of("a")
    try:
        assert batch.record_score(write_of(award("e1"))) is False
    except RuntimeError:
        assert isinstance(store, FailingAwards)
    batch.awards_of("a")
    assert store.reads == 2
