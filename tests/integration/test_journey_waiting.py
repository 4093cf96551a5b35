"""Where executions wait, for the canvas's live counts (moto, in-process): the wait steps record
it as the generated state machines call them, a later wait replaces an earlier one, and the
record stops counting when the wait ends - by the lead acting, by leaving the journey, or by its
time passing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ROOT, AwsStack
from tests.support.leads import store_lead
from tests.support.shipped import install_shipped_journeys
from tests.unit.test_journey_waits import RecordingResumer
from tsunagu import services
from tsunagu.clock import parse_instant
from tsunagu.commands import journeys
from tsunagu.journeys.compiler import compile_journey, read_definition
from tsunagu.journeys.lifecycle import JourneyEntry, ParkedExecution
from tsunagu.journeys.waits import resume_waits
from tsunagu.leads.model import LeadEvent
from tsunagu.settings import Settings
from tsunagu.store.tables import bind_tables

JOURNEY = "seminar_follow_up"
WAIT_FOR = "click_or_attend"
TIMED = "next_business_morning"


def waiting(settings: Settings) -> dict[str, int]:
    report = journeys.status(
        services.journey_commands(settings), services.operator(settings), JOURNEY
    )
    (one,) = report["journeys"]
    counts: dict[str, int] = one["waiting_at_node"]
    return counts


def wait_for_payload(execution: str, lead_id: str) -> dict[str, Any]:
    return {
        "token": f"token-{execution}",
        "lead_id": lead_id,
        "wait_id": f"{execution}:Wait for a click on the invitation or for attendance",
        "events": [{"type": "link_clicked", "label": "clicked"}],
        "timeout_seconds": 3 * 24 * 3600,
        "journey_id": JOURNEY,
        "node": WAIT_FOR,
    }


def schedule_payload(execution: str, lead_id: str) -> dict[str, Any]:
    return {
        "rule": {"kind": "next_business_day", "at": "10:00"},
        "state": {"lead_id": lead_id},
        "journey_id": JOURNEY,
        "node": TIMED,
        "execution": execution,
    }


@pytest.fixture
def stack(aws: AwsStack) -> Settings:
    settings = aws.settings()
    install_shipped_journeys(settings)
    return settings


def test_the_generated_steps_pass_what_the_count_needs() -> None:
    definition = read_definition((ROOT / "journeys" / f"{JOURNEY}.json").read_text("utf-8"))
    states = compile_journey(definition)["States"]
    schedule = states["Schedule mail A for the next business morning"]["Parameters"]["Payload"]
    assert schedule["journey_id"] == JOURNEY and schedule["node"] == TIMED
    assert schedule["execution.$"] == "$$.Execution.Name"
    wait = states["Wait for a click on the invitation or for attendance"]["Parameters"]["Payload"]
    assert (wait["journey_id"], wait["node"]) == (JOURNEY, WAIT_FOR)
    # and when the lead entered, so that what it did before the wait counts (waits.catch_up)
    assert wait["execution.$"] == "$$.Execution"
    # and the state, whose response names the event that ended the previous wait
    assert wait["state.$"] == "$"


def test_each_execution_counts_once_at_the_node_it_waits_at(stack: Settings, aws: AwsStack) -> None:
    leads = [store_lead(aws, f"waiting.{n}@example.jp").lead_id for n in range(3)]
    register = aws.function("wait_for_event")
    schedule = aws.function("next_send_time")
    assert waiting(stack) == {}

    for n, lead_id in enumerate(leads):
        register.invoke(wait_for_payload(f"exec-{n}", lead_id))
    register.invoke(wait_for_payload("exec-0", leads[0]))  # a retried task: still one
    assert waiting(stack) == {WAIT_FOR: 3}

    # exec-0 clicked: its wait ends, and it moves on to wait for the next business morning
    store = services.wait_repository(stack)
    (wait,) = store.waits_of(leads[0])
    store.end_wait(wait)
    assert waiting(stack) == {WAIT_FOR: 2}
    answer = schedule.invoke(schedule_payload("exec-0", leads[0]))
    assert waiting(stack) == {WAIT_FOR: 2, TIMED: 1}

    # exec-1 leaves the journey (unsubscribed, say): it no longer waits anywhere
    repository = services.journey_repository(stack)
    left = JourneyEntry(
        leads[1], JOURNEY, "exec-1", "arn:exec-1", "2026-12-01T00:00:00+00:00", "manual",
        None, 1, "active", None, "2026-12-01T00:00:00+00:00",
    )  # fmt: skip
    repository.exit_entry(left, "unsubscribed", "2026-12-01T00:00:01+00:00")
    assert waiting(stack) == {WAIT_FOR: 1, TIMED: 1}

    # Once the send time has passed, exec-0 is not waiting any more (it has gone on to send)
    send_at = parse_instant(answer["send_at"])
    assert repository.waiting_by_node(JOURNEY, send_at - timedelta(seconds=1)) == {
        WAIT_FOR: 1,
        TIMED: 1,
    }
    assert repository.waiting_by_node(JOURNEY, send_at) == {WAIT_FOR: 1}


def test_a_wait_that_ended_does_not_remove_a_later_one(stack: Settings, aws: AwsStack) -> None:
    lead_id = store_lead(aws, "later.wait@example.jp").lead_id
    aws.function("wait_for_event").invoke(wait_for_payload("exec-9", lead_id))
    (wait,) = services.wait_repository(stack).waits_of(lead_id)
    # The execution already waits at the next node when the old wait's clean-up comes late
    aws.function("next_send_time").invoke(schedule_payload("exec-9", lead_id))
    services.wait_repository(stack).end_wait(wait)
    assert waiting(stack) == {TIMED: 1}


def test_a_wait_registered_after_the_lead_acted_ends_at_once_and_counts_from_the_entry(
    stack: Settings, aws: AwsStack
) -> None:
    # Given a lead that entered the journey by a form at 10:00 (its execution starting a
    # little later), clicked the invitation at 10:05, and viewed a page at 10:06
    lead_id = store_lead(aws, "acted.early@example.jp").lead_id
    leads = services.lead_repository(stack)
    happened = [
        ("evt_form", "form_submitted", "2026-12-01T01:00:00.000Z", {}),
        ("evt_click", "link_clicked", "2026-12-01T01:05:00.000Z", {"settled": True}),
        ("evt_view", "page_view", "2026-12-01T01:06:00.000Z", {"url": "https://x.example/"}),
    ]
    for event_id, kind, at, properties in happened:
        leads.put_event(LeadEvent(event_id, kind, at, lead_id, properties=properties))
    execution = {
        "Name": "exec-early",
        "StartTime": "2026-12-01T01:00:02.000Z",
        "Input": {"lead_id": lead_id, "entered_on": happened[0][2], "entered_by": "evt_form"},
    }
    register = aws.function("wait_for_event")

    # When the journey registers its wait for a click at 11:00, Then the click ends it at once,
    # and the decision names the click
    answer = register.invoke({**wait_for_payload("exec-early", lead_id), "execution": execution})
    assert answer["caught_up"] is True
    assert services.wait_repository(stack).waits_of(lead_id) == []
    assert waiting(stack) == {}

    # A wait for a form submission is not ended by the one that entered the lead
    form = {**wait_for_payload("exec-form", lead_id), "events": [{"type": "form_submitted"}]}
    answer = register.invoke({**form, "execution": {**execution, "Name": "exec-form"}})
    assert answer["caught_up"] is False
    assert len(services.wait_repository(stack).waits_of(lead_id)) == 1

    # Nor does a state machine compiled before (no execution given) look back at all
    answer = register.invoke(wait_for_payload("exec-old", lead_id))
    assert answer["caught_up"] is False
    assert len(services.wait_repository(stack).waits_of(lead_id)) == 2


def test_a_wait_is_not_ended_by_a_redelivered_event_its_execution_already_took(
    stack: Settings, aws: AwsStack
) -> None:
    # Given an execution that entered by a form at 10:00, whose first wait a visit ended (the
    # response in its state names it, and the one before), now registering its next wait
    lead_id = store_lead(aws, "visited.twice@example.jp").lead_id
    entry = {"lead_id": lead_id, "entered_on": "2026-12-01T01:00:00.000Z", "entered_by": "evt_form"}
    execution = {"Name": "exec-next", "StartTime": "2026-12-01T01:00:02.000Z", "Input": entry}
    state = {"response": {"matched": "clicked", "event_id": "evt_visit", "taken": ["evt_first"]}}
    payload = {**wait_for_payload("exec-next", lead_id), "execution": execution, "state": state}
    assert aws.function("wait_for_event").invoke(payload)["caught_up"] is False
    # Then the stored wait knows the entry and what the execution took
    (wait,) = services.wait_repository(stack).waits_of(lead_id)
    assert (wait.entered_at, wait.entered_by) == ("2026-12-01T01:00:00.000Z", "evt_form")
    assert wait.taken == {"evt_visit", "evt_first"}
    # When the stream delivers those clicks again (a retried batch), Then neither ends the wait,
    # and a new click does
    resumer = RecordingResumer()
    for event_id in ("evt_visit", "evt_first", "evt_form", "evt_new"):
        resume_waits(
            lead_id, "link_clicked", event_id, "2026-12-01T01:10:00.000Z", {"settled": True},
            store=services.wait_repository(stack), resumer=resumer,
        )  # fmt: skip
    assert [output["event_id"] for _, output in resumer.resumed] == ["evt_new"]


def test_a_look_back_that_fails_leaves_the_wait_registered(
    stack: Settings, aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Looking back is only a help: the wait is there for route_events, and the task must not
    # fail (its failure would end the lead's journey).
    lead_id = store_lead(aws, "look.back.fails@example.jp").lead_id

    def throttled(*_: object) -> bool:
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(services.JourneyWaits, "catch_up", throttled)
    execution = {"Name": "exec-x", "StartTime": "2026-12-01T01:00:00.000Z", "Input": {}}
    payload = {**wait_for_payload("exec-x", lead_id), "execution": execution}
    assert aws.function("wait_for_event").invoke(payload)["caught_up"] is False
    unreadable = {**execution, "Input": {"entered_on": "yesterday"}, "StartTime": None}
    payload = {**wait_for_payload("exec-y", lead_id), "execution": unreadable}
    assert aws.function("wait_for_event").invoke(payload)["caught_up"] is False
    assert len(services.wait_repository(stack).waits_of(lead_id)) == 2


def parked_at(execution: str, token: str, at: str) -> ParkedExecution:
    return ParkedExecution(JOURNEY, execution, "lead-1", "invite", token, at)


def test_a_release_from_an_older_list_does_not_remove_a_later_park(stack: Settings) -> None:
    """Released at one gate, the execution may park again at the next one (its journey paused
    again) before a second releaser, reading the list from before, unparks the first park: the
    second park must stay, or no resume would ever release it."""
    repository = services.journey_repository(stack)
    first = parked_at("exec-7", "token-first", "2026-12-01T09:00:00+00:00")
    repository.park(first)
    again = parked_at("exec-7", "token-again", "2026-12-01T09:00:00+00:00")
    repository.park(again)
    repository.unpark(first)
    assert repository.parked(JOURNEY) == [again]
    repository.unpark(again)
    assert repository.parked(JOURNEY) == []


def test_a_record_parked_before_the_token_had_its_own_attribute_is_read_and_unparked(
    stack: Settings,
) -> None:
    tables = bind_tables(stack)
    data = {"lead_id": "lead-1", "step": "invite", "token": "token-old", "deadline": None}
    tables.journeys(
        f"parked#{JOURNEY}", "exec-8", data=data, status="parked",
        updated_at="2026-12-01T09:00:00+00:00",
    ).save()  # fmt: skip
    repository = services.journey_repository(stack)
    (held,) = repository.parked(JOURNEY)
    assert held == parked_at("exec-8", "token-old", "2026-12-01T09:00:00+00:00")
    repository.unpark(held)
    assert repository.parked(JOURNEY) == []
