"""The journey_gate activity and the marketer's pause / resume, over the journey store.

Pause and resume race each other (a gate parks while a marketer resumes). Both sides write
first and read second - resume sets the status, then lists parked executions; a gate writes its
parked record, then reads the status again - so at least one of them sees the other, and a
release that arrives twice is refused by Step Functions for the used token.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.errors import FieldError, NotFound, TsunaguError, ValidationFailed
from tsunagu.event_kinds import MAIL_DEFERRED, MAIL_SKIPPED
from tsunagu.journeys.gate import (
    EntryState,
    FrequencyCap,
    GateDecision,
    GateInput,
    Release,
    SendLedger,
    decide,
    decide_step,
    held_reason,
    wait_timestamp,
)
from tsunagu.journeys.lifecycle import (
    Executions,
    JourneyEntry,
    ParkedExecution,
    WaitCleaner,
    WaitingAt,
    releases,
)
from tsunagu.journeys.model import HeldResume, Journey, ResumePolicy
from tsunagu.journeys.records import rewrite
from tsunagu.leads.model import LeadEvent
from tsunagu.mail.consent import Recipient

AllowedAt = Callable[[datetime], datetime]
"""Moves a moment out of quiet hours and closed days (services.allowed_send_time)."""


class NotPaused(TsunaguError):
    """The journey was resumed before this execution parked: the state machine's Catch sends it
    back to its gate (the error's name is what ASL matches)."""


@dataclass(frozen=True)
class GateView:
    """All the gate reads, in one request."""

    journey: Journey | None
    account_paused: bool
    entry: EntryState | None
    recipient: Recipient
    sends: SendLedger


class GateStore(Protocol):
    def gate_view(self, journey_id: str, lead_id: str) -> GateView:
        """With the lead's consent to the journey's own topic (its record names it)."""
        ...

    def reserve_send(self, lead_id: str, ledger: SendLedger, booked: SendLedger) -> bool:
        """Write ``booked`` as the lead's ledger if it is still ``ledger``; False if another
        gate reserved first."""
        ...

    def get_journey(self, journey_id: str) -> Journey | None: ...

    def put_journey(self, journey: Journey, at: str) -> Journey: ...

    def account_paused(self) -> bool: ...

    def account_stopped_at(self) -> str | None:
        """When the emergency stop holding the account began; None when there is none."""
        ...

    def last_stop(self) -> str | None:
        """When the last emergency stop began, in force or lifted; None if there never was."""
        ...

    def set_account_paused(self, paused: bool, at: str, by: str) -> None: ...

    def journeys(self) -> list[Journey]: ...

    def entry(self, lead_id: str, journey_id: str) -> JourneyEntry | None: ...

    def exit_entry(self, entry: JourneyEntry, reason: str, at: str) -> None: ...

    def park(self, parked: ParkedExecution) -> None: ...

    def parked(self, journey_id: str) -> list[ParkedExecution]: ...

    def unpark(self, parked: ParkedExecution) -> None: ...

    def put_event(self, event: LeadEvent) -> None:
        """A line on the lead's timeline (written again as the same item on a retry)."""
        ...

    def mark_waiting(self, waiting: WaitingAt) -> None: ...


@dataclass(frozen=True)
class GateRequest:
    journey_id: str
    lead_id: str
    step: str
    execution_name: str
    state: Mapping[str, Any]
    deadline: str | None = None
    send_by: str | None = None
    node: str | None = None
    template_id: str | None = None
    entered_at: str | None = None
    """When the execution entered the gate's state: a mail the gate skips or defers is a line
    on the lead's timeline keyed on it (None: a state machine compiled before, which passes
    neither this nor the template, and leaves no line)."""
    mail: bool = True
    """False: the gate before a step that is no mail to the lead (update_lead, notify_owner,
    webhook), which only a pause holds and only an exit stops (gate.decide_step)."""

    @property
    def booking(self) -> str | None:
        """This pass through the gate, as its mail's booking in the lead's send ledger names
        it: the execution, the step and when the gate was entered (a retry of the gate's task
        keeps it). None: a state machine compiled before, which passes no ``entered_at``."""
        return _booking(self.execution_name, self.step, self.entered_at)

    @property
    def held_booking(self) -> str | None:
        """The booking of the pass through this gate whose mail was held instead of sent
        (tsunagu.mail.send.SendHeld: a retry of the send found the journey paused or stopped),
        when the execution comes back from that send: its Catch puts the error in the gate's
        answer of that pass (``$.gate.held``, the pass in its ``entered_at``). None otherwise -
        any pass through a gate replaces ``$.gate``, so it is said to the next gate only."""
        answer = self.state.get("gate")
        if not isinstance(answer, Mapping) or "held" not in answer:
            return None
        entered = answer.get("entered_at")
        if answer.get("action") != "send" or not isinstance(entered, str) or not entered:
            return None
        return _booking(self.execution_name, self.step, isoformat(parse_instant(entered)))

    @property
    def own_bookings(self) -> frozenset[str]:
        """The bookings a pass through this gate does not count against its own mail: its own
        (a retried task's, booked again in its place) and a held pass's (let go)."""
        return frozenset(b for b in (self.booking, self.held_booking) if b is not None)


def _booking(execution_name: str, step: str, entered_at: str | None) -> str | None:
    return None if entered_at is None else f"{execution_name}\n{step}\n{entered_at}"


# Gates of several journeys reserving for one lead at the same instant: after this many
# lost races the mail waits a minute and asks again.
RESERVATION_ATTEMPTS = 3


def check_gate(
    request: GateRequest,
    *,
    store: GateStore,
    waits: WaitCleaner,
    clock: Clock,
    cap: FrequencyCap,
    allowed_at: Callable[[datetime], datetime],
) -> GateDecision:
    """The gate's decision, and what it leaves: an exit recorded, a deferred mail shown waiting
    at its node (journeys status), and - last, so that a gate retried after a failure on the way
    writes the line of what it decided then - a skipped or deferred mail's timeline line."""
    decision = _decided(
        request, store=store, waits=waits, clock=clock, cap=cap, allowed_at=allowed_at
    )
    if decision.action == "defer" and decision.send_at and request.node:
        # The execution now sleeps in a Wait state until send_at: say where, as a wait does
        until = isoformat(parse_instant(decision.send_at))
        store.mark_waiting(
            WaitingAt(
                request.journey_id,
                request.node,
                request.execution_name,
                request.lead_id,
                isoformat(clock.now()),
                until,
            )
        )
    line = timeline_line(request, decision)
    if line is not None:
        store.put_event(line)
    return decision


def _decided(
    request: GateRequest,
    *,
    store: GateStore,
    waits: WaitCleaner,
    clock: Clock,
    cap: FrequencyCap,
    allowed_at: Callable[[datetime], datetime],
) -> GateDecision:
    ours = request.own_bookings
    decision = None
    for _ in range(RESERVATION_ATTEMPTS):
        view = store.gate_view(request.journey_id, request.lead_id)
        now = clock.now()
        # The mails of the last week but this pass's own, and one held instead of sent: a mail
        # is counted once, from the pass that lets it go out
        others = view.sends.without(ours)
        given = GateInput(
            journey=view.journey,
            account_paused=view.account_paused,
            lead=view.recipient.lead,
            consent=view.recipient.consent,
            entry=view.entry,
            recent_sends=others.within(now),
            step=request.step,
            release=Release.from_state(request.state, request.step),
            expiring=Release.expiring(request.state),
            deadline=request.deadline,
            send_by=request.send_by,
        )
        if request.mail:
            decision = decide(given, now=now, cap=cap, allowed_at=allowed_at)
        else:
            decision = decide_step(given)
        if decision.action == "exit":
            reason = decision.reason or "exited"
            _record_exit(request, reason, store=store, waits=waits, clock=clock)
        if decision.action == "send":
            if store.reserve_send(request.lead_id, view.sends, others.booked(now, request.booking)):
                return decision
        elif not view.sends.holds(ours) or store.reserve_send(request.lead_id, view.sends, others):
            # Not sent now: what this pass (its task retried) or the held one booked is let go
            return decision
    if decision is not None and decision.action != "send":
        # The release kept losing the race to other gates: the decision stands, and the
        # booking stays (counted once more, as before bookings were let go)
        return decision
    retry_at = clock.now() + timedelta(minutes=1)
    return GateDecision("defer", "frequency_cap_contention", wait_timestamp(retry_at))


def timeline_line(request: GateRequest, decision: GateDecision) -> LeadEvent | None:
    """The line that says on the lead's timeline why a journey mail was not sent now: skipped
    (an expired deadline, a resume policy, the frequency cap) or deferred (until when). Keyed
    on the execution, the step and when the gate was entered, as journey decisions are: a
    retried gate writes the same line again, a gate asked again after its deferral a new one."""
    kind = {"skip": MAIL_SKIPPED, "defer": MAIL_DEFERRED}.get(decision.action)
    if kind is None or request.entered_at is None:
        return None
    seed = f"{request.execution_name}\n{request.step}\n{request.entered_at}".encode()
    version = request.state.get("journey_version")
    properties: dict[str, Any] = {
        "reason": decision.reason,
        "template_id": request.template_id,
        "journey_id": request.journey_id,
        "journey_version": version if isinstance(version, int) else None,
        "node": request.node,
        "step": request.step,
        "execution_name": request.execution_name,
        "until": decision.send_at if decision.action == "defer" else None,
        "by": "journey_gate",
    }
    return LeadEvent(
        event_id="gat_" + hashlib.sha256(seed).hexdigest()[:26],
        type=kind,
        occurred_at=request.entered_at,
        lead_id=request.lead_id,
        properties={k: v for k, v in properties.items() if v is not None},
    )


def _record_exit(
    request: GateRequest, reason: str, *, store: GateStore, waits: WaitCleaner, clock: Clock
) -> None:
    entry = store.entry(request.lead_id, request.journey_id)
    if entry is not None and entry.status == "active":
        store.exit_entry(entry, reason, isoformat(clock.now()))
    waits.end_waits_of(request.lead_id, request.execution_name)


def park_execution(
    request: GateRequest, token: str, *, store: GateStore, clock: Clock
) -> ParkedExecution:
    """Hold the execution at this gate until resume releases it."""
    parked = ParkedExecution(
        journey_id=request.journey_id,
        execution_name=request.execution_name,
        lead_id=request.lead_id,
        step=request.step,
        token=token,
        parked_at=isoformat(clock.now()),
        deadline=request.deadline,
    )
    store.park(parked)
    if not _paused(request.journey_id, store):
        store.unpark(parked)
        raise NotPaused(f"journey {request.journey_id} is not paused any more")
    return parked


def _paused(journey_id: str, store: GateStore) -> bool:
    """Whether a park still holds: the journey (or the account) is paused. Not when the journey
    was archived meanwhile: the lead goes back to its gate (NotPaused), which ends its time in
    the journey, rather than stay parked on a journey no resume will ever release."""
    return held_reason(store.get_journey(journey_id), store.account_paused()) is not None


def mail_held(journey_id: str | None, store: GateStore) -> str | None:
    """Why a journey's mail, past its gate, must go back to it instead of out (a send retried
    minutes after SES refused it, asked again by tsunagu.mail.send.send_mail): the journey was
    archived since (the gate then ends the lead's time in it), or it or the account is paused
    (the gate parks it); None when it may go. A journey send whose request names no journey id
    (one made before requests carried it) is held by the emergency stop alone."""
    journey = store.get_journey(journey_id) if journey_id else None
    if journey is not None and journey.status == "archived":
        return "journey_archived"
    return held_reason(journey, store.account_paused())


# ---------------------------------------------------------------- the marketer's controls
def _journey(journey_id: str, store: GateStore) -> Journey:
    journey = store.get_journey(journey_id)
    if journey is None:
        raise NotFound(f"no journey {journey_id!r}")
    return journey


def pause_journey(journey_id: str, *, store: GateStore, clock: Clock) -> Journey:
    at = isoformat(clock.now())
    # Paused again, it is resumed again, with a policy chosen then: one chosen before is void.
    paused = _updated({"status": "paused", "paused_at": at, "resume_after_stop": None})

    def pause(now: Journey) -> Journey:
        # A draft or an archived journey is not paused: resume would then switch it on
        if now.status not in ("active", "paused"):
            problem = (
                f"{journey_id} is {now.status}: only an active journey is paused"
                " (archive it to stop its leads at their next mail)"
            )
            raise ValidationFailed([FieldError("status", problem)])
        return paused(now)

    # Over the record as stored now: a resume or a status landing meanwhile is paused too
    return rewrite(store, journey_id, pause, lambda: at)[1]


def _updated(update: Mapping[str, Any]) -> Callable[[Journey], Journey]:
    return lambda journey: journey.model_copy(update=dict(update))


def held_resume(journey: Journey, stopped_at: str | None) -> ResumePolicy | None:
    """The policy chosen for the mails of this journey the current stop holds, if one was."""
    held = journey.resume_after_stop
    return held.policy if held is not None and held.stop == stopped_at else None


@dataclass(frozen=True)
class ResumeReport:
    released: int
    by_action: Mapping[str, int]
    not_waiting: int
    """Parked records whose execution no longer waited (stopped, or released already)."""
    held_by_stop: ResumePolicy | None = None
    """Resumed while the emergency stop held its mails: the policy lifting it will release
    them by (nothing was released now)."""


def resume_journey(
    journey_id: str,
    *,
    policy: ResumePolicy | None,
    store: GateStore,
    executions: Executions,
    clock: Clock,
    allowed_at: AllowedAt | None = None,
) -> ResumeReport:
    """Resume under ``policy`` (the journey's own when None). While the emergency stop holds
    the account, nothing is released: a policy given is kept for when that stop is lifted.

    Written first, read second, as resume_all does (see the module's docstring): the stop is
    read again after the journey is active, so a stop lifted meanwhile is seen by one side.
    The choice is kept under the last stop even when none holds now: a lift running at this
    moment, which may release this journey too, then releases by the same policy."""
    journey = _journey(journey_id, store)
    _resumable(journey, store)
    chosen = policy or journey.resume
    stop = store.last_stop()
    for _ in range(2):
        kept = HeldResume(policy=policy, stop=stop) if policy and stop else None
        resumed = _updated({"status": "active", "paused_at": None, "resume_after_stop": kept})

        def resume(now: Journey, resumed: Callable[[Journey], Journey] = resumed) -> Journey:
            _resumable(now, store)  # decided again on the record as it is now
            return resumed(now)

        rewrite(store, journey_id, resume, lambda: isoformat(clock.now()))
        holding = store.account_stopped_at()
        if holding is None:
            return _release(journey_id, chosen, store, executions, clock, allowed_at)
        if holding == stop:
            break
        stop = holding  # a stop began meanwhile: the choice is for that one
    return ResumeReport(0, {}, 0, held_by_stop=chosen)


def _resumable(journey: Journey, store: GateStore) -> None:
    """Resume releases what a pause (or the emergency stop) holds: a draft or an archived
    journey is not switched back on by it, and an active one is resumed only while the stop
    holds it or leads are still parked at its gates (a resume cut short)."""
    if journey.status == "paused":
        return
    if journey.status == "active":
        if store.account_stopped_at() is not None or store.parked(journey.journey_id):
            return
        problem = f"{journey.journey_id} is active and holds no lead: there is nothing to resume"
    else:
        problem = (
            f"{journey.journey_id} is {journey.status}: only a paused journey is resumed"
            " (set its status to change it)"
        )
    raise ValidationFailed([FieldError("status", problem)])


def _release(
    journey_id: str,
    policy: ResumePolicy,
    store: GateStore,
    executions: Executions,
    clock: Clock,
    allowed_at: AllowedAt | None = None,
) -> ResumeReport:
    actions: Counter[str] = Counter()
    gone = 0
    for held, release in releases(store.parked(journey_id), policy, clock.now(), allowed_at):
        if executions.release(held.token, {**release.as_output(), "policy": policy.kind}):
            actions[release.action] += 1
        else:
            gone += 1
        store.unpark(held)
    return ResumeReport(sum(actions.values()), dict(actions), gone)


def release_archived(journey_id: str, *, store: GateStore, executions: Executions) -> int:
    """Let go every lead held at the gates of an archived journey (paused, or under the stop,
    when it was archived): back at its gate, each leaves the journey (journey_archived) - no
    mail goes and no held step (a tag, a word to the owner, a CRM call) runs, as a resume
    would let them. Released as skipped, should a gate ever read the release. The number let
    go; asked again (an archive cut short), it lets go those still held."""
    released = 0
    for held in store.parked(journey_id):
        if executions.release(held.token, Release(held.step, "skip").as_output()):
            released += 1
        store.unpark(held)
    return released


def stop_all(*, store: GateStore, clock: Clock, by: str) -> None:
    """The account-wide emergency stop: every journey parks at its next gate."""
    store.set_account_paused(True, isoformat(clock.now()), by)


def resume_all(
    *,
    store: GateStore,
    executions: Executions,
    clock: Clock,
    by: str,
    allowed_at: AllowedAt | None = None,
) -> dict[str, ResumeReport]:
    """Lift the emergency stop; each journey not paused on its own resumes by its policy (the
    one it was resumed with during this stop, if any). Nothing is written to the journeys: a
    choice belongs to the stop it was made under, and is never read for another. Asked again
    after a lift cut short (mails still parked under active journeys), it releases them by
    the same choices: the lifted stop is still the last one."""
    lifted = store.last_stop()
    store.set_account_paused(False, isoformat(clock.now()), by)
    return {
        journey.journey_id: _release(
            journey.journey_id,
            held_resume(journey, lifted) or journey.resume,
            store,
            executions,
            clock,
            allowed_at,
        )
        for journey in store.journeys()
        if journey.status != "paused"
    }


def parked_by_step(parked: Sequence[ParkedExecution]) -> dict[str, int]:
    return dict(Counter(p.step for p in parked))
