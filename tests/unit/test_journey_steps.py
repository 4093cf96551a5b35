"""The journey_gate activity and the marketer's pause / resume over the journey store
(tsunagu.journeys.steps), against an in-memory store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.unit.journey_fixtures import AT, NOW, journey
from tests.unit.journey_fixtures import lead as make_lead
from tsunagu.clock import FixedClock, isoformat
from tsunagu.errors import ConcurrentUpdate, NotFound, ValidationFailed
from tsunagu.journeys.gate import EntryState, FrequencyCap, GateDecision, SendLedger
from tsunagu.journeys.lifecycle import (
    JourneyEntry,
    ParkedExecution,
    StartedExecution,
    WaitingAt,
    with_exit,
)
from tsunagu.journeys.model import Journey, ResumePolicy, StoredGraph
from tsunagu.journeys.steps import (
    GateRequest,
    GateView,
    NotPaused,
    ResumeReport,
    check_gate,
    park_execution,
    parked_by_step,
    pause_journey,
    release_archived,
    resume_all,
    resume_journey,
    stop_all,
)
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.mail.consent import ConsentView, Recipient

LEAD = "lead_1"
EXECUTION = "seminar_follow_up-lead_1-abc"


def make_entry(journey_id: str = "seminar_follow_up", **overrides: Any) -> JourneyEntry:
    values: dict[str, Any] = {
        "lead_id": LEAD,
        "journey_id": journey_id,
        "execution_name": EXECUTION,
        "execution_arn": f"arn:aws:states:ap-northeast-1:123456789012:execution:x:{EXECUTION}",
        "entered_at": AT,
        "trigger": "manual",
        "trigger_event_id": None,
        "entries": 1,
        "status": "active",
        "exit_reason": None,
        "updated_at": AT,
    }
    return JourneyEntry(**{**values, **overrides})


class MemoryJourneyStore:
    """The journey repository's semantics, in memory."""

    def save_graph(self, graph: StoredGraph) -> None:
        self.graphs[(graph.journey_id, graph.which)] = graph

    def graph(self, journey_id: str, which: str) -> StoredGraph | None:
        return self.graphs.get((journey_id, which))

    def published_graph(self, journey_id: str) -> StoredGraph | None:
        published = [g for (j, w), g in self.graphs.items() if j == journey_id and w[0] == "v"]
        return max(published, key=lambda g: g.which, default=None)

    def __init__(self, *journeys: Journey) -> None:
        self.definitions = {j.journey_id: j for j in journeys}
        self.paused_account = False
        self.stopped_at = "2026-12-03T00:00:00+00:00"
        """When the stop began (tests set paused_account themselves)."""
        self.entries: dict[tuple[str, str], JourneyEntry] = {}
        self.leads: dict[str, Lead] = {LEAD: make_lead()}
        self.consent = ConsentView({"marketing": "opted_in"})
        self.sends: list[str] = []
        self.passes: list[str | None] = []
        """The pass that booked each of ``sends`` (None: none named)."""
        self.ledger_version: str | None = None
        self.ledger_writes = 0
        self.reservations: list[str] = []
        """Each time a write added to the ledger."""
        self.reserve_before_next_write: str | None = None
        self.parked_records: dict[tuple[str, str], ParkedExecution] = {}
        self.exits: list[tuple[str, str, str]] = []
        self.graphs: dict[tuple[str, str], StoredGraph] = {}
        self.stop_log: list[tuple[bool, str, str]] = []
        self.pause_on_park: bool | None = None
        self.waiting: list[WaitingAt] = []
        self.timeline: dict[str, LeadEvent] = {}
        """Lines put on leads' timelines, by event id (a retry writes the same one again)."""
        """Flip the journey's status as the park is written (a racing marketer)."""

    def gate_view(self, journey_id: str, lead_id: str) -> GateView:
        entry = self.entries.get((lead_id, journey_id))
        state = None if entry is None else EntryState(entry.status, entry.exit_reason)
        recipient = Recipient(self.leads.get(lead_id), self.consent)
        ledger = SendLedger(tuple(self.sends), self.ledger_version, tuple(self.passes))
        view = GateView(
            self.definitions.get(journey_id), self.paused_account, state, recipient, ledger
        )
        if self.reserve_before_next_write is not None:
            # another journey's gate reserves between this read and this gate's write
            self.sends.append(self.reserve_before_next_write)
            self.passes.append(None)
            self.ledger_writes += 1
            self.ledger_version = f"v{self.ledger_writes}"
            self.reserve_before_next_write = None
        return view

    def put_event(self, event: LeadEvent) -> None:
        self.timeline[event.event_id] = event

    def mark_waiting(self, waiting: WaitingAt) -> None:
        self.waiting.append(waiting)

    def reserve_send(self, lead_id: str, ledger: SendLedger, booked: SendLedger) -> bool:
        if ledger.version != self.ledger_version:
            return False
        before = ledger.bookings()
        self.reservations += [t for t, by in booked.bookings() if (t, by) not in before]
        self.sends, self.passes = list(booked.times), list(booked.passes)
        self.ledger_writes += 1
        self.ledger_version = f"v{self.ledger_writes}"
        return True

    def get_journey(self, journey_id: str) -> Journey | None:
        return self.definitions.get(journey_id)

    def put_journey(self, journey: Journey, at: str) -> Journey:
        # as the store: only over the revision read
        now = self.definitions.get(journey.journey_id)
        if (now.revision if now else 0) != journey.revision:
            raise ConcurrentUpdate(f"journey {journey.journey_id!r} changed meanwhile")
        stored = journey.model_copy(update={"updated_at": at, "revision": journey.revision + 1})
        self.definitions[journey.journey_id] = stored
        return stored

    def account_paused(self) -> bool:
        return self.paused_account

    def account_stopped_at(self) -> str | None:
        return self.stopped_at if self.paused_account else None

    def last_stop(self) -> str | None:
        return self.stopped_at if self.paused_account or self.stop_log else None

    def set_account_paused(self, paused: bool, at: str, by: str) -> None:
        # as the store: a stop in force is left as it began; a lift keeps when it began
        if paused and not self.paused_account:
            self.stopped_at = at
        self.paused_account = paused
        self.stop_log.append((paused, at, by))

    def journeys(self) -> list[Journey]:
        return sorted(self.definitions.values(), key=lambda j: j.journey_id)

    def entry(self, lead_id: str, journey_id: str) -> JourneyEntry | None:
        return self.entries.get((lead_id, journey_id))

    def exit_entry(self, entry: JourneyEntry, reason: str, at: str) -> None:
        self.exits.append((entry.journey_id, reason, at))
        self.entries[(entry.lead_id, entry.journey_id)] = with_exit(entry, reason, at)

    def park(self, parked: ParkedExecution) -> None:
        self.parked_records[(parked.journey_id, parked.execution_name)] = parked
        if self.pause_on_park is not None:
            status = "paused" if self.pause_on_park else "active"
            current = self.definitions[parked.journey_id]
            self.definitions[parked.journey_id] = current.model_copy(update={"status": status})

    def parked(self, journey_id: str) -> list[ParkedExecution]:
        held = [p for (j, _), p in self.parked_records.items() if j == journey_id]
        return sorted(held, key=lambda p: (p.parked_at, p.execution_name))

    def unpark(self, parked: ParkedExecution) -> None:
        self.parked_records.pop((parked.journey_id, parked.execution_name), None)


class RecordingWaits:
    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    def end_waits_of(self, lead_id: str, execution_name: str) -> int:
        self.ended.append((lead_id, execution_name))
        return 0


class RecordingExecutions:
    def __init__(self, gone: frozenset[str] = frozenset()) -> None:
        self.gone = gone
        """Tokens whose execution no longer waits (Step Functions refuses them)."""
        self.released: list[tuple[str, dict[str, Any]]] = []
        self.stopped: list[str] = []

    def start(
        self, state_machine_arn: str, name: str, payload: Mapping[str, Any]
    ) -> StartedExecution:
        raise AssertionError("pause and resume start nothing")

    def stop(self, execution_arn: str, cause: str) -> None:
        self.stopped.append(execution_arn)

    def is_running(self, execution_arn: str) -> bool:
        raise AssertionError("pause and resume ask about no execution")

    def exists(self, execution_arn: str) -> bool:
        raise AssertionError("pause and resume ask about no execution")

    def release(self, token: str, output: Mapping[str, Any]) -> bool:
        if token in self.gone:
            return False
        self.released.append((token, dict(output)))
        return True


def request(step: str = "Send mail A", **overrides: Any) -> GateRequest:
    values: dict[str, Any] = {
        "journey_id": "seminar_follow_up",
        "lead_id": LEAD,
        "step": step,
        "execution_name": EXECUTION,
        "state": {"lead_id": LEAD},
    }
    return GateRequest(**{**values, **overrides})


def gate(
    store: MemoryJourneyStore,
    waits: RecordingWaits,
    given: GateRequest | None = None,
    *,
    clock: FixedClock | None = None,
) -> GateDecision:
    return check_gate(
        given or request(),
        store=store,
        waits=waits,
        clock=clock or FixedClock(NOW),
        cap=FrequencyCap(),
        allowed_at=lambda instant: instant,
    )


def hold(store: MemoryJourneyStore, execution: str, lead_id: str, minutes_ago: int) -> None:
    store.parked_records[("seminar_follow_up", execution)] = ParkedExecution(
        "seminar_follow_up",
        execution,
        lead_id,
        "Send mail A",
        f"token-{execution}",
        isoformat(NOW - timedelta(minutes=minutes_ago)),
    )


# ---------------------------------------------------------------- check_gate
def test_the_gate_sends_and_leaves_the_entry_alone() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    store.entries[(LEAD, "seminar_follow_up")] = make_entry()

    assert gate(store, waits) == GateDecision("send")
    assert store.exits == [] and waits.ended == []
    # the mail is reserved in the lead's ledger, for every journey's cap
    assert store.reservations == [isoformat(NOW)]


def test_an_exit_at_the_gate_is_recorded_and_the_waits_are_cleaned() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    store.entries[(LEAD, "seminar_follow_up")] = make_entry()
    store.leads[LEAD] = make_lead(crm_status="In Negotiation")

    decision = gate(store, waits)

    assert decision == GateDecision("exit", "crm_status")
    assert store.exits == [("seminar_follow_up", "crm_status", isoformat(NOW))]
    assert store.entries[(LEAD, "seminar_follow_up")].status == "exited"
    assert waits.ended == [(LEAD, EXECUTION)]
    assert store.reservations == []  # nothing goes out, nothing is reserved


def test_an_entry_exited_already_is_not_exited_twice_but_its_waits_go() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    store.entries[(LEAD, "seminar_follow_up")] = make_entry(
        status="exited", exit_reason="unsubscribed"
    )

    assert gate(store, waits) == GateDecision("exit", "unsubscribed")
    assert store.exits == []
    assert waits.ended == [(LEAD, EXECUTION)]


def test_a_removed_lead_without_an_entry_still_exits_cleanly() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    del store.leads[LEAD]
    assert gate(store, waits) == GateDecision("exit", "removed")
    assert store.exits == [] and waits.ended == [(LEAD, EXECUTION)]


def test_the_gate_reads_the_release_meant_for_its_step() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    skip = {"lead_id": LEAD, "release": {"step": "Send mail A", "action": "skip"}}
    assert gate(store, waits, request(state=skip)) == GateDecision("skip", "skipped_on_resume")
    assert gate(store, waits, request(step="Send mail B", state=skip)) == GateDecision("send")


def test_an_execution_let_go_under_expire_keeps_later_mails_deadlines() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    past = isoformat(NOW - timedelta(days=2))
    # The invitation's release (an earlier step), still in the state at mail B's gate
    expired = {"lead_id": LEAD, "release": {"step": "Send the invitation", "action": "expire"}}
    late = request(step="Send mail B", state=expired, deadline=past)
    assert gate(store, waits, late) == GateDecision("skip", "deadline_passed")
    # A later release under send_missed replaced it: the marketer chose to send what was held
    resent = {"lead_id": LEAD, "release": {"step": "Send mail A", "action": "send"}}
    assert gate(store, waits, request(step="Send mail B", state=resent, deadline=past)) == (
        GateDecision("send")
    )


def test_a_skipped_or_deferred_mail_is_one_line_on_the_leads_timeline() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    entered = "2026-12-09T01:00:00.250Z"
    skip = {"lead_id": LEAD, "journey_version": 3,
            "release": {"step": "Send mail A", "action": "skip"}}  # fmt: skip
    skipped = request(state=skip, node="mail_a", template_id="follow-up-a", entered_at=entered)
    for _ in range(2):  # the gate's Lambda retried: the same line, written again
        assert gate(store, waits, skipped) == GateDecision("skip", "skipped_on_resume")
    [line] = store.timeline.values()
    assert (line.type, line.lead_id, line.occurred_at) == ("mail_skipped", LEAD, entered)
    assert line.properties == {
        "reason": "skipped_on_resume", "template_id": "follow-up-a",
        "journey_id": "seminar_follow_up", "journey_version": 3, "node": "mail_a",
        "step": "Send mail A",
        "execution_name": EXECUTION, "by": "journey_gate",
    }  # fmt: skip

    # Asked again after a deferral (a new entry into the gate's state): a line of its own
    store.timeline.clear()
    store.sends = [isoformat(NOW - timedelta(hours=3))]
    later = request(node="mail_a", template_id="follow-up-a", entered_at="2026-12-09T02:00:00Z")
    deferred = gate(store, waits, later)
    assert deferred.action == "defer"
    [line] = store.timeline.values()
    assert line.type == "mail_deferred"
    assert (line.properties["reason"], line.properties["until"]) == (
        "frequency_cap",
        deferred.send_at,
    )


def test_a_gate_that_keeps_losing_the_reservation_race_says_so_and_where_it_waits() -> None:
    class AlwaysLoses(MemoryJourneyStore):
        def reserve_send(self, lead_id: str, ledger: SendLedger, booked: SendLedger) -> bool:
            return False  # another journey's gate reserved first, every time

    store, waits = AlwaysLoses(journey()), RecordingWaits()
    at_mail_a = request(node="mail_a", template_id="follow-up-a", entered_at=isoformat(NOW))
    decision = gate(store, waits, at_mail_a)
    assert (decision.action, decision.reason) == ("defer", "frequency_cap_contention")
    [line] = store.timeline.values()
    assert line.type == "mail_deferred"
    assert (line.properties["reason"], line.properties["until"]) == (
        "frequency_cap_contention",
        decision.send_at,
    )
    [waiting] = store.waiting  # journeys status shows it at its mail
    assert (waiting.node, waiting.until) == ("mail_a", "2026-12-09T01:01:00.000Z")


def test_a_sent_or_parked_mail_and_an_old_state_machines_gate_leave_no_line() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    entered = {"node": "mail_a", "template_id": "follow-up-a", "entered_at": isoformat(NOW)}
    assert gate(store, waits, request(**entered)) == GateDecision("send")
    store.definitions["seminar_follow_up"] = journey(status="paused")
    assert gate(store, waits, request(**entered)).action == "park"
    store.definitions["seminar_follow_up"] = journey()
    skip = {"lead_id": LEAD, "release": {"step": "Send mail A", "action": "skip"}}
    assert gate(store, waits, request(state=skip)).action == "skip"  # compiled before: no time
    assert store.timeline == {}


def test_the_gate_defers_under_the_cap_across_journeys() -> None:
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    store.sends = [isoformat(NOW - timedelta(hours=3))]  # welcome_nurture mailed this morning
    decision = gate(store, waits)
    assert decision == GateDecision("defer", "frequency_cap", "2026-12-09T22:00:00Z")


def test_the_gate_parks_while_paused() -> None:
    store, waits = MemoryJourneyStore(journey(status="paused")), RecordingWaits()
    assert gate(store, waits) == GateDecision("park", "journey_paused")
    store.paused_account = True
    assert gate(store, waits) == GateDecision("park", "account_paused")
    assert store.parked_records == {}  # the park task writes the record, not the gate


# ---------------------------------------------------------------- park_execution
def test_parking_while_paused_keeps_the_record() -> None:
    store = MemoryJourneyStore(journey(status="paused"))
    parked = park_execution(
        request(deadline="2026-12-10T01:00:00.000Z"), "token-1", store=store, clock=FixedClock(NOW)
    )
    assert parked == ParkedExecution(
        "seminar_follow_up",
        EXECUTION,
        LEAD,
        "Send mail A",
        "token-1",
        isoformat(NOW),
        "2026-12-10T01:00:00.000Z",
    )
    assert store.parked("seminar_follow_up") == [parked]


def test_parking_under_the_emergency_stop_keeps_the_record() -> None:
    store = MemoryJourneyStore(journey())
    store.paused_account = True
    park_execution(request(), "token-1", store=store, clock=FixedClock(NOW))
    assert len(store.parked("seminar_follow_up")) == 1


def test_parking_after_a_resume_raises_not_paused_and_leaves_no_record() -> None:
    store = MemoryJourneyStore(journey())  # resumed between the gate and the park task
    with pytest.raises(NotPaused, match="not paused"):
        park_execution(request(), "token-1", store=store, clock=FixedClock(NOW))
    assert store.parked_records == {}


def test_a_resume_racing_the_park_write_is_seen_by_the_park() -> None:
    # The park is written, then the marketer's resume lands before the status is read again.
    store = MemoryJourneyStore(journey(status="paused"))
    store.pause_on_park = False
    with pytest.raises(NotPaused):
        park_execution(request(), "token-1", store=store, clock=FixedClock(NOW))
    assert store.parked_records == {}


def test_not_paused_is_named_as_the_state_machines_catch_expects() -> None:
    assert NotPaused.__name__ == "NotPaused"


# ---------------------------------------------------------------- pause and resume
def test_pause_marks_the_journey_paused_with_the_time() -> None:
    store = MemoryJourneyStore(journey())
    paused = pause_journey("seminar_follow_up", store=store, clock=FixedClock(NOW))
    assert (paused.status, paused.paused_at) == ("paused", isoformat(NOW))
    assert store.definitions["seminar_follow_up"].status == "paused"


def test_pausing_or_resuming_an_unknown_journey_is_not_found() -> None:
    store = MemoryJourneyStore()
    with pytest.raises(NotFound):
        pause_journey("nope", store=store, clock=FixedClock(NOW))
    with pytest.raises(NotFound):
        resume_journey(
            "nope",
            policy=None,
            store=store,
            executions=RecordingExecutions(),
            clock=FixedClock(NOW),
        )


def test_resume_releases_by_the_journeys_policy_unparks_and_counts_the_gone() -> None:
    store = MemoryJourneyStore(journey(status="paused", resume=ResumePolicy(kind="skip_missed")))
    hold(store, "exec-a", "lead_a", 30)
    hold(store, "exec-b", "lead_b", 20)
    hold(store, "exec-c", "lead_c", 10)
    executions = RecordingExecutions(gone=frozenset({"token-exec-b"}))  # stopped meanwhile

    report = resume_journey(
        "seminar_follow_up", policy=None, store=store, executions=executions, clock=FixedClock(NOW)
    )

    assert report == ResumeReport(released=2, by_action={"skip": 2}, not_waiting=1)
    assert executions.released == [
        (
            "token-exec-a",
            {"step": "Send mail A", "action": "skip", "not_before": None, "policy": "skip_missed"},
        ),
        (
            "token-exec-c",
            {"step": "Send mail A", "action": "skip", "not_before": None, "policy": "skip_missed"},
        ),
    ]
    assert store.parked_records == {}
    resumed = store.definitions["seminar_follow_up"]
    assert (resumed.status, resumed.paused_at, resumed.updated_at) == (
        "active",
        None,
        isoformat(NOW),
    )


def test_resume_with_a_policy_given_overrides_the_journeys_own() -> None:
    store = MemoryJourneyStore(journey(status="paused"))  # its own policy: send_missed
    for n in range(3):
        hold(store, f"exec-{n}", f"lead_{n}", 30 - n)
    executions = RecordingExecutions()

    report = resume_journey(
        "seminar_follow_up",
        policy=ResumePolicy(kind="pace", rate_per_minute=2),
        store=store,
        executions=executions,
        clock=FixedClock(NOW),
    )

    assert report == ResumeReport(3, {"send": 3}, 0)
    assert [output["not_before"] for _, output in executions.released] == [
        None,
        None,
        isoformat(NOW + timedelta(minutes=1)),
    ]
    assert {output["policy"] for _, output in executions.released} == {"pace"}


@pytest.mark.parametrize(
    ("kind", "action"), [("send_missed", "send"), ("expire", "expire"), ("skip_missed", "skip")]
)
def test_resume_under_each_policy(kind: str, action: str) -> None:
    store = MemoryJourneyStore(journey(status="paused"))
    hold(store, "exec-a", "lead_a", 5)
    executions = RecordingExecutions()
    report = resume_journey(
        "seminar_follow_up",
        policy=ResumePolicy(kind=kind),
        store=store,
        executions=executions,
        clock=FixedClock(NOW),
    )
    assert report.by_action == {action: 1}
    assert executions.released[0][1]["action"] == action


def test_resume_while_the_emergency_stop_holds_releases_nothing() -> None:
    store = MemoryJourneyStore(journey(status="paused"))
    store.paused_account = True
    hold(store, "exec-a", "lead_a", 5)
    executions = RecordingExecutions()

    report = resume_journey(
        "seminar_follow_up", policy=None, store=store, executions=executions, clock=FixedClock(NOW)
    )

    assert report == ResumeReport(0, {}, 0, held_by_stop=ResumePolicy())  # its own: send_missed
    assert executions.released == []
    assert len(store.parked("seminar_follow_up")) == 1  # still held, for resume-all
    assert store.definitions["seminar_follow_up"].status == "active"


def test_a_policy_chosen_while_the_emergency_stop_holds_is_the_one_lifting_it_releases_by() -> None:
    # Given a journey whose own policy sends what was held, paused with a lead held, under the
    # emergency stop, When the marketer resumes it choosing skip_missed (the seminar is over)
    store = MemoryJourneyStore(journey(status="paused"))
    store.paused_account = True
    hold(store, "exec-a", "lead_a", 5)
    executions = RecordingExecutions()
    skip = ResumePolicy(kind="skip_missed")
    report = resume_journey(
        "seminar_follow_up", policy=skip, store=store, executions=executions, clock=FixedClock(NOW)
    )
    assert report.held_by_stop == skip
    assert executions.released == []
    # Then lifting the stop skips the held mail (it used to send it by the journey's own
    # policy, the choice silently dropped), and nothing is written to the journey for it
    before = store.definitions["seminar_follow_up"]
    reports = resume_all(store=store, executions=executions, clock=FixedClock(NOW), by="cli")
    assert reports["seminar_follow_up"] == ResumeReport(1, {"skip": 1}, 0)
    assert executions.released[0][1]["policy"] == "skip_missed"
    assert store.definitions["seminar_follow_up"] == before


def test_a_choice_belongs_to_the_stop_it_was_made_under() -> None:
    # Given a choice made under one stop, which was lifted with nothing held
    store = MemoryJourneyStore(journey(status="paused"))
    clock = FixedClock(NOW)
    executions = RecordingExecutions()
    stop_all(store=store, clock=clock, by="cli")
    skip = ResumePolicy(kind="skip_missed")
    resume_journey(
        "seminar_follow_up", policy=skip, store=store, executions=executions, clock=clock
    )
    resume_all(store=store, executions=executions, clock=clock, by="cli")
    # When a later stop holds a lead and is lifted, Then the journey's own policy releases it
    later = FixedClock(NOW + timedelta(days=30))
    stop_all(store=store, clock=later, by="cli")
    hold(store, "exec-a", "lead_a", 5)
    resume_all(store=store, executions=executions, clock=later, by="cli")
    assert [output["policy"] for _, output in executions.released] == ["send_missed"]


def test_stopping_again_during_a_stop_keeps_the_choices_made_under_it() -> None:
    # (a retried PUT /admin/emergency-stop, a console tab opened before the stop)
    store = MemoryJourneyStore(journey(status="paused"))
    clock = FixedClock(NOW)
    executions = RecordingExecutions()
    stop_all(store=store, clock=clock, by="cli")
    hold(store, "exec-a", "lead_a", 5)
    skip = ResumePolicy(kind="skip_missed")
    resume_journey(
        "seminar_follow_up", policy=skip, store=store, executions=executions, clock=clock
    )
    stop_all(store=store, clock=FixedClock(NOW + timedelta(hours=1)), by="console")
    resume_all(store=store, executions=executions, clock=clock, by="cli")
    assert [output["policy"] for _, output in executions.released] == ["skip_missed"]


def test_a_lift_cut_short_and_asked_again_releases_the_rest_by_the_same_choice() -> None:
    # The admin's request timed out after the first release (one call per parked lead)
    store = MemoryJourneyStore(journey(status="paused"))
    clock = FixedClock(NOW)
    stop_all(store=store, clock=clock, by="cli")
    for n in range(3):
        hold(store, f"exec-{n}", f"lead_{n}", 5 - n)
    skip = ResumePolicy(kind="skip_missed")
    executions = RecordingExecutions()
    resume_journey(
        "seminar_follow_up", policy=skip, store=store, executions=executions, clock=clock
    )

    class CutShort(RecordingExecutions):
        def release(self, token: str, output: Mapping[str, Any]) -> bool:
            if self.released:
                raise TimeoutError("the request's time is up")
            return super().release(token, output)

    cut = CutShort()
    with pytest.raises(TimeoutError):
        resume_all(store=store, executions=cut, clock=clock, by="cli")
    assert not store.account_paused() and len(store.parked("seminar_follow_up")) == 2
    resume_all(store=store, executions=executions, clock=clock, by="cli")
    released = [output["policy"] for _, output in cut.released + executions.released]
    assert released == ["skip_missed"] * 3


def test_pausing_again_under_the_emergency_stop_voids_the_policy_chosen_before() -> None:
    store = MemoryJourneyStore(journey(status="paused"))
    store.paused_account = True
    hold(store, "exec-a", "lead_a", 5)
    clock = FixedClock(NOW)
    executions = RecordingExecutions()
    skip = ResumePolicy(kind="skip_missed")
    resume_journey(
        "seminar_follow_up", policy=skip, store=store, executions=executions, clock=clock
    )
    pause_journey("seminar_follow_up", store=store, clock=clock)
    assert store.definitions["seminar_follow_up"].resume_after_stop is None
    resume_journey(
        "seminar_follow_up", policy=None, store=store, executions=executions, clock=clock
    )
    resume_all(store=store, executions=executions, clock=clock, by="cli")
    assert [output["policy"] for _, output in executions.released] == ["send_missed"]


def test_a_stop_lifted_while_a_resume_writes_is_seen_by_the_resume() -> None:
    # resume-all lifts the stop and scans while the journey is still paused (so skips it);
    # the resume, reading the stop again after its write, sees it lifted and releases itself
    class LiftedDuringTheWrite(MemoryJourneyStore):
        def put_journey(self, journey: Journey, at: str) -> Journey:
            if self.paused_account:
                resume_all(store=self, executions=executions, clock=FixedClock(NOW), by="cli")
            return super().put_journey(journey, at)

    store = LiftedDuringTheWrite(journey(status="paused"))
    store.paused_account = True
    hold(store, "exec-a", "lead_a", 5)
    executions = RecordingExecutions()
    report = resume_journey(
        "seminar_follow_up",
        policy=ResumePolicy(kind="skip_missed"),
        store=store,
        executions=executions,
        clock=FixedClock(NOW),
    )
    assert report == ResumeReport(1, {"skip": 1}, 0)
    assert store.parked("seminar_follow_up") == []


@pytest.mark.parametrize("mail", [True, False], ids=["a mail", "a step that is no mail"])
def test_an_archived_journey_s_held_leads_are_released_to_leave_at_their_gates(
    mail: bool,
) -> None:
    # Given a paused journey holding two leads at a gate, archived (its record says so first)
    store = MemoryJourneyStore(journey(status="archived"))
    hold(store, "exec-a", "lead_a", 30)
    hold(store, "exec-b", "lead_b", 20)
    executions = RecordingExecutions(gone=frozenset({"token-exec-b"}))  # stopped meanwhile

    # When its held leads are let go
    released = release_archived("seminar_follow_up", store=store, executions=executions)

    # Then each goes back to its gate, released as skipped, and nothing stays parked
    assert released == 1
    [(token, output)] = executions.released
    assert (token, output["action"]) == ("token-exec-a", "skip")
    assert store.parked_records == {}
    # And its gate ends the lead's time there: no mail goes, no held step (a tag, the owner's
    # word, the CRM call) runs
    state = {"lead_id": LEAD, "release": output}
    decided = gate(store, RecordingWaits(), request(state=state, mail=mail))
    assert (decided.action, decided.reason) == ("exit", "journey_archived")


def test_resume_with_nothing_parked_reports_nothing() -> None:
    store = MemoryJourneyStore(journey(status="paused"))
    report = resume_journey(
        "seminar_follow_up",
        policy=None,
        store=store,
        executions=RecordingExecutions(),
        clock=FixedClock(NOW),
    )
    assert report == ResumeReport(0, {}, 0)


@pytest.mark.parametrize("status", ["archived", "draft"])
def test_a_journey_that_is_not_active_is_not_paused_so_resume_cannot_switch_it_on(
    status: str,
) -> None:
    # Given an archived journey (or a draft)
    store = MemoryJourneyStore(journey(status=status))

    # When someone pauses it, it is refused and stays as it is
    with pytest.raises(ValidationFailed, match=f"is {status}: only an active journey is paused"):
        pause_journey("seminar_follow_up", store=store, clock=FixedClock(NOW))
    assert store.definitions["seminar_follow_up"].status == status


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("archived", "is archived: only a paused journey is resumed"),
        ("draft", "is draft: only a paused journey is resumed"),
        ("active", "is active and holds no lead: there is nothing to resume"),
    ],
)
def test_resume_switches_nothing_back_on_that_was_not_paused(status: str, said: str) -> None:
    # Given a journey archived (a draft, or active with nobody held)
    store = MemoryJourneyStore(journey(status=status))

    # When someone resumes it, it is refused and stays as it is: its triggers stay off
    with pytest.raises(ValidationFailed, match=said):
        resume_journey(
            "seminar_follow_up",
            policy=None,
            store=store,
            executions=RecordingExecutions(),
            clock=FixedClock(NOW),
        )
    assert store.definitions["seminar_follow_up"].status == status


def test_an_active_journey_still_holding_leads_is_resumed() -> None:
    # Given an active journey whose resume stopped before releasing its parked lead, and one
    # the emergency stop holds
    cut_short = MemoryJourneyStore(journey(status="active"))
    hold(cut_short, "exec-a", "lead_a", 5)
    stopped = MemoryJourneyStore(journey(status="active"))
    stopped.paused_account = True
    executions = RecordingExecutions()

    # When each is resumed, the first releases its lead and the second keeps the choice
    report = resume_journey(
        "seminar_follow_up", policy=None, store=cut_short, executions=executions,
        clock=FixedClock(NOW),
    )  # fmt: skip
    assert report.released == 1
    held = resume_journey(
        "seminar_follow_up", policy=ResumePolicy(kind="skip_missed"), store=stopped,
        executions=executions, clock=FixedClock(NOW),
    )  # fmt: skip
    assert held.held_by_stop == ResumePolicy(kind="skip_missed")


# ---------------------------------------------------------------- the emergency stop
def test_stop_all_sets_the_account_stop() -> None:
    store = MemoryJourneyStore(journey())
    stop_all(store=store, clock=FixedClock(NOW), by="cli")
    assert store.account_paused()
    assert store.stop_log == [(True, isoformat(NOW), "cli")]


def test_resume_all_lifts_the_stop_and_releases_journeys_not_paused_on_their_own() -> None:
    store = MemoryJourneyStore(
        journey("seminar_follow_up", resume=ResumePolicy(kind="skip_missed")),
        journey("welcome_nurture"),
        journey("re_engagement", status="paused"),
    )
    store.paused_account = True
    hold(store, "seminar-a", "lead_a", 5)
    for journey_id in ("welcome_nurture", "re_engagement"):
        store.parked_records[(journey_id, f"{journey_id}-b")] = ParkedExecution(
            journey_id, f"{journey_id}-b", "lead_b", "Send it", f"token-{journey_id}", AT
        )
    executions = RecordingExecutions()

    reports = resume_all(store=store, executions=executions, clock=FixedClock(NOW), by="cli")

    assert not store.account_paused()
    assert store.stop_log == [(False, isoformat(NOW), "cli")]
    assert reports == {
        "seminar_follow_up": ResumeReport(1, {"skip": 1}, 0),
        "welcome_nurture": ResumeReport(1, {"send": 1}, 0),
    }
    assert [token for token, _ in executions.released] == [
        "token-seminar-a",
        "token-welcome_nurture",
    ]
    # the journey paused on its own keeps its leads until it is resumed
    assert [p.execution_name for p in store.parked("re_engagement")] == ["re_engagement-b"]


def test_parked_by_step_counts_where_leads_wait() -> None:
    held = [
        ParkedExecution("j", f"e{n}", f"l{n}", step, f"t{n}", AT)
        for n, step in enumerate(["Send mail A", "Send mail B", "Send mail A"])
    ]
    assert parked_by_step(held) == {"Send mail A": 2, "Send mail B": 1}
    assert parked_by_step([]) == {}


def test_a_gate_that_loses_the_reservation_race_decides_again_on_the_new_ledger() -> None:
    # Given another journey's gate reserving the lead's only mail of the day between this
    # gate's read and its write
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    store.reserve_before_next_write = isoformat(NOW - timedelta(seconds=1))

    # When this gate decides
    decision = gate(store, waits)

    # Then its write is refused, it reads again, and the cap defers its mail to the next day
    assert decision.action == "defer" and decision.reason == "frequency_cap"
    assert store.reservations == []


# ---------------------------------------------------------------- a send held by a pause
def passed(entered_at: datetime, **state: Any) -> GateRequest:
    """The gate before mail A, entered at ``entered_at``, with the execution's ``state``."""
    return request(entered_at=isoformat(entered_at), state={"lead_id": LEAD, **state}, node=None)


def held_after(entered_at: datetime) -> dict[str, Any]:
    """The state as the send's Catch leaves it when the gate entered at ``entered_at`` let the
    mail through and a retry of the send found the journey paused: the error in that gate's
    answer ($.gate.held)."""
    raw = entered_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    answer = {"action": "send", "reason": None, "send_at": None, "entered_at": raw}
    held = {"Error": "SendHeld", "Cause": "send 'x': held (journey_paused), not sent"}
    return {"gate": {**answer, "held": held}}


def test_a_mail_held_by_a_pause_is_counted_once_when_it_goes_after_the_resume() -> None:
    # Given the gate let mail A through (booked in the lead's ledger), and SES refused it
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    first = NOW - timedelta(minutes=30)
    assert gate(store, waits, passed(first), clock=FixedClock(first)) == GateDecision("send")
    assert len(store.sends) == 1
    # And the journey paused before the send's retry, which was held (SendHeld): the lead is
    # back at the gate, which parks it and lets the held mail's booking go
    store.definitions["seminar_follow_up"] = journey(status="paused")
    back = passed(NOW - timedelta(minutes=10), **held_after(first))
    assert gate(store, waits, back, clock=FixedClock(NOW - timedelta(minutes=10))).action == "park"
    assert store.sends == []

    # When the marketer resumes (send the missed mails) and the lead passes the gate again
    store.definitions["seminar_follow_up"] = journey()
    release = {"step": "Send mail A", "action": "send", "not_before": None}
    parked_answer = {"action": "park", "reason": "journey_paused", "send_at": None}
    again = passed(NOW, release=release, gate=parked_answer)
    decision = gate(store, waits, again)

    # Then the mail goes (under a cap of one a day it is not deferred by its own earlier
    # booking), counted once: one booking, from the pass that lets it out
    assert decision == GateDecision("send")
    assert store.sends == [isoformat(NOW)]


def test_a_held_mail_back_at_its_gate_after_the_resume_is_not_held_back_by_its_own_booking() -> (
    None
):
    # Given the gate let mail A through an hour ago, and the send's retry was held by a pause
    # since lifted: the lead comes back to the gate with the journey active again
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    first = NOW - timedelta(hours=1)
    assert gate(store, waits, passed(first), clock=FixedClock(first)) == GateDecision("send")

    # When the gate decides again
    decision = gate(store, waits, passed(NOW, **held_after(first)))

    # Then the mail goes now, and the lead's ledger counts it once, at now
    assert decision == GateDecision("send")
    assert store.sends == [isoformat(NOW)]
    # And a second journey's mail the same day is still held to the cap by it
    other = request(journey_id="seminar_follow_up", execution_name="other-execution")
    assert gate(store, waits, other).reason == "frequency_cap"


def test_a_held_mail_the_resume_skips_is_not_counted() -> None:
    # Given mail A let through, then held by a pause (its booking let go as the gate parked)
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    first = NOW - timedelta(hours=2)
    gate(store, waits, passed(first), clock=FixedClock(first))
    store.definitions["seminar_follow_up"] = journey(status="paused")
    back = passed(NOW - timedelta(hours=1), **held_after(first))
    assert gate(store, waits, back, clock=FixedClock(NOW - timedelta(hours=1))).action == "park"

    # When the resume skips the missed mails
    store.definitions["seminar_follow_up"] = journey()
    skip = {"step": "Send mail A", "action": "skip", "not_before": None}
    assert gate(store, waits, passed(NOW, release=skip)).action == "skip"

    # Then no mail is counted for the lead: the next mail (another journey's) may go today
    assert store.sends == []
    assert gate(store, waits, request(execution_name="other-execution")).action == "send"


def test_a_gate_asked_again_for_the_same_pass_books_its_mail_once() -> None:
    # Given the gate let mail A through and booked it, and its task ran again (the answer lost)
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    assert gate(store, waits, passed(NOW)) == GateDecision("send")

    # When the same pass is decided again, a moment later
    later = FixedClock(NOW + timedelta(seconds=5))
    decision = gate(store, waits, passed(NOW), clock=later)

    # Then it sends (its own booking does not fill the day's cap), booked once
    assert decision == GateDecision("send")
    assert store.sends == [isoformat(later.now())]


def test_a_booking_a_held_pass_lets_go_is_that_pass_s_only() -> None:
    # Given a ledger written before bookings named their pass, and another pass's booking
    store, waits = MemoryJourneyStore(journey()), RecordingWaits()
    old = isoformat(NOW - timedelta(days=3))
    store.sends, store.passes = [old], [None]
    first = NOW - timedelta(days=2)
    gate(store, waits, passed(first), clock=FixedClock(first))
    assert len(store.sends) == 2

    # When a held mail of another pass comes back (its booking, if any, is not these)
    elsewhere = passed(NOW, **held_after(NOW - timedelta(hours=5)))
    gate(store, waits, replace(elsewhere, execution_name="another-execution"))

    # Then the bookings of others stay, and the mail is booked beside them
    assert store.sends[:2] == [old, isoformat(first)]
    assert len(store.sends) == 3
