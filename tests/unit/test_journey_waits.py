"""Waiting for behaviour: matching events to waits, resuming once, never too late."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tsunagu.clock import FixedClock, parse_instant
from tsunagu.journeys.waits import (
    EventMatch,
    JourneyWait,
    catch_up,
    register_wait,
    resume_waits,
    wait_decision,
)
from tsunagu.leads.model import LeadEvent

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
        recorded.append(wait_decision(resumed))

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


# ---------------------------------------------------------------- what the lead did before


PRICING = EventMatch(type="page_view", url_contains="/pricing", label="pricing")
ENTERED = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def at(time_of_day: str) -> datetime:
    return parse_instant(f"2026-12-04T{time_of_day}Z")


def lead_event(event_type: str, at: str, event_id: str, **properties: Any) -> LeadEvent:
    return LeadEvent(event_id, event_type, at, "lead_1", properties=properties)


def pricing_wait(
    store: MemoryWaits,
    execution: str = "exec",
    *,
    entered_at: datetime = ENTERED,
    entered_by: str | None = None,
    taken: Sequence[str] = (),
) -> JourneyWait:
    """A wait for a pricing-page visit, registered at 09:00 as wait_for_event registers it:
    with when the lead entered, by which event, and what the execution took before."""
    return register_wait(
        "lead_1", f"{execution}:Wait for a visit", "token-2", [PRICING], 3 * 86400,
        store=store, clock=FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),
        journey_id="welcome_nurture", node="pricing_or_case_study",
        entered_at=entered_at, entered_by=entered_by, taken=taken,
    )  # fmt: skip


def test_a_visit_made_before_the_wait_was_registered_ends_it_at_once() -> None:
    # The lead entered at 08:00 (the form), opened the pricing page at 08:00:01 while the
    # welcome mail was being sent, and the wait is registered at 09:00.
    store, resumer = MemoryWaits(), RecordingResumer()
    wait = pricing_wait(store, entered_at=at("08:00:00"), entered_by="evt_form")
    history = [
        lead_event("form_submitted", "2026-12-04T08:00:00.000Z", "evt_form"),
        lead_event("page_view", "2026-12-04T08:00:01.000Z", "evt_home", url="https://x.example/"),
        lead_event("mail_sent", "2026-12-04T08:00:02.000Z", "evt_mail"),
        lead_event("page_view", "2026-12-04T08:00:03.000Z", "evt_p1", url="https://x.example/pricing"),
        lead_event("page_view", "2026-12-04T08:30:00.000Z", "evt_p2", url="https://x.example/pricing"),
    ]  # fmt: skip
    recorded: list[Any] = []
    ended = catch_up(
        wait, history, store=store, resumer=resumer,
        on_decided=lambda resumed: recorded.append(wait_decision(resumed)),
    )  # fmt: skip
    assert ended is not None and ended.outcome == "pricing"
    [(token, output)] = resumer.resumed
    assert token == "token-2"
    assert (output["matched"], output["event_id"]) == ("pricing", "evt_p1")  # the first visit
    assert store.waits == {}  # ended, as route_events ends a wait it resumes
    [decision] = recorded
    assert decision.properties["values"]["event_id"] == "evt_p1"
    assert decision.occurred_at == "2026-12-04T08:00:03.000Z"


def test_only_what_a_person_did_and_nothing_twice_ends_a_wait_from_history() -> None:
    store, resumer = MemoryWaits(), RecordingResumer()
    waits: dict[str, Any] = {"store": store, "resumer": resumer}
    wait = pricing_wait(store, "exec", entered_by="evt_entry")
    pricing = "https://x.example/pricing"
    history = [
        # the event that entered the lead (a journey triggered by a pricing view)
        lead_event("page_view", "2026-12-04T08:00:00.000Z", "evt_entry", url=pricing),
        # a scanner's, or a proxy's
        lead_event("page_view", "2026-12-04T08:01:00.000Z", "evt_bot", url=pricing, automated=True),
        # a visit that already ended an earlier wait of this execution...
        lead_event("page_view", "2026-12-04T08:02:00.000Z", "evt_used", url=pricing),
        lead_event(
            "journey_decision", "2026-12-04T08:02:00.000Z", "dec_1", kind="wait_for",
            execution_name="exec", values={"event": "page_view", "event_id": "evt_used"},
        ),
        # ...and one that ended a wait of another execution counts here
        lead_event(
            "journey_decision", "2026-12-04T08:03:00.000Z", "dec_2", kind="wait_for",
            execution_name="other", values={"event": "page_view", "event_id": "evt_p"},
        ),
    ]  # fmt: skip
    assert catch_up(wait, history, **waits) is None
    assert resumer.resumed == [] and list(store.waits.values()) == [wait]  # it still waits

    history.append(lead_event("page_view", "2026-12-04T08:04:00.000Z", "evt_p", url=pricing))
    ended = catch_up(wait, history, **waits)
    assert ended is not None and resumer.resumed[0][1]["event_id"] == "evt_p"


def test_a_click_whose_judgement_is_not_final_is_left_to_the_stream() -> None:
    # A click a later burst may still show to be a scanner's comes back through the stream
    # once settled, and the wait registered by then takes it there.
    store, resumer = MemoryWaits(), RecordingResumer()
    waits: dict[str, Any] = {"store": store, "resumer": resumer}
    wait = register_wait(
        "lead_1", "exec:Wait for a click", "token-1", CLICK, 3 * 86400,
        store=store, clock=FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC)), entered_at=ENTERED,
    )  # fmt: skip
    unsettled = lead_event("link_clicked", "2026-12-04T08:00:00.000Z", "evt_c", message_id="msg_1")
    assert catch_up(wait, [unsettled], **waits) is None
    settled = lead_event(
        "link_clicked", "2026-12-04T08:00:00.000Z", "evt_c", message_id="msg_1", settled=True
    )
    assert catch_up(wait, [settled], **waits) is not None


def test_what_counts_arrived_after_the_entry_whatever_the_browsers_clock_said() -> None:
    # The form entered the lead at 08:00:00 (server time). The thank-you page's beacon came
    # from a browser whose clock is 3 s slow: stored at its time, 07:59:58, received 08:00:01.
    # A view from the same browser an hour before the form was received then, and is older.
    store, resumer = MemoryWaits(), RecordingResumer()
    wait = pricing_wait(store, entered_at=at("08:00:00"), entered_by="evt_form")
    pricing = "https://x.example/pricing"
    before = lead_event(
        "page_view", "2026-12-04T06:59:58.000Z", "evt_old", url=pricing,
        received_at="2026-12-04T07:00:01.000Z",
    )  # fmt: skip
    slow = lead_event(
        "page_view", "2026-12-04T07:59:58.000Z", "evt_slow", url=pricing,
        received_at="2026-12-04T08:00:01.000Z",
    )  # fmt: skip
    form = lead_event("form_submitted", "2026-12-04T08:00:00.000Z", "evt_form")
    ended = catch_up(wait, [before, slow, form], store=store, resumer=resumer)
    assert ended is not None and resumer.resumed[0][1]["event_id"] == "evt_slow"


def test_a_journey_entered_by_a_browser_event_counts_from_when_the_server_had_it() -> None:
    # A pricing view entered the lead; its browser's clock was an hour slow. A case-study
    # view received before it (but stamped later by a correct clock) is not after the entry.
    store, resumer = MemoryWaits(), RecordingResumer()
    case_study = EventMatch(type="page_view", url_contains="/case-study", label="case_study")
    wait = register_wait(
        "lead_1", "exec:Wait for a case study", "token-3", [case_study], 86400,
        store=store, clock=FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),
        entered_at=at("07:00:00"), entered_by="evt_entry",
    )  # fmt: skip
    entry = lead_event(
        "page_view", "2026-12-04T07:00:00.000Z", "evt_entry", url="https://x.example/pricing",
        received_at="2026-12-04T08:00:00.000Z",
    )  # fmt: skip
    earlier = lead_event(
        "page_view", "2026-12-04T07:30:00.000Z", "evt_earlier", url="https://x.example/case-study"
    )
    ended = catch_up(wait, [entry, earlier], store=store, resumer=resumer)
    assert ended is None and resumer.resumed == []


def test_the_event_that_ended_the_previous_wait_does_not_end_this_one() -> None:
    # Its journey_decision may not be written yet when the execution has already gone on to
    # the next wait: the execution's state says which event it was (``taken``).
    store, resumer = MemoryWaits(), RecordingResumer()
    wait = pricing_wait(store, "exec", taken=["evt_p"])
    visit = lead_event(
        "page_view", "2026-12-04T08:10:00.000Z", "evt_p", url="https://x.example/pricing"
    )
    ended = catch_up(wait, [visit], store=store, resumer=resumer)
    assert ended is None and resumer.resumed == []


# ---------------------------------------------------------------- a record delivered again


VISIT = {
    "event_type": "page_view",
    "event_id": "evt_visit",
    "occurred_at": "2026-12-04T08:30:00.000Z",
    "properties": {"url": "https://x.example/pricing"},
}


def test_a_redelivered_visit_does_not_end_the_executions_next_wait() -> None:
    # Given an execution waiting for a pricing-page visit, which the lead's visit ended
    store, resumer = MemoryWaits(), RecordingResumer()
    pricing_wait(store, "exec")
    assert len(resume_waits("lead_1", **VISIT, store=store, resumer=resumer)) == 1
    # And the same execution, gone on, now waiting for a second visit, with the first
    # wait's response in its state (wait_for_event takes what it names as ``taken``)
    _, response = resumer.resumed[0]
    second = register_wait(
        "lead_1", "exec:Wait for another visit", "token-3", [PRICING], 86400, store=store,
        clock=FixedClock(datetime(2026, 12, 4, 9, 10, tzinfo=UTC)), entered_at=ENTERED,
        taken=response["taken"],
    )  # fmt: skip
    # When the stream delivers the first visit again (a retried batch)
    again = resume_waits("lead_1", **VISIT, store=store, resumer=resumer)
    # Then the visit that ended the first wait does not end the second one
    assert again == [] and list(store.waits.values()) == [second]
    assert [token for token, _ in resumer.resumed] == ["token-2"]
    # and a new visit does, its response naming both visits for a third wait
    new = {**VISIT, "event_id": "evt_again", "occurred_at": "2026-12-04T09:20:00.000Z"}
    (ended,) = resume_waits("lead_1", **new, store=store, resumer=resumer)
    assert ended.wait == second
    assert resumer.resumed[-1][1]["taken"] == ["evt_again", "evt_visit"]


def test_a_redelivered_event_from_before_the_entry_does_not_end_a_wait() -> None:
    # Given a wait of an execution entered at 08:00 by a pricing-page visit (a journey for
    # people who look at prices), which now waits for another visit
    store, resumer = MemoryWaits(), RecordingResumer()
    pricing_wait(store, entered_by="evt_entry")
    # When the stream delivers again the visit that entered the lead, and one from 07:00
    # (received then, whatever the browser's clock said)
    entering = {**VISIT, "event_id": "evt_entry", "occurred_at": "2026-12-04T08:00:00.000Z"}
    earlier = {
        **VISIT, "event_id": "evt_early", "occurred_at": "2026-12-04T08:10:00.000Z",
        "properties": {**VISIT["properties"], "received_at": "2026-12-04T07:00:00.000Z"},
    }  # fmt: skip
    for event in (entering, earlier):
        assert resume_waits("lead_1", **event, store=store, resumer=resumer) == []
    # Then neither ends the wait: what counts is what the lead did since entering, as when the
    # wait looked back at what the lead had done (catch_up)
    assert resumer.resumed == [] and len(store.waits) == 1
    # and what arrived in the very instant of the entry counts
    same_instant = {**VISIT, "occurred_at": "2026-12-04T08:00:00.000Z"}
    assert len(resume_waits("lead_1", **same_instant, store=store, resumer=resumer)) == 1


def test_a_click_settled_after_the_wait_was_registered_still_ends_it() -> None:
    # Given a click at 08:59:50, after the entry, that the wait registered at 09:00 left to the
    # stream: its judgement was not final yet when the wait looked back
    store, resumer = MemoryWaits(), RecordingResumer()
    register_wait(
        "lead_1", "exec:Wait for a click", "token-1", CLICK, 86400, store=store,
        clock=FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC)), entered_at=ENTERED,
    )  # fmt: skip
    # When the stream delivers it settled, at 09:00:30
    click = event("link_clicked", "2026-12-04T08:59:50.000Z", message_id="msg_1", settled=True)
    # Then it ends the wait: it arrived before the wait, but since the entry
    assert len(resume_waits("lead_1", **click, store=store, resumer=resumer)) == 1
