"""A click that looks like a person's is acted on only once no later click can re-judge it
(tsunagu.tracking.settling): route_events holds it, and acts on it when it comes back settled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tsunagu.journeys.lifecycle import Occurrence
from tsunagu.routing import route_event
from tsunagu.stream_batch import latest_activity
from tsunagu.tracking.settling import (
    SETTLE_AFTER_SECONDS,
    ClickSettling,
    HeldClick,
    awaits_settling,
)

LEAD = "lead_01JDEXAMPLE0000000000000001"
AT = "2026-12-04T01:00:00.000Z"


def click(**properties: Any) -> dict[str, Any]:
    return {
        "subject": f"lead#{LEAD}",
        "sk": f"{AT}#evt_1",
        "event_id": "evt_1",
        "type": "link_clicked",
        "occurred_at": AT,
        "lead_id": LEAD,
        "properties": {"message_id": "m1", "link_id": "pricing", "automated": False, **properties},
    }


@dataclass
class Everything:
    """Every port route_event may act through, noting what was asked of it."""

    held: list[HeldClick] = field(default_factory=list)
    scored: list[tuple[str, bool]] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    journeys: list[tuple[str, bool]] = field(default_factory=list)
    activity: list[str] = field(default_factory=list)

    def hold(self, click: HeldClick) -> None:
        self.held.append(click)

    def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool:
        self.activity.append(event_type)
        return True

    def resume_matching(
        self,
        lead_id: str,
        event_type: str,
        event_id: str,
        occurred_at: str,
        properties: Mapping[str, Any],
    ) -> int:
        self.resumed.append(event_id)
        return 1


@dataclass
class Scoring:
    seen: Everything

    def on_event(self, event: Occurrence, *, automated: bool) -> None:
        self.seen.scored.append((event.event_id, automated))

    def on_stage_change(self, event: Occurrence) -> None:
        pass


@dataclass
class Entry:
    seen: Everything

    def on_event(self, event: Occurrence, *, by_person: bool) -> None:
        self.seen.journeys.append((event.event_id, by_person))


def route(image: dict[str, Any]) -> Everything:
    seen = Everything()
    route_event(
        image,
        store=seen,
        waits=seen,
        journeys=Entry(seen),
        qualification=Scoring(seen),
        settling=seen,
    )
    return seen


def test_a_persons_click_is_held_and_nothing_acts_on_it_yet() -> None:
    seen = route(click())

    [held] = seen.held
    assert (held.subject, held.sk, held.event_id) == (f"lead#{LEAD}", f"{AT}#evt_1", "evt_1")
    assert held.settles_at == "2026-12-04T01:00:15.000Z"
    assert SETTLE_AFTER_SECONDS == 15
    assert (seen.scored, seen.resumed, seen.journeys, seen.activity) == ([], [], [], [])


def test_a_settled_persons_click_is_scored_and_resumes_the_waiting_journey() -> None:
    seen = route(click(settled=True))

    assert seen.held == []
    assert seen.scored == [("evt_1", False)]
    assert seen.journeys == [("evt_1", True)]
    assert seen.resumed == ["evt_1"]
    assert seen.activity == ["link_clicked"]


def test_a_click_the_burst_re_judged_settles_as_a_machines_and_earns_nothing() -> None:
    seen = route(click(automated=True, reasons=["link_burst"], settled=True))

    assert seen.held == []
    assert seen.scored == [("evt_1", True)]  # scoring is told, and scores no automated event
    assert seen.journeys == [("evt_1", False)]
    assert (seen.resumed, seen.activity) == ([], [])


def test_an_automated_click_is_final_when_it_arrives_and_is_not_held() -> None:
    assert not awaits_settling(click(automated=True, reasons=["honeypot_link"]))
    assert route(click(automated=True, reasons=["honeypot_link"])).held == []


def test_opens_and_other_events_are_never_held() -> None:
    page_view = {**click(), "type": "page_viewed"}
    opened = {**click(), "type": "mail_opened"}
    assert not awaits_settling(page_view)
    assert not awaits_settling(opened)
    assert route(opened).held == []


def test_a_held_click_is_not_the_batchs_latest_activity() -> None:
    earlier = {**click(settled=True), "occurred_at": "2026-12-04T00:59:00.000Z"}
    assert latest_activity([earlier, click()]) == {LEAD: "2026-12-04T00:59:00.000Z"}


@dataclass
class Starter:
    started: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)

    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str:
        self.started.append((state_machine_arn, name, payload))
        return f"{state_machine_arn}:{name}"


def test_holding_starts_one_execution_named_by_the_click() -> None:
    starter = Starter()
    ClickSettling(starter, "arn:sm:settle-clicks").hold(HeldClick.of(click()))

    assert starter.started == [
        (
            "arn:sm:settle-clicks",
            "evt_1",
            {
                "subject": f"lead#{LEAD}",
                "sk": f"{AT}#evt_1",
                "event_id": "evt_1",
                "settles_at": "2026-12-04T01:00:15.000Z",
            },
        )
    ]
