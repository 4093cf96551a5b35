"""A lead's way through journeys: entering (once per trigger, by the re-entry policy), leaving
(the moment something says so), and being held and released when a journey is paused.

Entry is keyed so that a repeated event never enters a lead twice: the execution's name is
derived from the journey, the lead and the triggering event, and the entry record is written
with a condition before the execution starts. Starting the same name again is harmless.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.journeys.business_time import time_zone_or
from tsunagu.journeys.gate import Release
from tsunagu.journeys.model import Journey, ResumePolicy, Trigger
from tsunagu.leads.model import Lead
from tsunagu.mail.consent import SkipReason, marketing_refusal


@dataclass(frozen=True)
class JourneyEntry:
    lead_id: str
    journey_id: str
    execution_name: str
    execution_arn: str
    entered_at: str
    trigger: str
    trigger_event_id: str | None
    entries: int
    status: Literal["active", "exited"]
    exit_reason: str | None
    updated_at: str


@dataclass(frozen=True)
class WaitingAt:
    """Where an execution waits: at a ``wait`` node until a send time, or at a ``wait_for``
    node until the lead acts or the deadline passes. One per execution (a later wait replaces
    it); it counts as waiting only until ``until`` - after that the execution has moved on."""

    journey_id: str
    node: str
    execution_name: str
    lead_id: str
    since: str
    until: str


@dataclass(frozen=True)
class ParkedExecution:
    journey_id: str
    execution_name: str
    lead_id: str
    step: str
    token: str
    parked_at: str
    deadline: str | None = None


@dataclass(frozen=True)
class Occurrence:
    """One event as entry and exit rules see it."""

    lead_id: str
    event_id: str
    type: str
    occurred_at: str
    properties: Mapping[str, Any]


class JourneyStore(Protocol):
    def entry(self, lead_id: str, journey_id: str) -> JourneyEntry | None: ...

    def entries_of(self, lead_id: str) -> list[JourneyEntry]: ...

    def claim_entry(self, entry: JourneyEntry, previous: JourneyEntry | None) -> bool: ...

    def release_entry(self, entry: JourneyEntry, previous: JourneyEntry | None) -> None:
        """Undo claim_entry(entry, previous), if nobody wrote the entry since."""
        ...

    def exit_entry(self, entry: JourneyEntry, reason: str, at: str) -> None: ...


@dataclass(frozen=True)
class StartedExecution:
    arn: str
    existed: bool
    """The name had been started before (ExecutionAlreadyExists): nothing new runs."""


RUNNING_COUNTED = 1000
"""How many of a journey's running executions are counted: ListExecutions' largest page, so one
request per journey. Counting every one took a request per 100 leads on AWS (30,000 leads, 300
requests for one journey, throttled, past the admin API's 29 s); nothing else knows the number
(the entry records are kept per lead and stay "active" after an execution ends by itself)."""


@dataclass(frozen=True)
class RunningCount:
    """A journey's running executions: exactly ``count``, or (``at_least``) more than could be
    counted, ``count`` of them seen."""

    count: int
    at_least: bool = False


class Executions(Protocol):
    def start(
        self, state_machine_arn: str, name: str, payload: Mapping[str, Any]
    ) -> StartedExecution:
        """Start once: the same name again is not a second execution (``existed``)."""
        ...

    def exists(self, execution_arn: str) -> bool:
        """Whether the execution was ever started (running or ended)."""
        ...

    def stop(self, execution_arn: str, cause: str) -> None: ...

    def is_running(self, execution_arn: str) -> bool: ...

    def release(self, token: str, output: Mapping[str, Any]) -> bool: ...


class WaitCleaner(Protocol):
    def end_waits_of(self, lead_id: str, execution_name: str) -> int: ...


# ---------------------------------------------------------------- entry
def trigger_matches(trigger: Trigger, event: Occurrence) -> bool:
    props = event.properties
    if trigger.kind == "form_submitted":
        return event.type == "form_submitted" and trigger.form_id in (None, props.get("form_id"))
    if trigger.kind == "event":
        assert trigger.event is not None
        return trigger.event.matches(event.type, props)
    if trigger.kind == "stage_reached":
        return event.type == "stage_changed" and props.get("to") == trigger.stage
    if trigger.kind == "score_crossed":
        assert trigger.threshold is not None
        if event.type != "score_changed":
            return False
        before, after = float(props.get("from", 0)), float(props.get("to", 0))
        return before < trigger.threshold <= after
    return False  # manual: never from an event


def takes_entries(journey: Journey) -> bool:
    """Whether a trigger (an event, a segment's daily run) enters leads into this journey:
    active and paused ones. A paused journey still takes its leads: its gate holds their first
    mail until the resume, whose policy then decides (a pause never loses a lead). Drafts and
    archived journeys take nobody."""
    return journey.status in ("active", "paused")


def triggered_journeys(journeys: Sequence[Journey], event: Occurrence) -> list[Journey]:
    """The journeys taking entries one of whose triggers this event fires."""
    return [
        j
        for j in journeys
        if takes_entries(j) and any(trigger_matches(t, event) for t in j.triggers)
    ]


def execution_name(journey_id: str, lead_id: str, cause: str) -> str:
    """Deterministic, so a repeated cause maps to the same execution (Step Functions allows 80
    characters of letters, digits, - and _)."""
    digest = hashlib.sha256(f"{journey_id}\n{lead_id}\n{cause}".encode()).hexdigest()[:24]
    return f"{journey_id[:40]}-{lead_id[:12]}-{digest}"


def lead_payload(lead: Lead | None) -> dict[str, Any]:
    """What an execution should know of the lead from the start, however it entered: its time
    zone, when known and a zone (business-time waits are in the lead's time, not the
    company's; one that is not a zone is logged and left out, and the stack's is used)."""
    zone = lead.fields.get("time_zone") if lead is not None else None
    known = time_zone_or(zone.value, "") if zone is not None else ""
    return {"time_zone": known} if known else {}


LEAD_PAYLOAD_KEYS = ("time_zone",)
"""What lead_payload() may put in an execution's input."""


def may_enter(journey: Journey, previous: JourneyEntry | None, now: datetime) -> bool:
    if previous is None:
        return True
    policy = journey.reentry
    if policy.kind == "always":
        return True
    if policy.kind == "after_interval":
        return parse_instant(previous.entered_at) + timedelta(days=policy.interval_days) <= now
    return False


@dataclass(frozen=True)
class EntryResult:
    journey_id: str
    entered: bool
    """In the journey: entered now, or by this same entry before (``repeated``: its execution
    had been started - a name claimed whose execution never started is entered now)."""
    reason: str
    execution_arn: str | None = None
    entered_by: str | None = None
    """What claimed the entry the lead is in (its ``trigger_event_id``): the event, or the
    background start, that entered it - for a repeat, the earlier one."""

    @property
    def entered_now(self) -> bool:
        """This call entered the lead: a repeat (the same request again, a retried run) names
        the execution the first one started, and is no new entry to count."""
        return self.entered and self.reason != "repeated"

    @property
    def already_in(self) -> bool:
        return self.entered and not self.entered_now


def execution_arn(state_machine_arn: str, name: str) -> str:
    """An execution's ARN, from the state machine, version or alias it was started on (execution
    names are unique per state machine, whichever version ran them)."""
    parts = state_machine_arn.split(":")
    unqualified = ":".join(parts[:7])  # arn:aws:states:<region>:<account>:stateMachine:<name>
    return f"{unqualified.replace(':stateMachine:', ':execution:')}:{name}"


ENTRY_KEYS = ("entered_on", "entered_by")
"""In an execution's input: when the server had the event that entered the lead, and its id
(tsunagu.journeys.stream). A journey's waits count what the lead did from then on."""
ENTERED_KEYS = ("lead_id", "journey_id", "journey_version", "trigger")
"""In every execution's input: who entered which journey, on which version, by what trigger
(enter() writes them last, so nothing else replaces them)."""
EXECUTION_INPUT_KEYS = frozenset((*ENTERED_KEYS, *ENTRY_KEYS, *LEAD_PAYLOAD_KEYS))
"""Every key entry puts in an execution's input: a journey's steps read them from the state, so
no step's result may be kept under one (tsunagu.journeys.compiler.RESERVED_SLOTS)."""


def enter(
    journey: Journey,
    lead_id: str,
    *,
    cause: str,
    trigger: str,
    trigger_event_id: str | None,
    payload: Mapping[str, Any],
    state_machine_arn: str,
    store: JourneyStore,
    executions: Executions,
    clock: Clock,
) -> EntryResult:
    """Enter the lead if the re-entry policy lets it; ``cause`` names this entry (the event id,
    or the CLI's request) so that repeating it never starts a second execution."""
    name = execution_name(journey.journey_id, lead_id, cause)
    previous = store.entry(lead_id, journey.journey_id)
    now = clock.now()
    repeat = previous is not None and previous.execution_name == name
    if not repeat and not may_enter(journey, previous, now):
        return EntryResult(journey.journey_id, False, f"reentry_{journey.reentry.kind}")
    # Re-entry is allowed, but not while the lead is still in the journey: one lead, one
    # execution per journey, so exits and goals always reach the one that runs.
    still_in = previous is not None and previous.status == "active" and not repeat
    if still_in and previous is not None and executions.is_running(previous.execution_arn):
        return EntryResult(journey.journey_id, False, "still_in_journey")
    if not repeat:
        arn = execution_arn(state_machine_arn, name)
        at = isoformat(now)
        entry = JourneyEntry(
            lead_id=lead_id,
            journey_id=journey.journey_id,
            execution_name=name,
            execution_arn=arn,
            entered_at=at,
            trigger=trigger,
            trigger_event_id=trigger_event_id,
            entries=(previous.entries + 1) if previous else 1,
            status="active",
            exit_reason=None,
            updated_at=at,
        )
        if not store.claim_entry(entry, previous):
            return EntryResult(journey.journey_id, False, "entered_concurrently")
    # A repeat continues here: the first attempt may have died between the claim and the start.
    # Asked first, because Step Functions answers a name started again with the same input as
    # a success while it runs (and moto always): only the question tells a repeat from an
    # entry whose start never ran.
    # The execution asked about is the one the entry record names, not the same name on the
    # state machine entries start on now: the journey's first publication moves new entries
    # from the stack's state machine to the journey's own, and Step Functions names executions
    # per state machine - a repeat across it (the same start run again, a retried background
    # start, a redelivered batch) would otherwise start the lead a second execution there.
    by = previous.trigger_event_id if repeat and previous is not None else trigger_event_id
    claimed: JourneyEntry | None = None
    if repeat and previous is not None:
        if executions.exists(previous.execution_arn):
            return EntryResult(journey.journey_id, True, "repeated", previous.execution_arn, by)
        arn = execution_arn(state_machine_arn, name)
        if arn != previous.execution_arn:
            # The claim's start never ran, and entries now start elsewhere: the record names
            # the execution that will run, or exits and goals would stop one that never did.
            claimed = replace(previous, execution_arn=arn, updated_at=isoformat(now))
            if not store.claim_entry(claimed, previous):
                return EntryResult(journey.journey_id, False, "entered_concurrently")
    journey_input = {
        **payload,  # first: extra input never replaces who entered, or where
        "lead_id": lead_id,
        "journey_id": journey.journey_id,
        # Which version of the journey this execution runs, for the reports: the one the alias
        # routes new executions to (None for a state machine deployed with the stack).
        "journey_version": journey.published.version if journey.published else None,
        "trigger": trigger,
    }
    try:
        started = executions.start(state_machine_arn, name, journey_input)
    except Exception:
        if not repeat:
            # Not entered: the claim goes, or it would stand for an entry that never ran - a
            # later start (another request key, another event) refused by re-entry ``never``,
            # for good. Repeating this same entry claims it afresh.
            store.release_entry(entry, previous)
        elif claimed is not None:
            store.release_entry(claimed, previous)
        raise
    # Repeated only where the execution was there: a claim whose start never ran (the run died
    # between the two) is entered now, and is counted so
    reason = "repeated" if started.existed else "entered"
    return EntryResult(journey.journey_id, True, reason, started.arn, by)


def enter_leads(
    journey: Journey,
    leads: Iterable[Lead],
    *,
    cause: str,
    trigger: str,
    extra: Mapping[str, Any] | None = None,
    by: str | None = None,
    state_machine_arn: str,
    store: JourneyStore,
    executions: Executions,
    clock: Clock,
) -> list[tuple[Lead, EntryResult]]:
    """Enter each lead (manual starts, segments): one cause, so a repeat enters nobody twice;
    each execution learns the lead's time zone and ``extra`` (but for ENTRY_KEYS: only an
    event that enters a lead names them, and a journey's waits count from them). ``by``: the
    background start entering them, kept on their entries as what triggered them (a run of
    it repeated tells the leads it entered itself from those an earlier start had)."""
    extra = {k: v for k, v in (extra or {}).items() if k not in ENTRY_KEYS}
    return [
        (
            lead,
            enter(
                journey,
                lead.lead_id,
                cause=cause,
                trigger=trigger,
                trigger_event_id=by,
                payload={**lead_payload(lead), **extra},
                state_machine_arn=state_machine_arn,
                store=store,
                executions=executions,
                clock=clock,
            ),
        )
        for lead in leads
    ]


# ---------------------------------------------------------------- exit
def exit_reason_for(
    journey: Journey, event: Occurrence, consent: Mapping[str, str] | None = None
) -> str | None:
    """Whether this event ends the lead's time in this journey, and why. After an opt-out,
    the lead stays only if it may still be mailed on the journey's topic, by the rule every
    send obeys (``consent``: the lead's topics as stored; without them, only an opt-out that
    alone stops the mail ends it, and the gate judges the rest at the next mail)."""
    props = event.properties
    if event.type == "consent_changed" and props.get("status") == "opted_out":
        # What the event says wins over a read that may not show it yet
        topics = {**(consent or {}), str(props.get("topic")): "opted_out"}
        refused = marketing_refusal(topics, journey.topic)
        if refused is SkipReason.OPTED_OUT:
            return "unsubscribed"
        if refused is not None and consent is not None:
            return "no_consent"
    if event.type == "mail_suppressed":
        return "suppressed"
    if event.type == "mail_bounced" and props.get("bounce_type") == "Permanent":
        return "bounced"  # repeated soft bounces reach the gate as a suppression
    if event.type == "lead_removed":
        return "removed"
    if event.type == "crm_status_changed" and journey.leaves_on_crm_status(props.get("to")):
        return "crm_status"
    # Not the stage this journey's own update_lead set: the nodes after it (tell the owner,
    # call the CRM) are there on purpose. Its later mails still pass the gate, which holds
    # nurture back from a lead in a stage the journey exits on.
    set_here = props.get("by") == f"journey:{journey.journey_id}"
    stage_left = event.type == "stage_changed" and journey.leaves_on_stage(str(props.get("to")))
    if stage_left and not set_here:
        return "converted"
    # A goal is a person's: a scanner following the "book a demo" link, or a crawler viewing
    # the pricing page, does not end the lead's nurture.
    if not props.get("automated") and any(
        goal.matches(event.type, props) for goal in journey.exit.goals
    ):
        return "goal_reached"
    return None


EXIT_EVENT_KINDS = frozenset(
    {
        "consent_changed",
        "mail_suppressed",
        "mail_bounced",
        "lead_removed",
        "crm_status_changed",
        "stage_changed",
    }
)


def may_end_journeys(event_type: str, journeys: Sequence[Journey]) -> bool:
    """Cheap test before reading the lead's entries: could this kind of event end any?"""
    if event_type in EXIT_EVENT_KINDS:
        return True
    return any(goal.type == event_type for j in journeys for goal in j.exit.goals)


def leave_journeys(
    event: Occurrence,
    journeys: Mapping[str, Journey],
    *,
    store: JourneyStore,
    executions: Executions,
    waits: WaitCleaner,
    clock: Clock,
    consent: Callable[[str], Mapping[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Take the lead out of every journey this event ends: stop the execution (so no wait or
    parked gate lingers), forget its waits, mark the entry. Returns (journey, reason) pairs.
    ``consent`` reads a lead's topics, once, when an opt-out is to be judged."""
    left = []
    topics: Mapping[str, str] | None = None
    for entry in store.entries_of(event.lead_id):
        journey = journeys.get(entry.journey_id)
        if entry.status != "active" or journey is None:
            continue
        if topics is None and consent is not None and event.type == "consent_changed":
            topics = consent(event.lead_id)
        reason = exit_reason_for(journey, event, topics)
        if reason is None:
            continue
        store.exit_entry(entry, reason, isoformat(clock.now()))
        executions.stop(entry.execution_arn, f"left the journey: {reason}")
        waits.end_waits_of(entry.lead_id, entry.execution_name)
        left.append((entry.journey_id, reason))
    return left


# ---------------------------------------------------------------- pause and resume
def releases(
    parked: Sequence[ParkedExecution],
    policy: ResumePolicy,
    now: datetime,
    allowed_at: Callable[[datetime], datetime] | None = None,
) -> list[tuple[ParkedExecution, Release]]:
    """How resume lets each parked execution go, oldest first.

    ``pace`` does not keep a process running to drip them out: each execution gets its turn as a
    ``not_before`` and its gate defers to it, so the release costs one call per execution now.
    The turns are minutes of allowed time (``allowed_at``: out of quiet hours and closed days):
    a release paced past the evening goes on the next morning at the same rate, rather than all
    at once when the gate holds each turn for the morning.
    """
    turns = _paced_turns(now, allowed_at or (lambda instant: instant))
    planned = []
    for index, held in enumerate(parked):
        if policy.kind == "skip_missed":
            release = Release(held.step, "skip")
        elif policy.kind == "expire":
            release = Release(held.step, "expire")
        elif policy.kind == "pace":
            turn = turns(index // policy.rate_per_minute)
            release = Release(held.step, "send", isoformat(turn) if turn > now else None)
        else:
            release = Release(held.step, "send")
        planned.append((held, release))
    return planned


def _paced_turns(
    now: datetime, allowed_at: Callable[[datetime], datetime]
) -> Callable[[int], datetime]:
    """The start of each paced minute: the first now (or when sending is next allowed), each
    next one a minute of allowed time later."""
    starts = [max(now, allowed_at(now))]

    def turn(minute: int) -> datetime:
        while len(starts) <= minute:
            starts.append(allowed_at(starts[-1] + timedelta(minutes=1)))
        return starts[minute]

    return turn


def with_exit(entry: JourneyEntry, reason: str, at: str) -> JourneyEntry:
    return replace(entry, status="exited", exit_reason=reason, updated_at=at)
