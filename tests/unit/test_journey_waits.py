"""Waiting for behaviour: matching events to waits, resuming once, never too late."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tsunagu.clock import FixedClock
from tsunagu.journeys.waits import (
    EventMatch,
    JourneyWait,
    register_wait,
    resume_waits,
    wait_decision,
)

CLICK = EventMatch(type="link_clicked", message_id="msg_1")


class MemoryWaits:
    def __init__(self) -> None:
        self.waits: dict[tuple[str, str], JourneyWait] = {}

    def register_wait(self, wait: JourneyWait) -> None:
        self.waits[(wait.lead_id, wait.wait_id)] = wait

    def waits_of(self, lead_id: str) -> list[JourneyWait]:
        return [w for (lead, _), w in self.waits.items() if lead == lead_id]

    def end_wait(self, wait: JourneyWait) -> None:
        self.waits.pop((wait.lead_id, wait.wait_id), None)


class RecordingResumer:
    def __init__(self) -> None:
        self.resumed: list[tuple[str, Mapping[str, Any]]] = []

    def resume(self, token: str, output: Mapping[str, Any]) -> bool:
        self.resumed.append((token, output))
        return True


def setup() -> tuple[MemoryWaits, RecordingResumer]:
    store = MemoryWaits()
    clock = FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    register_wait(
        "lead_1", "exec:Wait for a click", "token-1", CLICK, 3 * 86400, store=store, clock=clock
    )
    return store, RecordingResumer()


def event(kind: str, at: str, **properties: Any) -> dict[str, Any]:
    return {"event_type": kind, "event_id": "evt_1", "occurred_at": at, "properties": properties}


def test_the_matching_click_resumes_the_journey_once() -> None:
    store, resumer = setup()
    click = event(
        "link_clicked",
        "2026-12-05T10:00:00.000Z",
        message_id="msg_1",
        link_id="l1",
        signals={"user_agent": "x"},
    )

    resumed = resume_waits("lead_1", store=store, resumer=resumer, **click)
    again = resume_waits("lead_1", store=store, resumer=resumer, **click)

    assert [r.wait.token for r in resumed] == ["token-1"] and again == []
    _, output = resumer.resumed[0]
    assert output["event"] == "link_clicked"
    assert output["properties"] == {"message_id": "msg_1", "link_id": "l1"}  # no signals


def test_the_event_that_ends_a_wait_is_recorded_as_its_nodes_decision() -> None:
    def waiting() -> MemoryWaits:
        store = MemoryWaits()
        register_wait(
            "lead_1", "welcome_nurture-lead_1-x:Wait for a click", "token-1", CLICK, 86400,
            store=store, clock=FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),
            journey_id="welcome_nurture", node="second_clicked",
        )  # fmt: skip
        return store

    click = event("link_clicked", "2026-12-04T10:00:00Z", message_id="msg_1")
    recorded: list[Any] = []

    def record(resumed: Any) -> None:
        recorded.append(wait_decision(resumed, "link_clicked", "evt_1", "2026-12-04T10:00:00Z"))

    store = waiting()
    resume_waits("lead_1", store=store, resumer=RecordingResumer(), on_decided=record, **click)
    [decision] = recorded
    assert decision is not None and decision.type == "journey_decision"
    assert decision.properties["node"] == "second_clicked"
    assert decision.properties["kind"] == "wait_for"
    assert decision.properties["execution_name"] == "welcome_nurture-lead_1-x"
    assert decision.properties["outcome"] == "link_clicked"  # the event's type: no label
    assert decision.properties["values"] == {
        "event": "link_clicked", "event_id": "evt_1", "by": "person",
    }  # fmt: skip
    assert store.waits == {}  # and the wait is over

    # A token Step Functions no longer has (the wait timed out meanwhile): the event decided
    # nothing, and nothing says it did
    recorded.clear()
    store = waiting()
    resume_waits("lead_1", store=store, resumer=GoneResumer(), on_decided=record, **click)
    assert recorded == [] and store.waits == {}

    # A wait registered without its node (before decisions were recorded): nothing to record
    resume_waits("lead_1", store=setup()[0], resumer=RecordingResumer(), on_decided=record, **click)
    assert recorded == [None]


class GoneResumer(RecordingResumer):
    def resume(self, token: str, output: Mapping[str, Any]) -> bool:
        super().resume(token, output)
        return False


def test_other_events_do_not_resume() -> None:
    store, resumer = setup()
    for kind, props in (
        ("link_clicked", {"message_id": "msg_2"}),  # another mail
        ("mail_opened", {"message_id": "msg_1"}),  # an open is not a click
    ):
        resume_waits(
            "lead_1",
            store=store,
            resumer=resumer,
            **event(kind, "2026-12-05T10:00:00.000Z", **props),
        )
    resume_waits(
        "lead_2",
        store=store,
        resumer=resumer,
        **event("link_clicked", "2026-12-05T10:00:00.000Z", message_id="msg_1"),
    )
    assert resumer.resumed == []
    assert len(store.waits) == 1


def test_a_click_after_the_deadline_is_too_late() -> None:
    store, resumer = setup()
    late = event("link_clicked", "2026-12-07T09:00:01.000Z", message_id="msg_1")
    assert resume_waits("lead_1", store=store, resumer=resumer, **late) == []


def test_matching_rules() -> None:
    pricing = EventMatch(type="page_view", url_contains="/pricing")
    assert pricing.matches("page_view", {"url": "https://www.example.com/pricing?plan=pro"})
    assert not pricing.matches("page_view", {"url": "https://www.example.com/case-study"})
    attended = EventMatch(type="seminar_attended", properties={"seminar": "2026-12"})
    assert attended.matches("seminar_attended", {"seminar": "2026-12"})
    assert not attended.matches("seminar_attended", {"seminar": "2027-01"})
    assert EventMatch(type="form_submitted", form_id="demo").matches(
        "form_submitted", {"form_id": "demo"}
    )
