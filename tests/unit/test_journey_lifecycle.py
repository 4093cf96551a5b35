"""A lead's way through journeys: entry by trigger and re-entry policy, exit on the events that
end it, and how resume lets parked executions go (tsunagu.journeys.lifecycle)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.journey_fixtures import NOW, journey, lead
from tsunagu.clock import FixedClock, isoformat
from tsunagu.journeys.gate import Release
from tsunagu.journeys.lifecycle import (
    JourneyEntry,
    Occurrence,
    ParkedExecution,
    StartedExecution,
    enter,
    enter_leads,
    execution_name,
    exit_reason_for,
    lead_payload,
    leave_journeys,
    may_end_journeys,
    may_enter,
    releases,
    trigger_matches,
    triggered_journeys,
    with_exit,
)
from tsunagu.journeys.lifecycle import (
    execution_arn as arn_of_execution,
)
from tsunagu.journeys.model import (
    ExitConditions,
    Journey,
    PublishedVersion,
    ReentryPolicy,
    ResumePolicy,
    Trigger,
)
from tsunagu.journeys.stream import JourneyRouting
from tsunagu.journeys.waits import EventMatch
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead

STATE_MACHINE = (
    "arn:aws:states:ap-northeast-1:123456789012:stateMachine:tsunagu-dev-seminar-follow-up"
)
LEAD = "lead_01JEXAMPLE7Q2W3E4R5T6Y7U8I"


def occurrence(kind: str, **properties: Any) -> Occurrence:
    return Occurrence(LEAD, "evt_1", kind, isoformat(NOW), properties)


# ---------------------------------------------------------------- triggers
def test_a_form_trigger_without_a_form_fires_on_any_form() -> None:
    trigger = Trigger(kind="form_submitted")
    assert trigger_matches(trigger, occurrence("form_submitted", form_id="demo"))
    assert trigger_matches(trigger, occurrence("form_submitted", form_id="white-paper"))
    assert not trigger_matches(trigger, occurrence("page_view", form_id="demo"))


def test_a_form_trigger_with_a_form_fires_on_that_form_only() -> None:
    trigger = Trigger(kind="form_submitted", form_id="demo-request")
    assert trigger_matches(trigger, occurrence("form_submitted", form_id="demo-request"))
    assert not trigger_matches(trigger, occurrence("form_submitted", form_id="demo"))
    assert not trigger_matches(trigger, occurrence("form_submitted"))


def test_an_event_trigger_fires_on_its_event() -> None:
    trigger = Trigger(kind="event", event=EventMatch(type="page_view", url_contains="/pricing"))
    assert trigger_matches(trigger, occurrence("page_view", url="https://www.example.com/pricing"))
    assert not trigger_matches(trigger, occurrence("page_view", url="https://www.example.com/"))
    assert not trigger_matches(trigger, occurrence("link_clicked", url="/pricing"))


def test_a_stage_trigger_fires_when_the_stage_becomes_it() -> None:
    trigger = Trigger(kind="stage_reached", stage="mql")
    assert trigger_matches(trigger, occurrence("stage_changed", **{"from": "lead", "to": "mql"}))
    assert not trigger_matches(trigger, occurrence("stage_changed", **{"from": "mql", "to": "sql"}))
    assert not trigger_matches(trigger, occurrence("lead_updated", to="mql"))


@pytest.mark.parametrize(
    ("before", "after", "fires"),
    [
        (40, 55, True),
        (40, 50, True),  # reaching the threshold counts
        (50, 60, False),  # at or over it already
        (60, 40, False),  # falling through it
        (10, 20, False),
        (None, 70, True),  # no previous score: from 0
    ],
)
def test_a_score_trigger_fires_when_the_score_crosses_upwards(
    before: int | None, after: int, fires: bool
) -> None:
    trigger = Trigger(kind="score_crossed", threshold=50)
    properties: dict[str, Any] = {"to": after} if before is None else {"from": before, "to": after}
    assert trigger_matches(trigger, occurrence("score_changed", **properties)) is fires
    assert not trigger_matches(trigger, occurrence("stage_changed", **properties))


def test_a_manual_trigger_never_fires_on_an_event() -> None:
    trigger = Trigger(kind="manual")
    for kind in ("form_submitted", "stage_changed", "score_changed", "manual"):
        assert not trigger_matches(trigger, occurrence(kind, to="mql", form_id="demo"))


@pytest.mark.parametrize("kind", ["event", "score_crossed", "stage_reached"])
def test_a_trigger_without_what_it_needs_is_refused(kind: str) -> None:
    with pytest.raises(ValidationError, match="needs its"):
        Trigger(kind=kind)


def test_active_and_paused_journeys_are_triggered_drafts_and_archived_ones_not() -> None:
    # A paused journey still takes the leads its trigger brings (its gate holds their first mail
    # until the resume, as for a lead started by hand while paused): a pause never loses a lead
    on_forms = [Trigger(kind="form_submitted")]
    journeys = [
        journey(journey_id="active_one", triggers=on_forms),
        journey(journey_id="paused_one", triggers=on_forms, status="paused"),
        journey(journey_id="draft_one", triggers=on_forms, status="draft"),
        journey(journey_id="archived_one", triggers=on_forms, status="archived"),
        journey(journey_id="manual_one", triggers=[Trigger(kind="manual")]),
    ]
    fired = triggered_journeys(journeys, occurrence("form_submitted", form_id="demo"))
    assert [j.journey_id for j in fired] == ["active_one", "paused_one"]


# ---------------------------------------------------------------- execution names
NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def test_the_execution_name_is_deterministic_per_journey_lead_and_cause() -> None:
    first = execution_name("seminar_follow_up", LEAD, "event:evt_1")
    assert first == execution_name("seminar_follow_up", LEAD, "event:evt_1")
    others = {
        execution_name("seminar_follow_up", LEAD, "event:evt_2"),
        execution_name("welcome_nurture", LEAD, "event:evt_1"),
        execution_name("seminar_follow_up", "lead_01JOTHER", "event:evt_1"),
    }
    assert first not in others and len(others) == 3


def test_the_execution_name_fits_step_functions_rules_even_for_long_ids() -> None:
    longest_journey = "j" + "x" * 62  # the journey id pattern allows 63 characters
    for journey_id, lead_id, cause in [
        ("seminar_follow_up", LEAD, "event:evt_1"),
        (longest_journey, LEAD * 3, "manual:" + "2026-12-09" * 30),
        ("a", "lead_1", "manual:2026-12-09"),
    ]:
        name = execution_name(journey_id, lead_id, cause)
        assert NAME.match(name), name
        assert len(name) <= 80


def test_the_execution_name_tells_a_person_which_journey_and_lead() -> None:
    name = execution_name("seminar_follow_up", LEAD, "manual:2026-12-09")
    assert name.startswith(f"seminar_follow_up-{LEAD[:12]}-")


# ---------------------------------------------------------------- re-entry
def entry(**overrides: Any) -> JourneyEntry:
    values: dict[str, Any] = {
        "lead_id": LEAD,
        "journey_id": "seminar_follow_up",
        "execution_name": "seminar_follow_up-old",
        "execution_arn": STATE_MACHINE.replace(":stateMachine:", ":execution:") + ":old",
        "entered_at": isoformat(NOW - timedelta(days=40)),
        "trigger": "manual",
        "trigger_event_id": None,
        "entries": 1,
        "status": "exited",
        "exit_reason": None,
        "updated_at": isoformat(NOW - timedelta(days=20)),
    }
    return JourneyEntry(**{**values, **overrides})


def test_a_first_entry_is_always_allowed() -> None:
    for kind in ("never", "after_interval", "always"):
        policy = ReentryPolicy(kind=kind, interval_days=30)
        assert may_enter(journey(reentry=policy), None, NOW)


def test_never_refuses_a_second_entry() -> None:
    assert not may_enter(journey(reentry=ReentryPolicy(kind="never")), entry(), NOW)


def test_always_allows_a_second_entry() -> None:
    assert may_enter(journey(reentry=ReentryPolicy(kind="always")), entry(), NOW)


def test_after_an_interval_counts_from_the_last_entry() -> None:
    policy = journey(reentry=ReentryPolicy(kind="after_interval", interval_days=30))
    assert may_enter(policy, entry(entered_at=isoformat(NOW - timedelta(days=30))), NOW)
    assert may_enter(policy, entry(entered_at=isoformat(NOW - timedelta(days=45))), NOW)
    assert not may_enter(
        policy, entry(entered_at=isoformat(NOW - timedelta(days=30) + timedelta(seconds=1))), NOW
    )


# ---------------------------------------------------------------- enter
class MemoryEntries:
    """The entry records, with the repository's conditional claim."""

    def __init__(self, *entries: JourneyEntry) -> None:
        self.entries = {(e.lead_id, e.journey_id): e for e in entries}
        self.claims: list[JourneyEntry] = []
        self.exits: list[tuple[str, str, str]] = []
        self.lose_claims = False

    def entry(self, lead_id: str, journey_id: str) -> JourneyEntry | None:
        return self.entries.get((lead_id, journey_id))

    def entries_of(self, lead_id: str) -> list[JourneyEntry]:
        return [e for (lead, _), e in self.entries.items() if lead == lead_id]

    def claim_entry(self, entry: JourneyEntry, previous: JourneyEntry | None) -> bool:
        if self.lose_claims or self.entries.get((entry.lead_id, entry.journey_id)) != previous:
            return False
        self.claims.append(entry)
        self.entries[(entry.lead_id, entry.journey_id)] = entry
        return True

    def release_entry(self, entry: JourneyEntry, previous: JourneyEntry | None) -> None:
        key = (entry.lead_id, entry.journey_id)
        if self.entries.get(key) != entry:
            return  # written since: not this claim's to undo
        if previous is None:
            del self.entries[key]
        else:
            self.entries[key] = previous

    def exit_entry(self, entry: JourneyEntry, reason: str, at: str) -> None:
        self.exits.append((entry.journey_id, reason, at))
        self.entries[(entry.lead_id, entry.journey_id)] = with_exit(entry, reason, at)


class RecordingExecutions:
    def __init__(self, running: frozenset[str] = frozenset()) -> None:
        self.running = running
        """Execution ARNs still running (a lead still in the journey)."""
        self.started: list[tuple[str, str, dict[str, Any]]] = []
        self.stopped: list[tuple[str, str]] = []
        self.released: list[tuple[str, dict[str, Any]]] = []

    def is_running(self, execution_arn: str) -> bool:
        return execution_arn in self.running

    def exists(self, execution_arn: str) -> bool:
        # As Step Functions keeps them: by the whole ARN - the same name on another state
        # machine (the journey's own, after its first publication) is another execution
        return any(arn_of_execution(sm, name) == execution_arn for sm, name, _ in self.started)

    def start(
        self, state_machine_arn: str, name: str, payload: Mapping[str, Any]
    ) -> StartedExecution:
        arn = arn_of_execution(state_machine_arn, name)
        existed = self.exists(arn)
        self.started.append((state_machine_arn, name, dict(payload)))
        return StartedExecution(arn, existed)

    def stop(self, execution_arn: str, cause: str) -> None:
        self.stopped.append((execution_arn, cause))

    def release(self, token: str, output: Mapping[str, Any]) -> bool:
        self.released.append((token, dict(output)))
        return True


class RecordingWaits:
    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    def end_waits_of(self, lead_id: str, execution_name: str) -> int:
        self.ended.append((lead_id, execution_name))
        return 1


def enter_lead(
    store: MemoryEntries,
    executions: RecordingExecutions,
    *,
    cause: str = "event:evt_1",
    the_journey: Journey | None = None,
    clock: FixedClock | None = None,
    payload: Mapping[str, Any] | None = None,
) -> Any:
    return enter(
        the_journey or journey(),
        LEAD,
        cause=cause,
        trigger="form_submitted",
        trigger_event_id="evt_1",
        payload=payload or {"entered_on": isoformat(NOW)},
        state_machine_arn=STATE_MACHINE,
        store=store,
        executions=executions,
        clock=clock or FixedClock(NOW),
    )


def test_entering_claims_the_entry_then_starts_the_named_execution() -> None:
    store, executions = MemoryEntries(), RecordingExecutions()

    result = enter_lead(store, executions)

    name = execution_name("seminar_follow_up", LEAD, "event:evt_1")
    arn = (
        f"arn:aws:states:ap-northeast-1:123456789012:execution:tsunagu-dev-seminar-follow-up:{name}"
    )
    assert (result.entered, result.reason, result.execution_arn) == (True, "entered", arn)
    [claimed] = store.claims
    assert claimed == JourneyEntry(
        lead_id=LEAD,
        journey_id="seminar_follow_up",
        execution_name=name,
        execution_arn=arn,
        entered_at=isoformat(NOW),
        trigger="form_submitted",
        trigger_event_id="evt_1",
        entries=1,
        status="active",
        exit_reason=None,
        updated_at=isoformat(NOW),
    )
    assert executions.started == [
        (
            STATE_MACHINE,
            name,
            {
                "lead_id": LEAD,
                "journey_id": "seminar_follow_up",
                "journey_version": None,  # deployed with the stack, not published
                "trigger": "form_submitted",
                "entered_on": isoformat(NOW),
            },
        )
    ]


def test_a_repeated_cause_claims_once_and_starts_nothing_new() -> None:
    store, executions = MemoryEntries(), RecordingExecutions()

    first = enter_lead(store, executions)
    again = enter_lead(store, executions, clock=FixedClock(NOW + timedelta(minutes=5)))

    # Its execution was started: the repeat names it, counted as no new entry
    assert (first.reason, again.reason) == ("entered", "repeated")
    assert again.entered and not again.entered_now
    assert again.execution_arn == first.execution_arn
    assert len(store.claims) == 1 and len(executions.started) == 1


def test_a_repeat_after_a_crash_between_claim_and_start_starts_it() -> None:
    # Given the claim was written but the process died before StartExecution
    name = execution_name("seminar_follow_up", LEAD, "event:evt_1")
    arn = arn_of_execution(STATE_MACHINE, name)
    store = MemoryEntries(entry(execution_name=name, execution_arn=arn, status="active"))
    executions = RecordingExecutions()

    result = enter_lead(store, executions)

    # Then it starts, and is entered now: no execution of it had run
    assert result.reason == "entered" and result.entered_now and store.claims == []
    assert [started_name for _, started_name, _ in executions.started] == [name]


PUBLISHED_MACHINE = STATE_MACHINE.replace("seminar-follow-up", "journey-seminar-follow-up")


def published(the_journey: Journey) -> Journey:
    """The journey after its first publication: entries start on its own state machine."""
    return the_journey.model_copy(
        update={
            "published": PublishedVersion(
                version=1,
                version_arn=f"{PUBLISHED_MACHINE}:1",
                alias_arn=f"{PUBLISHED_MACHINE}:live",
                published_at=isoformat(NOW),
            )
        }
    )


def enter_on_alias(store: MemoryEntries, executions: RecordingExecutions) -> Any:
    return enter(
        published(journey()),
        LEAD,
        cause="event:evt_1",
        trigger="form_submitted",
        trigger_event_id="evt_1",
        payload={"entered_on": isoformat(NOW)},
        state_machine_arn=f"{PUBLISHED_MACHINE}:live",
        store=store,
        executions=executions,
        clock=FixedClock(NOW + timedelta(minutes=10)),
    )


def test_a_repeat_across_the_first_publication_starts_nothing_new() -> None:
    # Given a lead entered on the stack's state machine
    store, executions = MemoryEntries(), RecordingExecutions()
    first = enter_lead(store, executions)

    # When the journey is published (entries now start on its alias) and the same cause
    # comes again (the same start run again, a retried background start, a redelivered batch)
    again = enter_on_alias(store, executions)

    # Then it is the execution the entry names, and nothing starts on the new state machine
    assert (again.reason, again.execution_arn) == ("repeated", first.execution_arn)
    assert not again.entered_now
    assert len(executions.started) == 1 and len(store.claims) == 1


def test_a_repeat_of_a_claim_never_started_starts_on_the_alias_and_says_so() -> None:
    # Given the claim was written on the stack's state machine, the process died before
    # StartExecution, and the journey was published since
    name = execution_name("seminar_follow_up", LEAD, "event:evt_1")
    claim = entry(
        execution_name=name, execution_arn=arn_of_execution(STATE_MACHINE, name), status="active"
    )
    store, executions = MemoryEntries(claim), RecordingExecutions()

    result = enter_on_alias(store, executions)

    # Then it starts where entries start now, and the entry names that execution (exits and
    # goals stop the one that runs)
    new_arn = arn_of_execution(PUBLISHED_MACHINE, name)
    assert (result.reason, result.execution_arn) == ("entered", new_arn)
    assert [sm for sm, _, _ in executions.started] == [f"{PUBLISHED_MACHINE}:live"]
    stored = store.entry(LEAD, "seminar_follow_up")
    assert stored is not None and stored.execution_arn == new_arn


class RefusingExecutions(RecordingExecutions):
    """Step Functions refusing every start (throttled after the SDK's retries, unavailable)."""

    def start(
        self, state_machine_arn: str, name: str, payload: Mapping[str, Any]
    ) -> StartedExecution:
        raise RuntimeError("ThrottlingException: Rate exceeded")


@pytest.mark.parametrize("before", ["none", "an exited entry"])
def test_an_entry_whose_execution_does_not_start_puts_the_entry_back_as_it_was(
    before: str,
) -> None:
    # Given a lead not in the journey, or one who left it and may enter again
    previous = entry(status="exited", exit_reason="goal_reached") if before != "none" else None
    store = MemoryEntries(*([previous] if previous else []))
    always = journey(reentry=ReentryPolicy(kind="always"))

    # When its entry is claimed, and Step Functions refuses the execution
    with pytest.raises(RuntimeError, match="Rate exceeded"):
        enter_lead(store, RefusingExecutions(), the_journey=always)

    # Then the entry is as it was before: nothing stands for an execution that never ran
    assert store.entry(LEAD, "seminar_follow_up") == previous
    assert len(store.claims) == 1

    # And the same cause again enters the lead
    executions = RecordingExecutions()
    again = enter_lead(store, executions, the_journey=always)
    assert (again.entered, again.reason) == (True, "entered")
    assert len(executions.started) == 1


def test_a_concurrent_claim_loses_and_starts_nothing() -> None:
    store, executions = MemoryEntries(), RecordingExecutions()
    store.lose_claims = True

    result = enter_lead(store, executions)

    assert (result.entered, result.reason, result.execution_arn) == (
        False,
        "entered_concurrently",
        None,
    )
    assert executions.started == []


def test_a_claim_on_a_stale_read_loses() -> None:
    # Someone re-entered the lead between this read and this claim.
    store, executions = MemoryEntries(entry()), RecordingExecutions()
    always = journey(reentry=ReentryPolicy(kind="always"))
    original_entry = store.entry

    def stale(lead_id: str, journey_id: str) -> JourneyEntry | None:
        read = original_entry(lead_id, journey_id)
        store.entries[(lead_id, journey_id)] = entry(updated_at=isoformat(NOW))
        return read

    store.entry = stale  # type: ignore[method-assign]
    result = enter_lead(store, executions, the_journey=always, cause="event:evt_9")
    assert result.reason == "entered_concurrently" and executions.started == []


def test_a_new_cause_under_never_does_not_enter_again() -> None:
    store, executions = MemoryEntries(), RecordingExecutions()
    enter_lead(store, executions, the_journey=journey(reentry=ReentryPolicy(kind="never")))

    second = enter_lead(
        store,
        executions,
        cause="event:evt_2",
        the_journey=journey(reentry=ReentryPolicy(kind="never")),
    )

    assert (second.entered, second.reason) == (False, "reentry_never")
    assert len(executions.started) == 1


def test_after_the_interval_a_new_cause_enters_again_and_counts_the_entry() -> None:
    monthly = journey(reentry=ReentryPolicy(kind="after_interval", interval_days=30))
    store, executions = MemoryEntries(entry()), RecordingExecutions()  # entered 40 days ago

    result = enter_lead(store, executions, the_journey=monthly, cause="manual:2026-12-09")

    assert result.reason == "entered"
    assert store.claims[0].entries == 2
    too_soon = enter_lead(
        store,
        executions,
        the_journey=monthly,
        cause="manual:2026-12-10",
        clock=FixedClock(NOW + timedelta(days=1)),
    )
    assert (too_soon.entered, too_soon.reason) == (False, "reentry_after_interval")


def test_reentry_waits_until_the_lead_has_left_the_journey() -> None:
    # Given a journey that allows re-entry, and the lead's earlier execution still running
    always = journey(reentry=ReentryPolicy(kind="always"))
    earlier = entry(status="active")
    store = MemoryEntries(earlier)
    still_running = RecordingExecutions(running=frozenset({earlier.execution_arn}))

    # When a new cause would enter it again, it does not: one execution per lead and journey
    refused = enter_lead(store, still_running, the_journey=always, cause="event:evt_9")
    assert (refused.entered, refused.reason) == (False, "still_in_journey")
    assert still_running.started == []

    # Once that execution has ended, the same cause enters
    finished = RecordingExecutions()
    again = enter_lead(store, finished, the_journey=always, cause="event:evt_9")
    assert (again.entered, again.reason) == (True, "entered")


def test_the_payload_cannot_replace_who_entered() -> None:
    store, executions = MemoryEntries(), RecordingExecutions()
    enter_lead(
        store,
        executions,
        payload={"lead_id": "lead_someone_else", "journey_id": "other", "seminar_at": "x"},
    )
    [(_, _, started)] = executions.started
    assert (started["lead_id"], started["journey_id"]) == (LEAD, "seminar_follow_up")
    assert started["seminar_at"] == "x"


# ---------------------------------------------------------------- exit
@pytest.mark.parametrize(
    ("kind", "properties", "reason"),
    [
        ("consent_changed", {"status": "opted_out", "topic": "all"}, "unsubscribed"),
        # Out of marketing, with nothing known of the rest: the gate judges at the next mail
        ("consent_changed", {"status": "opted_out", "topic": "marketing"}, None),
        ("consent_changed", {"status": "opted_out", "topic": "seminars"}, "unsubscribed"),
        ("consent_changed", {"status": "opted_out", "topic": "newsletter"}, None),
        ("consent_changed", {"status": "opted_in", "topic": "all"}, None),
        ("mail_suppressed", {"reason": "complaint"}, "suppressed"),
        ("mail_bounced", {"bounce_type": "Permanent"}, "bounced"),
        ("mail_bounced", {"bounce_type": "Transient"}, None),
        ("lead_removed", {}, "removed"),
        ("crm_status_changed", {"from": None, "to": "In Negotiation"}, "crm_status"),
        ("crm_status_changed", {"from": None, "to": "in negotiation"}, "crm_status"),
        ("crm_status_changed", {"from": None, "to": "商談中"}, "crm_status"),
        # "contacted" is the CRM's word for working: sales has the lead
        ("crm_status_changed", {"from": None, "to": "contacted"}, "crm_status"),
        ("crm_status_changed", {"from": None, "to": "new"}, None),
        ("crm_status_changed", {"from": None, "to": "lost"}, None),
        ("stage_changed", {"from": "mql", "to": "sql"}, "converted"),
        ("stage_changed", {"from": "mql", "to": "sql", "by": "journey:welcome"}, "converted"),
        # ... but not the stage the journey itself set: the nodes after it are on purpose
        ("stage_changed", {"from": "mql", "to": "sql", "by": "journey:seminar_follow_up"}, None),
        ("stage_changed", {"from": "lead", "to": "mql"}, None),
        ("form_submitted", {"form_id": "demo-request"}, "goal_reached"),
        ("form_submitted", {"form_id": "white-paper"}, None),
        ("page_view", {"url": "https://www.example.com/pricing"}, None),
    ],
)
def test_what_ends_a_journey(kind: str, properties: dict[str, Any], reason: str | None) -> None:
    seminar = journey(
        topic="seminars",
        exit=ExitConditions(goals=[EventMatch(type="form_submitted", form_id="demo-request")]),
    )
    assert exit_reason_for(seminar, occurrence(kind, **properties)) == reason


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ({"marketing": "opted_out", "seminars": "opted_in"}, None),
        ({"marketing": "opted_out"}, "no_consent"),
        ({"marketing": "opted_in"}, "no_consent"),  # the read did not see the opt-out yet
        ({"marketing": "opted_out", "all": "opted_out", "seminars": "opted_in"}, "unsubscribed"),
    ],
)
def test_an_opt_out_of_marketing_ends_a_journey_by_the_rule_sends_obey(
    stored: dict[str, str], reason: str | None
) -> None:
    # Given a journey on the "seminars" topic, and the lead's consent as stored
    seminars = journey(topic="seminars")
    # When the lead opts out of marketing
    opted_out = occurrence("consent_changed", status="opted_out", topic="marketing")
    # Then it stays only if it may still be mailed on "seminars" (its own opt-in to it)
    assert exit_reason_for(seminars, opted_out, stored) == reason


def test_a_machine_reaching_a_goal_ends_nothing() -> None:
    # A crawler viewing the pricing page, a gateway following the "book a demo" link
    pricing = journey(
        exit=ExitConditions(goals=[EventMatch(type="page_view", url_contains="/pricing")])
    )
    view = {"url": "https://www.example.com/pricing"}
    assert exit_reason_for(pricing, occurrence("page_view", **view)) == "goal_reached"
    crawler = occurrence("page_view", **view, automated=True, reasons=["scanner_user_agent"])
    assert exit_reason_for(pricing, crawler) is None


def test_only_exit_kinds_or_a_goal_can_end_a_journey() -> None:
    plain = [journey()]
    with_goal = [journey(exit=ExitConditions(goals=[EventMatch(type="demo_booked")]))]
    assert may_end_journeys("consent_changed", plain)
    assert may_end_journeys("crm_status_changed", plain)
    assert not may_end_journeys("page_view", plain)
    assert not may_end_journeys("demo_booked", plain)
    assert may_end_journeys("demo_booked", with_goal)


def test_leaving_stops_the_execution_cleans_its_waits_and_marks_the_entry() -> None:
    active = entry(status="active", execution_name="seminar-exec", execution_arn="arn:seminar")
    welcome = entry(
        journey_id="welcome_nurture",
        status="active",
        execution_name="welcome-exec",
        execution_arn="arn:welcome",
    )
    store = MemoryEntries(active, welcome)
    executions, waits = RecordingExecutions(), RecordingWaits()
    journeys = {
        "seminar_follow_up": journey(),
        "welcome_nurture": journey(journey_id="welcome_nurture", state_machine="welcome-nurture"),
    }

    left = leave_journeys(
        occurrence("crm_status_changed", to="In Negotiation"),
        journeys,
        store=store,
        executions=executions,
        waits=waits,
        clock=FixedClock(NOW),
    )

    assert sorted(left) == [("seminar_follow_up", "crm_status"), ("welcome_nurture", "crm_status")]
    assert sorted(executions.stopped) == [
        ("arn:seminar", "left the journey: crm_status"),
        ("arn:welcome", "left the journey: crm_status"),
    ]
    assert sorted(waits.ended) == [(LEAD, "seminar-exec"), (LEAD, "welcome-exec")]
    for record in store.entries.values():
        assert (record.status, record.exit_reason, record.updated_at) == (
            "exited",
            "crm_status",
            isoformat(NOW),
        )


def test_only_active_entries_of_known_journeys_are_left() -> None:
    exited = entry(status="exited", exit_reason="unsubscribed", execution_arn="arn:old")
    unknown = entry(journey_id="retired_journey", status="active", execution_arn="arn:retired")
    store = MemoryEntries(exited, unknown)
    executions, waits = RecordingExecutions(), RecordingWaits()

    left = leave_journeys(
        occurrence("consent_changed", status="opted_out", topic="all"),
        {"seminar_follow_up": journey()},
        store=store,
        executions=executions,
        waits=waits,
        clock=FixedClock(NOW),
    )

    assert left == [] and executions.stopped == [] and waits.ended == [] and store.exits == []


def test_an_event_that_ends_nothing_leaves_everything_as_it_was() -> None:
    store = MemoryEntries(entry(status="active"))
    executions, waits = RecordingExecutions(), RecordingWaits()
    left = leave_journeys(
        occurrence("page_view", url="https://www.example.com/pricing"),
        {"seminar_follow_up": journey()},
        store=store,
        executions=executions,
        waits=waits,
        clock=FixedClock(NOW),
    )
    assert left == [] and executions.stopped == [] and store.exits == []


# ---------------------------------------------------------------- releases on resume
def parked(count: int) -> list[ParkedExecution]:
    return [
        ParkedExecution(
            "seminar_follow_up",
            f"exec-{n}",
            f"lead_{n}",
            "Send mail A" if n % 2 else "Send mail B",
            f"token-{n}",
            isoformat(NOW - timedelta(hours=10 - n)),
        )
        for n in range(count)
    ]


@pytest.mark.parametrize(
    ("kind", "action"), [("send_missed", "send"), ("skip_missed", "skip"), ("expire", "expire")]
)
def test_each_policy_releases_every_parked_execution_at_its_own_step(
    kind: str, action: str
) -> None:
    held = parked(3)
    planned = releases(held, ResumePolicy(kind=kind), NOW)
    assert [p for p, _ in planned] == held
    assert [r for _, r in planned] == [Release(p.step, action) for p in held]  # type: ignore[arg-type]


def test_pace_gives_each_execution_a_turn_by_the_rate_per_minute() -> None:
    held = parked(5)
    planned = releases(held, ResumePolicy(kind="pace", rate_per_minute=2), NOW)
    turns = [r.not_before for _, r in planned]
    assert turns == [
        None,  # the first two go now
        None,
        isoformat(NOW + timedelta(minutes=1)),
        isoformat(NOW + timedelta(minutes=1)),
        isoformat(NOW + timedelta(minutes=2)),
    ]
    assert {r.action for _, r in planned} == {"send"}
    assert [r.step for _, r in planned] == [p.step for p in held]


def test_pace_spreads_the_turns_over_allowed_time_not_into_the_night() -> None:
    # Given sending allowed until 20:00 and again from 08:00 (UTC here), a resume at 19:58
    # pacing one a minute
    evening = datetime(2026, 12, 9, 19, 58, tzinfo=UTC)

    def allowed_at(instant: datetime) -> datetime:
        if instant.hour >= 20:
            return datetime.combine(instant.date() + timedelta(days=1), time(8), UTC)
        return max(instant, datetime.combine(instant.date(), time(8), UTC))

    planned = releases(parked(4), ResumePolicy(kind="pace", rate_per_minute=1), evening, allowed_at)

    # Then two go before 20:00, and the rest go on at the same rate from 08:00, not all at 08:00
    assert [r.not_before for _, r in planned] == [
        None,
        "2026-12-09T19:59:00.000Z",
        "2026-12-10T08:00:00.000Z",
        "2026-12-10T08:01:00.000Z",
    ]


def test_pace_at_a_high_rate_releases_everyone_now() -> None:
    planned = releases(parked(5), ResumePolicy(kind="pace", rate_per_minute=60), NOW)
    assert [r.not_before for _, r in planned] == [None] * 5


def test_nothing_parked_nothing_released() -> None:
    assert releases([], ResumePolicy(kind="pace"), NOW) == []


def test_with_exit_marks_the_entry_exited() -> None:
    active = entry(status="active")
    left = with_exit(active, "goal_reached", isoformat(NOW))
    assert left == replace(
        active, status="exited", exit_reason="goal_reached", updated_at=isoformat(NOW)
    )


# ---------------------------------------------------------------- route_events' journey side
class Definitions(MemoryEntries):
    """The journey definitions as the store has them now, and how often they were read."""

    def __init__(self, *journeys: Journey) -> None:
        super().__init__()
        self.definitions = list(journeys)
        self.reads = 0

    def journeys(self) -> list[Journey]:
        self.reads += 1
        return list(self.definitions)


class MemoryLeads:
    """The leads route_events reads, and their consent per topic."""

    def __init__(self, consent: Mapping[str, str] | None = None, *leads: Lead) -> None:
        self.consent = dict(consent or {"marketing": "opted_in"})
        self.leads = {lead.lead_id: lead for lead in leads}

    def get_lead(self, lead_id: str) -> Lead | None:
        return self.leads.get(lead_id)

    def consent_state(self, lead_id: str) -> dict[str, str]:
        return dict(self.consent)


def routing_over(
    store: Definitions, executions: RecordingExecutions, leads: MemoryLeads | None = None
) -> JourneyRouting:
    return JourneyRouting(
        store,
        executions,
        RecordingWaits(),
        FixedClock(NOW),
        lambda j: STATE_MACHINE,
        leads or MemoryLeads(),
    )


def test_route_events_keeps_a_lead_out_of_marketing_but_in_to_the_journeys_topic() -> None:
    # Given a lead in a "seminars" journey, opted in to seminars, and one in a marketing journey
    seminars, newsletter = journey(topic="seminars"), journey("newsletter")
    store = Definitions(seminars, newsletter)
    for journey_id in ("seminar_follow_up", "newsletter"):
        store.entries[(LEAD, journey_id)] = entry(journey_id=journey_id, status="active")
    executions = RecordingExecutions()
    leads = MemoryLeads({"marketing": "opted_out", "seminars": "opted_in"})
    routing = routing_over(store, executions, leads)
    routing.begin_batch()

    # When it opts out of marketing
    routing.on_event(
        occurrence("consent_changed", status="opted_out", topic="marketing"), by_person=False
    )

    # Then it leaves the marketing journey only: seminars may still be mailed to it
    assert [(journey_id, reason) for journey_id, reason, _ in store.exits] == [
        ("newsletter", "unsubscribed")
    ]


def in_zone(zone: str) -> Lead:
    return lead(lead_id=LEAD, fields={"time_zone": FieldValue(zone, Channel.IMPORT, "x")})


@pytest.mark.parametrize(
    "trigger",
    [
        (Trigger(kind="form_submitted"), "form_submitted", {"form_id": "demo"}),
        (Trigger(kind="stage_reached", stage="mql"), "stage_changed", {"to": "mql"}),
        (Trigger(kind="score_crossed", threshold=50), "score_changed", {"from": 40, "to": 60}),
    ],
    ids=["form", "stage", "score"],
)
def test_a_lead_entered_by_an_event_carries_its_time_zone_as_a_manual_start_does(
    trigger: tuple[Trigger, str, dict[str, Any]],
) -> None:
    # Given a lead in New York, and a journey its form, stage or score enters it into
    rule, kind, properties = trigger
    the_journey = journey(triggers=[rule, Trigger(kind="manual")])
    new_york = in_zone("America/New_York")
    by_hand = RecordingExecutions()
    enter_leads(the_journey, [new_york], cause="manual:1", trigger="manual",
                state_machine_arn=STATE_MACHINE, store=Definitions(), executions=by_hand,
                clock=FixedClock(NOW))  # fmt: skip
    by_event = RecordingExecutions()
    routing = routing_over(Definitions(the_journey), by_event, MemoryLeads(None, new_york))
    routing.begin_batch()

    # When the event enters it
    routing.on_event(occurrence(kind, **properties), by_person=True)

    # Then its execution waits in New York time, as one started by hand does
    [(_, _, started)] = by_event.started
    assert started["time_zone"] == by_hand.started[0][2]["time_zone"] == "America/New_York"


def test_a_journey_entered_by_a_page_view_counts_from_when_the_server_had_it() -> None:
    # Given a journey for people who look at prices, and a pricing-page view from a browser
    # whose clock is an hour slow: stored at its time, received at NOW
    the_journey = journey(triggers=[Trigger(kind="event", event=EventMatch(type="page_view"))])
    executions = RecordingExecutions()
    routing = routing_over(Definitions(the_journey), executions)
    routing.begin_batch()
    view = occurrence("page_view", url="https://www.example.com/pricing")
    slow = replace(
        view,
        occurred_at=isoformat(NOW - timedelta(hours=1)),
        properties={**view.properties, "received_at": isoformat(NOW)},
    )
    # When it enters the lead
    routing.on_event(slow, by_person=True)
    # Then its waits count from when the server had the view (what arrived in that hour, before
    # it, is not since the entry), and not the view itself
    [(_, _, started)] = executions.started
    assert (started["entered_on"], started["entered_by"]) == (isoformat(NOW), "evt_1")


def test_a_lead_time_zone_that_is_not_a_zone_is_left_out_of_the_entry() -> None:
    # Given a lead whose time_zone field says "Tokyo" (a form's free text), When it enters,
    # Then the execution does not carry it: its waits are in the stack's time zone
    assert lead_payload(in_zone("Tokyo")) == {}
    assert lead_payload(in_zone("Asia/Tokyo")) == {"time_zone": "Asia/Tokyo"}
    assert lead_payload(None) == {}


def test_a_journey_switched_on_takes_the_next_batch_s_leads() -> None:
    # Given a form journey still in draft, and route_events warm with its definition
    store, executions = (
        Definitions(journey(triggers=[Trigger(kind="form_submitted")], status="draft")),
        RecordingExecutions(),
    )
    routing = routing_over(store, executions)
    routing.begin_batch()
    routing.on_event(occurrence("form_submitted", form_id="demo"), by_person=True)
    assert executions.started == []
    # When the marketer makes it active, Then the next batch's form submission enters the lead
    # (it waited up to 30 s for a cache before, and the lead was silently not entered)
    store.definitions = [journey(triggers=[Trigger(kind="form_submitted")], status="active")]
    routing.begin_batch()
    routing.on_event(occurrence("form_submitted", form_id="demo"), by_person=True)
    assert len(executions.started) == 1


def test_the_definitions_are_read_once_per_batch() -> None:
    store = Definitions(journey(triggers=[Trigger(kind="form_submitted")]))
    routing = routing_over(store, RecordingExecutions())
    for _ in range(2):
        routing.begin_batch()
        for number in range(5):
            routing.on_event(
                Occurrence(LEAD, f"evt_{number}", "page_view", isoformat(NOW), {}), by_person=True
            )
    assert store.reads == 2


def test_an_imported_lead_enters_a_journey_on_its_import_and_tsunagu_s_other_records_do_not() -> (
    None
):
    # An import is Tsunagu's record (route_events passes by_person=False for it), yet a journey
    # that welcomes a trade show's list starts on it; a record such as mail_sent enters nobody.
    store, executions = (
        Definitions(
            journey(triggers=[Trigger(kind="event", event=EventMatch(type="lead_imported"))]),
            journey(
                "mail_follow_up",
                triggers=[Trigger(kind="event", event=EventMatch(type="mail_sent"))],
            ),
        ),
        RecordingExecutions(),
    )
    routing = routing_over(store, executions)
    routing.begin_batch()
    routing.on_event(occurrence("mail_sent", message_id="m1"), by_person=False)
    assert executions.started == []
    routing.on_event(occurrence("lead_imported", import_id="imp_1", row=2), by_person=False)
    assert len(executions.started) == 1


def test_every_key_an_entry_writes_in_the_execution_input_is_reserved() -> None:
    """A send's result may not be kept under a key of the input (compiler.RESERVED_SLOTS comes
    from EXECUTION_INPUT_KEYS): the keys both kinds of entry write are all in it."""
    from tsunagu.journeys.compiler import RESERVED_SLOTS
    from tsunagu.journeys.lifecycle import EXECUTION_INPUT_KEYS

    tokyo = lead(lead_id=LEAD, fields={"time_zone": FieldValue("Asia/Tokyo", Channel.IMPORT, "x")})
    by_hand = RecordingExecutions()
    enter_leads(journey(), [tokyo], cause="manual:1", trigger="manual",
                state_machine_arn=STATE_MACHINE, store=Definitions(), executions=by_hand,
                clock=FixedClock(NOW))  # fmt: skip
    by_event = RecordingExecutions()
    routing = routing_over(
        Definitions(journey(triggers=[Trigger(kind="form_submitted")])),
        by_event,
        MemoryLeads(None, tokyo),
    )
    routing.begin_batch()
    routing.on_event(occurrence("form_submitted", form_id="demo"), by_person=True)

    written = {key for started in (by_hand, by_event) for _, _, payload in started.started
               for key in payload}  # fmt: skip
    assert {"lead_id", "journey_version", "trigger", "entered_on", "time_zone"} <= written
    assert written <= EXECUTION_INPUT_KEYS
    assert EXECUTION_INPUT_KEYS <= RESERVED_SLOTS
