"""Journeys, as marketers run them: list, show, status, change the status, pause, resume by a
policy, and the account-wide emergency stop. The CLI's ``tsunagu journeys ...`` commands call
these (and the admin API will); each change goes in the audit log — "who paused everything
before Golden Week, and what did they choose when they resumed?"."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from tsunagu.clock import Clock, client_instant, isoformat, parse_instant
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    FieldError,
    MissingSegment,
    NotFound,
    Throttled,
    TsunaguError,
    ValidationFailed,
)
from tsunagu.ids import new_id
from tsunagu.journeys import steps
from tsunagu.journeys.compiler import RESERVED_SLOTS, validate
from tsunagu.journeys.definition import JourneyDefinition, Send
from tsunagu.journeys.install import Templates, install_shipped
from tsunagu.journeys.lifecycle import (
    ENTRY_KEYS,
    EntryResult,
    Executions,
    JourneyStore,
    RunningCount,
    enter_leads,
)
from tsunagu.journeys.model import (
    Journey,
    JourneySettings,
    ResumePolicy,
    StoredGraph,
    Trigger,
    branch_cases,
    published_graph_key,
    unreserved_journey_id,
)
from tsunagu.journeys.problems import settings_problems
from tsunagu.journeys.publishing import keep_publication
from tsunagu.journeys.records import rewrite
from tsunagu.journeys.simulation import Forecast, Simulation, forecast, simulate
from tsunagu.journeys.simulation import Rules as SimulationRules
from tsunagu.journeys.start_jobs import MAX_ATTEMPTS, MAX_ERROR, StartJob
from tsunagu.journeys.steps import GateStore, ResumeReport, parked_by_step
from tsunagu.leads.lookup import LeadFinder, lead_by_email
from tsunagu.leads.model import Lead
from tsunagu.segments.filter import SEGMENT_NAME, Facts, NoFacts, Segment
from tsunagu.segments.saved import (
    SavedSegment,
    missing_import,
    missing_segment,
    reading_saved,
)
from tsunagu.segments.selection import Leads as SegmentLeads
from tsunagu.segments.selection import candidate_pages
from tsunagu.segments.selection import selected as segments_selected


class Leads(LeadFinder, SegmentLeads, Protocol):
    pass


class Journeys(GateStore, JourneyStore, Protocol):
    """The journey repository, as the gate (pause, resume) and entry see it."""

    def put_journey(self, journey: Journey, at: str) -> Journey: ...

    def save_graph(self, graph: StoredGraph) -> None: ...

    def save_draft(self, graph: StoredGraph, read: int | None) -> StoredGraph: ...

    def graph(self, journey_id: str, which: str) -> StoredGraph | None: ...

    def published_graph(self, journey_id: str) -> StoredGraph | None:
        """The graph of the latest version published."""
        ...

    def waiting_by_node(self, journey_id: str, now: datetime) -> dict[str, int]: ...

    def start_job(self, journey_id: str, start_id: str) -> StartJob | None: ...

    def start_jobs(
        self, journey_id: str, before: str | None, limit: int
    ) -> tuple[list[StartJob], bool]:
        """Newest first, before the start ``before``; and whether there are more."""
        ...

    def save_start_job(self, job: StartJob) -> StartJob:
        """Over ``job.revision``; ConcurrentUpdate if another run stored it since."""
        ...


@dataclass(frozen=True)
class JourneyCommands:
    """The ports of the journey use cases (built by ``services.journey_commands``)."""

    journeys: Journeys
    executions: Executions
    audit: AuditLog
    clock: Clock
    leads: Leads
    entry_arn: Callable[[Journey], str]
    """Where a journey's executions start: its alias when published, else its state machine."""
    running: Callable[[Journey], RunningCount | None]
    """A journey's running executions (of every version), counted up to RUNNING_COUNTED; None
    where it has no state machine this deployment knows."""
    templates: Callable[[], Collection[str]]
    """The ids of the mail templates there are: a send naming none of them does not publish
    (publish_journey refuses it), so the editor says so too."""
    time_zone: tzinfo
    """The team's (settings.default_time_zone): a start's default request key is its date."""
    saved_segment: Callable[[str], SavedSegment | None] = lambda name: None
    """A saved segment by name (None: none by that name, or a stack without segments)."""
    facts: Callable[[], Facts] = NoFacts
    """What filters read beyond the lead, for one evaluation."""
    import_exists: Callable[[str], bool] = lambda import_id: False
    """Whether an import of that id was ever started (False: none, or a stack without imports):
    a filter naming one that was not is refused (tsunagu.segments.saved.missing_import)."""
    allowed_at: Callable[[datetime], datetime] | None = None
    """Moves a moment out of the account's quiet hours and closed days: resume paces its
    releases in allowed time (None: every moment is allowed)."""
    start_in_background: Callable[[str, str], None] | None = None
    """Hands a background start (journey, start id) to the function that runs it, without
    waiting (None: a stack with no such function)."""
    sleep: Callable[[float], None] = time.sleep
    """Waits that many seconds: a background start's back-off when Step Functions throttles
    it (tests count the waits instead)."""


@dataclass(frozen=True)
class Started:
    selected: int
    results: list[tuple[Lead, EntryResult]]

    @property
    def entered(self) -> int:
        """Leads this start entered (not those an earlier run of the same request had)."""
        return sum(1 for _, result in self.results if result.entered_now)

    @property
    def already_in(self) -> int:
        """Leads an earlier run of the same request had entered: their execution is named
        again, nothing new starts."""
        return sum(1 for _, result in self.results if result.already_in)

    @property
    def not_entered(self) -> int:
        return len(self.results) - self.entered - self.already_in


def find(ports: JourneyCommands, journey_id: str) -> Journey:
    journey = ports.journeys.get_journey(journey_id)
    if journey is None:
        known = ", ".join(j.journey_id for j in ports.journeys.journeys()) or "none"
        raise NotFound(f"no journey {journey_id!r} (known: {known})")
    return journey


def listing(ports: JourneyCommands, actor: Actor) -> tuple[bool, list[Journey]]:
    """Whether the emergency stop holds every journey, and the journeys."""
    with recorded(ports.audit, ports.clock, actor, "journeys.list", "journeys"):
        return ports.journeys.account_paused(), ports.journeys.journeys()


def show(ports: JourneyCommands, actor: Actor, journey_id: str) -> Journey:
    with recorded(ports.audit, ports.clock, actor, "journeys.list", f"journey:{journey_id}"):
        return find(ports, journey_id)


def status(ports: JourneyCommands, actor: Actor, journey_id: str | None) -> dict[str, Any]:
    """Each journey's status, its parked leads by step, the leads waiting at each wait node,
    and its running executions (None where the journey has no state machine here), exact up to
    RUNNING_COUNTED and past it that many with ``running_at_least``: one Step Functions request
    a journey, where counting them all took one per 100 leads."""
    allowed(ports.audit, ports.clock, actor, "journeys.list", "journeys")
    store = ports.journeys
    journeys = [find(ports, journey_id)] if journey_id else store.journeys()
    now = ports.clock.now()
    stopped_at = store.account_stopped_at()

    def one(journey: Journey) -> dict[str, Any]:
        at_step = parked_by_step(store.parked(journey.journey_id))  # one read per journey
        held = steps.held_resume(journey, stopped_at)
        running = ports.running(journey)
        return {
            "journey": journey.journey_id,
            "status": journey.status,
            "paused_at": journey.paused_at,
            "resume_policy": journey.resume.kind,
            "resume_after_stop": None if held is None else held.kind,
            "parked": sum(at_step.values()),
            "parked_at_step": at_step,
            "waiting_at_node": store.waiting_by_node(journey.journey_id, now),
            "running": None if running is None else running.count,
            "running_at_least": running is not None and running.at_least,
        }

    return {"emergency_stop": stopped_at is not None, "journeys": [one(j) for j in journeys]}


MAX_INPUT_BYTES = 4096
"""An entry's input as JSON: a few dates and names (``seminar_at``), far below Step Functions'
256 KB execution input."""
INPUT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
"""As a send's ``deadline_input_field`` may name it."""
RESERVED_INPUT = RESERVED_SLOTS | set(ENTRY_KEYS) | {"journey_version", "trigger"}
"""What entry or the journey's own states write into the execution's input."""


def declared_inputs(definition: JourneyDefinition | Mapping[str, Any] | None) -> list[str]:
    """The input fields a journey's definition reads: each send's deadline (``seminar_at``),
    in the order of the nodes."""
    if definition is None:
        return []
    if not isinstance(definition, JourneyDefinition):
        try:
            definition = JourneyDefinition.model_validate(definition)
        except ValidationError:
            return []
    found = (n.deadline_input_field for n in definition.nodes if isinstance(n, Send))
    return list(dict.fromkeys(name for name in found if name))


def entry_input(value: object, declared: Sequence[str] = ()) -> dict[str, Any]:
    """What a manual entry adds to the execution's input (the CLI's ``--input``, the admin
    API's ``input``): an object of lower-case names, none the journey writes itself, at most
    MAX_INPUT_BYTES as JSON; a field the journey declares (a mail's deadline) must be a
    date-time with its offset. ValidationFailed, naming each field, otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationFailed([FieldError("input", "must be an object of named values")])
    problems = []
    for name, item in value.items():
        where = f"input.{name}"
        if not isinstance(name, str) or not INPUT_NAME.match(name):
            problems.append(
                FieldError(where, "a name is lower-case letters, digits and _, from a letter")
            )
        elif name in RESERVED_INPUT:
            problems.append(FieldError(where, f"{name!r} is written by the journey itself"))
        elif name in declared:
            try:
                client_instant(item)
            except ValueError as error:
                problems.append(FieldError(where, str(error)))
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        problems.append(
            FieldError("input", f"takes {size} bytes as JSON, more than {MAX_INPUT_BYTES}")
        )
    if problems:
        raise ValidationFailed(problems)
    return dict(value)


def _entry_graph(ports: JourneyCommands, journey: Journey) -> StoredGraph | None:
    """The graph new entries run: the live version's, else the shipped one."""
    live = journey.published.version if journey.published else None
    which = "shipped" if live is None else published_graph_key(live)
    return ports.journeys.graph(journey.journey_id, which)


def start_input(ports: JourneyCommands, journey: Journey) -> list[str]:
    """The input fields a start asks for: those the live version's mails read as deadlines (a
    draft's may differ; an entry runs the live version, and is checked against it)."""
    graph = _entry_graph(ports, journey)
    return declared_inputs(graph.definition if graph else None)


ANSWERED_ONLY = frozenset({"start_input"})
"""What a journey's answer (:func:`answer`) carries beyond its record: a save of the record
reads it not, so what ``journeys show`` printed loads back with ``journeys save``."""


def answer(ports: JourneyCommands, journey: Journey) -> dict[str, Any]:
    """A journey as GET /admin/journeys/{journey} and ``journeys show`` give it out: its
    record, and the fields a start's ``input`` must give as date-times."""
    return {**journey.model_dump(mode="json"), "start_input": start_input(ports, journey)}


def record_of(answered: dict[str, Any]) -> dict[str, Any]:
    """A journey's record out of what :func:`answer` gave (or the bare record): its answered
    fields dropped unread; any other field the record has not is refused when validated."""
    return {name: value for name, value in answered.items() if name not in ANSWERED_ONLY}


STARTABLE = ("active", "paused", "draft")
"""The statuses a journey is started by hand in (a paused one holds its leads at its gate; an
archived one enters nobody)."""


def _checked_start(
    ports: JourneyCommands,
    journey: Journey,
    lead_email: str | None,
    segment: str | None,
    extra: object,
) -> tuple[dict[str, Any], Segment | None]:
    """What a start asks, checked the same way wherever it runs: the execution's input, and
    the segment's filter (None: the one lead named). ValidationFailed or NotFound otherwise."""
    if journey.status not in STARTABLE:
        raise ValidationFailed([FieldError("journey", f"{journey.journey_id} is {journey.status}")])
    checked = entry_input(extra, start_input(ports, journey))
    # A lead given is a lead asked for, even empty: read as "none", an empty address beside a
    # segment would run the segment where only a lead was to run (in the request, 29 s)
    if lead_email is not None and not lead_email.strip():
        raise ValidationFailed(
            [FieldError("lead", "is empty: give the lead's address, or leave it out")]
        )
    if lead_email is not None and segment:
        # Either would be taken silently for the other: say which was meant
        raise ValidationFailed([FieldError("segment", "give a lead or a segment, not both")])
    if names_a_segment(lead_email, segment) and segment:  # an empty one names none: below
        return checked, _segment(ports, segment)
    if lead_email is not None:
        return checked, None
    raise ValidationFailed([FieldError("lead", "name a lead or a segment")])


def names_a_segment(lead_email: str | None, segment: str | None) -> bool:
    """Whether a start is a segment's: a segment named and no lead. A lead given - even empty,
    or beside a segment, both refused by _checked_start - makes it a lead's, never read as
    "none": the segment would then run where only a lead was to. The one rule for which a
    start is, in the call (_checked_start) and in where the admin API runs it
    (start_or_queue: a segment's in the background)."""
    return segment is not None and lead_email is None


def _enter(
    ports: JourneyCommands,
    journey: Journey,
    leads: Iterable[Lead],
    key: str,
    extra: dict[str, Any],
    by: str | None = None,
) -> list[tuple[Lead, EntryResult]]:
    """Enter leads by hand: one name per lead, journey and request key (``manual:<key>``),
    wherever the start runs - in the request, or in the background (``by``: its start id)."""
    return enter_leads(
        journey,
        leads,
        cause=f"manual:{key}",
        trigger="manual",
        extra=extra,
        by=by,
        state_machine_arn=ports.entry_arn(journey),
        store=ports.journeys,
        executions=ports.executions,
        clock=ports.clock,
    )


def default_request_key(ports: JourneyCommands, now: datetime) -> str:
    """A start's request key when none is given: the team's date (``2026-12-07``), so that
    the same start asked twice in one working day enters nobody twice, and the next day's is a
    new request. The UTC date would split a Japanese morning at 09:00 and join the evening
    to the next morning."""
    return now.astimezone(ports.time_zone).date().isoformat()


def start(
    ports: JourneyCommands,
    actor: Actor,
    journey_id: str,
    *,
    lead_email: str | None = None,
    segment: str | None = None,
    request_key: str | None = None,
    extra: object = None,
) -> Started:
    """Manual entry: one lead, or every lead a simple filter selects, inside this call (the
    CLI; the admin API starts a segment in the background, start_or_queue). One name per lead,
    journey and request: the same request twice enters nobody twice (the key defaults to the
    team's date, ``default_request_key``: a daily re-run is a new request). ``extra``: the
    execution's input beyond the lead's, as ``entry_input`` takes it (ValidationFailed
    otherwise)."""
    journey = find(ports, journey_id)
    target = f"journey:{journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.start", target) as log:
        extra, chosen = _checked_start(ports, journey, lead_email, segment, extra)
        now = ports.clock.now()
        if chosen is None:
            assert lead_email is not None
            selected = [lead_by_email(ports.leads, lead_email)]
        else:
            selected = list(segments_selected(chosen, ports.leads, ports.facts(), now))
        key = request_key or default_request_key(ports, now)
        started = Started(len(selected), _enter(ports, journey, selected, key, extra))
        who = lead_email or f"segment {segment}"
        already = f", {started.already_in} already in" if started.already_in else ""
        log.detail = (
            f"{who}: {started.entered} entered{already} of {started.selected} (request {key})"
        )
    return started


def start_or_queue(
    ports: JourneyCommands,
    actor: Actor,
    journey_id: str,
    *,
    lead_email: str | None = None,
    segment: str | None = None,
    request_key: str | None = None,
    extra: object = None,
) -> Started | StartJob:
    """A start as the admin API (and so the console) runs it: a segment's - tens of thousands
    of leads, more than a request's 29 s - is queued (``start_in_background``: the job), a
    lead's entered in this call (``start``: what it entered). Which one is names_a_segment's.
    The CLI calls ``start``: a terminal waits for a segment's leads (README, journeys start)."""
    if names_a_segment(lead_email, segment):
        assert segment is not None  # names_a_segment: a segment named
        return start_in_background(
            ports, actor, journey_id, segment=segment, request_key=request_key, extra=extra
        )
    return start(
        ports,
        actor,
        journey_id,
        lead_email=lead_email,
        segment=segment,
        request_key=request_key,
        extra=extra,
    )


START_ID = re.compile(r"^start_[0-9A-Z]{26}$")
START_RESERVE_SECONDS = 30.0
"""A background start stops this long before its function's time runs out, records where it
got to and goes on in a new invocation (enter_segments has 300 s: a Scan page and a lead's
entry take far less)."""
ENTRY_BACKOFF_SECONDS = (1.0, 4.0, 16.0)
"""A background start's waits before asking Step Functions again for an entry it throttled
(beyond the SDK's own retries): 21 s at most, within START_RESERVE_SECONDS."""
CHECKPOINT_LEADS = 100
"""A background start stores its progress at least this often (and after every page): a run
that dies without a word is repeated from there, its leads named again, not entered twice."""


def start_in_background(
    ports: JourneyCommands,
    actor: Actor,
    journey_id: str,
    *,
    segment: str,
    request_key: str | None = None,
    extra: object = None,
) -> StartJob:
    """Start a journey for a segment in the background, as ``start`` would in a call (checked,
    audited and named the same way): the job is recorded, and enter_segments runs it
    (``run_start``). Answers the queued job; ``start_progress`` reads how far it is."""
    journey = find(ports, journey_id)
    target = f"journey:{journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.start", target) as log:
        extra, chosen = _checked_start(ports, journey, None, segment, extra)
        assert chosen is not None
        if ports.start_in_background is None:
            raise RuntimeError("no function runs starts in the background on this stack")
        now = ports.clock.now()
        at = isoformat(now)
        key = request_key or default_request_key(ports, now)
        queued = StartJob(
            start_id=new_id("start", now),
            journey_id=journey_id,
            segment=segment,
            filter=str(chosen),
            request_key=key,
            extra=extra,
            by=actor.email or actor.user_id,
            at=at,
            updated_at=at,
        )
        job = ports.journeys.save_start_job(queued)
        try:
            ports.start_in_background(journey_id, job.start_id)
        except Exception as error:
            # Not started: said on the job, which is done with (a new start runs it again)
            with contextlib.suppress(Exception):
                ports.journeys.save_start_job(
                    replace(
                        job, status="failed", error=f"not started: {error}"[:600], finished_at=at
                    )
                )
            raise
        log.after = {"start_id": job.start_id, "status": job.status}
        log.detail = f"segment {segment}: queued as {job.start_id} (request {key})"
    return job


def start_progress(
    ports: JourneyCommands, actor: Actor, journey_id: str, start_id: str
) -> StartJob:
    """A background start and how far it is."""
    target = f"journey:{journey_id}"
    allowed(ports.audit, ports.clock, actor, "journeys.list", target)
    # Only what new_id makes is looked up (a key too long for DynamoDB would fail the read)
    job = ports.journeys.start_job(journey_id, start_id) if START_ID.match(start_id) else None
    if job is None or job.expired(ports.clock.now()):
        raise NotFound(f"no start {start_id!r} of journey {journey_id!r}")
    return job


def recent_starts(
    ports: JourneyCommands, actor: Actor, journey_id: str, *, before: str | None, limit: int
) -> tuple[list[StartJob], bool]:
    """A journey's starts for a segment, newest first (the console shows them after the
    marketer has left the page they were started on): those asked before the start
    ``before`` when given, at most ``limit``; and whether there are more."""
    allowed(ports.audit, ports.clock, actor, "journeys.list", f"journey:{journey_id}")
    find(ports, journey_id)
    if before is not None and not START_ID.match(before):
        raise ValidationFailed([FieldError("before", "give the start_id of a start listed")])
    # Jobs past their time (StartJob.expired) and not yet deleted are left out: the store is
    # read on until one more than the page is found, or no more is there - so a page is short
    # only at the end, and "more" never points at only expired jobs
    now = ports.clock.now()
    live: list[StartJob] = []
    while True:
        page, more = ports.journeys.start_jobs(journey_id, before, limit + 1 - len(live))
        live += [job for job in page if not job.expired(now)]
        if not more or len(live) > limit:
            return live[:limit], len(live) > limit
        before = page[-1].start_id


def run_start(
    ports: JourneyCommands,
    journey_id: str,
    start_id: str,
    time_left: Callable[[], float],
) -> StartJob:
    """Run a background start from where it got to (the stack's own work: no actor): select
    the leads by the job's filter as of when it was asked, enter each as ``start`` would, and
    keep the counts on the job as it goes. When ``time_left()`` (seconds) falls below
    START_RESERVE_SECONDS it records where it is and hands the rest to a new invocation. A
    job done is left as it is. A second run of one still going (the invocation delivered
    twice) backs off before it enters anyone: the first run's lease (StartJob.lease), taken
    by a write conditional on the revision read, says it is held until its function's time
    is out; two runs reading the job at once both write over the same revision, and one of
    them is refused (ConcurrentUpdate) - before its first entry, too."""
    job = ports.journeys.start_job(journey_id, start_id)
    if job is None or job.expired(ports.clock.now()):
        raise NotFound(f"no start {start_id!r} of journey {journey_id!r}")
    if job.done:
        return job
    try:
        return _run(ports, job, time_left)
    except ConcurrentUpdate:
        # Another run of this job stored it meanwhile: that one goes on, this one stops
        current = ports.journeys.start_job(journey_id, start_id)
        assert current is not None
        return current
    except Exception as error:
        # Lambda runs the event again (twice): each failure is said on the job, and the last
        # one fails it - else it would read as running for ever, and the console follow it
        _record_failure(ports, journey_id, start_id, error)
        raise


def _record_failure(
    ports: JourneyCommands, journey_id: str, start_id: str, error: Exception
) -> None:
    """The job as stored, with this run's unexpected error and one more failed attempt;
    ``failed`` at MAX_ATTEMPTS. Best effort: where even this write fails (the table throttled),
    the job goes stale (StartJob.stale) and the console says so."""
    with contextlib.suppress(Exception):
        job = ports.journeys.start_job(journey_id, start_id)
        if job is None or job.done:
            return
        attempts = job.failed_attempts + 1
        at = isoformat(ports.clock.now())
        last = attempts >= MAX_ATTEMPTS
        ports.journeys.save_start_job(
            replace(
                job,
                failed_attempts=attempts,
                # Lambda's next attempt takes it up at once
                lease=None,
                leased_until=None,
                error=f"run {attempts} of {MAX_ATTEMPTS} failed: {error}"[:MAX_ERROR],
                status="failed" if last else job.status,
                finished_at=at if last else None,
                updated_at=at,
            )
        )


def _run(ports: JourneyCommands, job: StartJob, time_left: Callable[[], float]) -> StartJob:
    store = ports.journeys

    def save(job: StartJob, **changes: Any) -> StartJob:
        changed = replace(job, **changes, updated_at=isoformat(ports.clock.now()))
        return store.save_start_job(changed)

    def stop(job: StartJob, error: str) -> StartJob:
        at = isoformat(ports.clock.now())
        return save(job, status="failed", error=error[:MAX_ERROR], finished_at=at)

    now = ports.clock.now()
    if job.leased_to_another(now):
        # A second delivery of the invocation while the first runs: that one goes on. Backing
        # off here, before any entry, keeps the counts whole (else whichever run wrote last
        # would stop, and the leads it entered read as already in).
        return job
    until = now + timedelta(seconds=time_left())
    job = save(
        job,
        status="running",
        runs=job.runs + 1,
        lease=new_id("run", now),
        leased_until=isoformat(until),
    )
    journey = store.get_journey(job.journey_id)
    if closed := _closed(job.journey_id, journey):
        return stop(job, f"{closed} before its leads were entered")
    assert journey is not None

    def checkpoint(job: StartJob, **changes: Any) -> tuple[StartJob, Journey | None]:
        """The job stored, and the journey read again: archived (or deleted) meanwhile, it
        takes nobody more - as it takes nobody from any other trigger."""
        return save(job, **changes), store.get_journey(job.journey_id)

    segment = Segment.parse(job.filter)
    facts, now = ports.facts(), parse_instant(job.at)
    done = set(job.page_done)
    unsaved = 0
    try:
        for page, after in candidate_pages(segment, ports.leads, facts, job.cursor):
            for lead in page:
                if lead.lead_id in done:
                    continue  # an earlier run of this job did this one
                if time_left() < START_RESERVE_SECONDS:
                    # The new invocation has Lambda's attempts of its own, and the lease
                    job = save(
                        job,
                        page_done=tuple(sorted(done)),
                        failed_attempts=0,
                        lease=None,
                        leased_until=None,
                    )
                    if ports.start_in_background is None:
                        raise RuntimeError("no function runs starts in the background")
                    ports.start_in_background(job.journey_id, job.start_id)
                    return job
                if segment.selects(lead, now, facts):
                    job = _entered(ports, journey, job, lead)
                done.add(lead.lead_id)
                unsaved += 1
                if unsaved >= CHECKPOINT_LEADS:
                    (job, read), unsaved = checkpoint(job, page_done=tuple(sorted(done))), 0
                    if closed := _closed(job.journey_id, read):
                        return stop(job, f"{closed} while its leads were entered: {STOPPED}")
                    assert read is not None
                    journey = read
            if after is None:
                break  # the last page: done, in the same write as its counts
            (job, read), done, unsaved = checkpoint(job, cursor=after, page_done=()), set(), 0
            if closed := _closed(job.journey_id, read):
                return stop(job, f"{closed} while its leads were entered: {STOPPED}")
            assert read is not None
            journey = read
    except MissingSegment as error:
        return stop(job, error.message)
    # The cursor stays the last page's: stored with "done" in one write, so that no run
    # retried in between reads a cursor of None - which is also "from the first lead"
    at = isoformat(ports.clock.now())
    return save(job, status="done", page_done=(), finished_at=at)


STOPPED = "the leads counted entered, the rest not"


def _closed(journey_id: str, journey: Journey | None) -> str | None:
    """Why the journey takes no entries from a start (None: it does) - as _checked_start
    asks of it when the start is asked."""
    if journey is None:
        return f"journey {journey_id} was deleted"
    if journey.status not in STARTABLE:
        return f"journey {journey_id} is {journey.status}"
    return None


def _entered(ports: JourneyCommands, journey: Journey, job: StartJob, lead: Lead) -> StartJob:
    """The job, counting one more lead selected and what entering it did. Throttled, the entry
    is asked again after ENTRY_BACKOFF_SECONDS each; a lead whose entry still fails is counted
    and the rest go on (its claim released: the same start again, or another, enters it)."""
    for backoff in (*ENTRY_BACKOFF_SECONDS, None):
        try:
            ((_, result),) = _enter(
                ports, journey, [lead], job.request_key, job.extra, job.start_id
            )
        except Throttled as error:
            if backoff is None:
                return job.with_failure(f"{lead.email}: {error}")
            ports.sleep(backoff)
        except Exception as error:  # one lead's failure must not stop 20,000 others
            return job.with_failure(f"{lead.email}: {error}")
        else:
            # A lead this job entered in an earlier run of it (retried after its last
            # checkpoint) is its own entry, not one an earlier start had
            earlier = result.already_in and result.entered_by != job.start_id
            return job.counted(result.reason, entered=result.entered, repeated=earlier)
    raise AssertionError("unreachable: the last attempt returns")


def _segment(ports: JourneyCommands, text: str) -> Segment:
    """A saved segment's filter when ``text`` names one, else ``text`` read as a filter."""
    if SEGMENT_NAME.match(text):
        saved = ports.saved_segment(text)
        if saved is None:
            raise NotFound(f"no segment {text!r}: give a saved segment's name, or a filter")
        return saved.segment
    return reading_saved(text, _segment_exists(ports), "segment", import_exists=ports.import_exists)


def _segment_exists(ports: JourneyCommands) -> Callable[[str], bool]:
    return lambda name: ports.saved_segment(name) is not None


def _check_settings(ports: JourneyCommands, settings: JourneySettings | Journey) -> None:
    """ValidationFailed on triggers and exits that would save but never work, the same for a
    journey's settings saved from the console (configure) and its whole record saved from a
    file (save, ``tsunagu journeys save``)."""
    _check_triggers(ports, settings.triggers)
    problems = settings_problems(settings)
    if problems:
        raise ValidationFailed(problems)


def _check_triggers(ports: JourneyCommands, triggers: Sequence[Trigger]) -> None:
    """ValidationFailed, on each segment trigger whose filter a segment's save would refuse:
    a value no lead can hold, a segment that does not exist. The triggers are being written
    now (Trigger itself reads a stored filter as stored)."""
    exists = _segment_exists(ports)
    problems = []
    for index, trigger in enumerate(triggers):
        if trigger.segment is None:
            continue
        try:
            reading_saved(
                trigger.segment,
                exists,
                f"triggers.{index}.segment",
                import_exists=ports.import_exists,
            )
        except ValidationFailed as error:
            problems += error.errors
    if problems:
        raise ValidationFailed(problems)


def _branch_problems(ports: JourneyCommands, definition: Mapping[str, Any]) -> list[FieldError]:
    """Each branch case a segment's save would refuse, on its node (as the compiler says what
    else is wrong with a case): a value no lead can hold, a segment that does not exist. The
    compiler reads a case as stored (an older version still compiles and rolls back); a graph
    being saved or published is checked as written now, and only the store knows which
    segments there are."""
    exists = _segment_exists(ports)
    problems = []
    for node, outcome, condition in branch_cases(definition):
        try:
            Segment.parse(condition)
        except ValueError:
            continue  # the compiler says what is wrong with it
        try:
            segment = Segment.parse(condition, new=True)
            problem = missing_segment(segment, exists) or missing_import(
                segment, ports.import_exists
            )
        except ValueError as error:
            problem = str(error)
        if problem:
            problems.append(FieldError(node, f"case {outcome!r}: {problem}"))
    return problems


Publisher = Callable[[dict[str, Any]], dict[str, Any]]
"""The publish_journey function, asked ``{"action": ...}``: its answer when ``ok``; a refusal
is raised by the caller's side of the port (it knows how to say what to fix)."""


def save(ports: JourneyCommands, actor: Actor, journey: Journey, *, replace: bool) -> bool:
    """Create or (when asked) replace a journey record: triggers, re-entry, exits, resume
    policy (and, when it creates one, status). A record replaced keeps its status and pause
    (only set_status, pause and resume change them) and its publication (only publish and
    rollback change the live version). True when it replaced one; AlreadyExists otherwise."""
    key = journey.journey_id
    with recorded(ports.audit, ports.clock, actor, "journeys.save", f"journey:{key}") as log:
        _check_settings(ports, journey)

        def replaced(existing: Journey) -> Journey:
            if existing is not journey and not replace:
                raise AlreadyExists(f"journey {key!r} exists: replace it to change it")
            if existing is journey:
                # Created now: held to the id rule every definition is (a record stored
                # before it is read, and replaced, as it is)
                try:
                    unreserved_journey_id(key)
                except ValueError as reserved:
                    raise ValidationFailed([FieldError("journey_id", str(reserved))]) from None
            return keep_publication(journey, None if existing is journey else existing)

        # Over the record as stored (a pause or a publish landing meanwhile is kept)
        read, stored = rewrite(ports.journeys, key, replaced, _now(ports), new=journey)
        existing = None if read is journey else read
        when = {"updated_at", "revision"}
        before = existing.model_dump(mode="json", exclude=when) if existing else {}
        log.changed(before, stored.model_dump(mode="json", exclude=when))
        log.detail = "replaced" if existing is not None else "created"
    return existing is not None


def configure(
    ports: JourneyCommands,
    actor: Actor,
    journey_id: str,
    settings: JourneySettings,
    *,
    revision: int | None = None,
) -> Journey:
    """Give a journey its triggers, re-entry, exits, topic and resume policy (a journey first
    published from the console is entered by hand until it has triggers). Its graph, status
    and publication stay as they are. ``revision``: the record's as the settings were read
    (Journey.revision); ConcurrentUpdate if it was stored since - the settings are saved whole,
    so two people editing them never lose an edit silently (None: over the record as it is)."""
    with recorded(ports.audit, ports.clock, actor, "journeys.save", f"journey:{journey_id}") as log:
        existing = find(ports, journey_id)
        if revision is not None and revision != existing.revision:
            raise ConcurrentUpdate(
                f"journey {journey_id!r} was changed by someone else (its settings saved, or it"
                " was paused, resumed or published) after it was opened: reload it (your save"
                " was not kept)"
            )
        _check_settings(ports, settings)
        asked = {name: getattr(settings, name) for name in JourneySettings.model_fields}
        # Only over the record as read - the store writes it only if its revision is still the
        # one read (which is ``revision`` when given): a save, pause or publish landing
        # meanwhile is not undone (ConcurrentUpdate: the settings were chosen looking at the
        # record as it was)
        stored = ports.journeys.put_journey(
            existing.model_copy(update=asked), isoformat(ports.clock.now())
        )
        names = set(JourneySettings.model_fields)
        log.changed(
            existing.model_dump(mode="json", include=names),
            stored.model_dump(mode="json", include=names),
        )
    return stored


def install(
    ports: JourneyCommands,
    templates: Templates,
    actor: Actor,
    *,
    site_url: str,
    sender: str,
    graphs: Mapping[str, dict[str, Any]] | None = None,
) -> list[str]:
    """The shipped journeys, their graphs and their mails, where missing (nothing present is
    changed)."""
    with recorded(ports.audit, ports.clock, actor, "journeys.save", "journeys:shipped") as log:
        added = install_shipped(
            journeys=ports.journeys,
            templates=templates,
            clock=ports.clock,
            site_url=site_url,
            sender=sender,
            graphs=graphs,
        )
        log.changed({}, {"installed": added} if added else {})
    return added


def forecast_for_lead(
    ports: JourneyCommands,
    actor: Actor,
    definition: JourneyDefinition,
    lead: Lead,
    *,
    start: datetime | None,
    days: int,
    assumptions: Mapping[str, float],
    rules: SimulationRules,
    seed: int = 0,
) -> Forecast:
    """The dry run's second form: the lead's next ``days`` days in ``definition`` from
    ``start`` (now if None), with its own consent, stage, tags, score and week of sends (the
    frequency cap counts them), and the journey's record as stored. Its branches read the
    facts journey_decide reads (``ports.facts``: consent per topic, events, imports, saved
    segments, the score now). Nothing is sent or stored."""
    allowed(ports.audit, ports.clock, actor, "journeys.list", f"journey:{definition.journey_id}")
    view = ports.journeys.gate_view(definition.journey_id, lead.lead_id)
    begin = start or ports.clock.now()
    return forecast(
        definition,
        lead,
        view.recipient.consent,
        view.sends.within(begin),
        facts=ports.facts(),
        start=begin,
        days=days,
        assumptions=assumptions,
        rules=rules,
        seed=seed,
        journey=view.journey,
    )


# ---------------------------------------------------------------- the graph people edit


@dataclass(frozen=True)
class GraphView:
    graph: StoredGraph
    problems: list[FieldError]
    """What stops it from publishing, each on the node it concerns (``field`` is the node id,
    or ``(journey)``); empty when it would publish."""
    revision: int
    """The journey's draft as read (0: it has none), whichever graph is shown: a save or a
    publish from the editor gives it back (save_draft, publish), and is refused if someone
    saved the draft since."""
    name: str | None = None
    """The journey's name: its graph's, else its record's (a journey shipped with Tsunagu is
    named only there, as the journey list shows it); None for a journey with neither yet."""


def _named(ports: JourneyCommands, graph: StoredGraph) -> str | None:
    named = graph.definition.get("name")
    if isinstance(named, str) and named:
        return named
    record = ports.journeys.get_journey(graph.journey_id)
    return record.name if record else None


def _saved_since(draft: StoredGraph, published: StoredGraph) -> bool:
    """Whether the draft was saved after the version was published from it: by the draft's
    revision the version keeps - a colleague's save landing while it was being published
    (seconds on AWS) is later than the revision published, though earlier than the version's
    time. A version published before versions kept it is compared by time; published first
    then: a draft published at the same instant is that version."""
    if published.draft_revision is not None:
        return draft.revision > published.draft_revision
    return draft.updated_at > published.updated_at


def graph(ports: JourneyCommands, actor: Actor, journey_id: str) -> GraphView:
    """The journey's graph as people should see it: the draft when one was saved after the
    latest publication (work not published yet), else the live version (the one new entries
    take: after a rollback, not the latest), else the shipped one."""
    allowed(ports.audit, ports.clock, actor, "journeys.list", f"journey:{journey_id}")
    store = ports.journeys
    record = store.get_journey(journey_id)
    live = record.published.version if record and record.published else None
    draft = store.graph(journey_id, "draft")
    published = None if live is None else store.graph(journey_id, published_graph_key(live))
    # A draft published since is that version, or an older one a rollback left behind: shown,
    # it would read as unpublished work and publish the rolled-back version again.
    latest = store.published_graph(journey_id)
    unpublished = draft is not None and (latest is None or _saved_since(draft, latest))
    found = (draft if unpublished else None) or published or latest
    found = found or store.graph(journey_id, "shipped")
    if found is None:
        raise NotFound(f"no graph of journey {journey_id!r} here")
    revision = draft.revision if draft is not None else 0
    return GraphView(found, graph_problems(ports, found.definition), revision, _named(ports, found))


def save_draft(
    ports: JourneyCommands,
    actor: Actor,
    definition: Mapping[str, Any],
    *,
    revision: int | None = None,
) -> GraphView:
    """Keep ``definition`` as the journey's draft: a draft may still be incomplete (its
    problems come back, node by node), but it must be a journey definition. ``revision``: the
    draft's as the editor read it (GraphView.revision); ConcurrentUpdate if someone saved the
    draft since - two people editing one draft never lose an edit silently (None: over
    whichever draft is there)."""
    parsed = parse_graph(definition)
    target = f"journey:{parsed.journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.save", target) as log:
        stored = _keep_draft(ports, actor, parsed, revision)
        problems = graph_problems(ports, stored.definition)
        log.detail = f"draft saved, {len(problems)} problem(s) before it can publish"
    return GraphView(stored, problems, stored.revision, _named(ports, stored))


def _keep_draft(
    ports: JourneyCommands, actor: Actor, parsed: JourneyDefinition, revision: int | None
) -> StoredGraph:
    """The definition stored as the journey's draft over ``revision`` of it (ConcurrentUpdate,
    nothing written, if someone saved the draft since)."""
    stored = StoredGraph(
        journey_id=parsed.journey_id,
        which="draft",
        definition=parsed.model_dump(mode="json", by_alias=True, exclude_none=True),
        by=_who(actor),
        updated_at=isoformat(ports.clock.now()),
    )
    return ports.journeys.save_draft(stored, revision)


def dry_run(
    ports: JourneyCommands,
    actor: Actor,
    definition: Mapping[str, Any],
    *,
    leads: int,
    start: datetime | None,
    assumptions: Mapping[str, float],
    rules: SimulationRules,
) -> Simulation:
    """``leads`` synthetic leads through ``definition`` from ``start`` (now if None): how many
    reach each node, and when its mails would go. Nothing is sent or stored."""
    parsed = parse_graph(definition)
    allowed(ports.audit, ports.clock, actor, "journeys.list", f"journey:{parsed.journey_id}")
    return simulate(
        parsed,
        start=start or ports.clock.now(),
        leads=leads,
        assumptions=assumptions,
        rules=rules,
        journey=ports.journeys.get_journey(parsed.journey_id),
    )


def parse_graph(definition: Mapping[str, Any]) -> JourneyDefinition:
    """The definition, or ValidationFailed with each problem on the node it concerns."""
    try:
        return JourneyDefinition.model_validate(definition)
    except ValidationError as error:
        nodes = definition.get("nodes")
        problems = []
        for found in error.errors():
            where: list[Any] = list(found["loc"])
            field = "(journey)"
            if len(where) >= 2 and where[0] == "nodes" and isinstance(where[1], int):
                node = nodes[where[1]] if isinstance(nodes, list) and where[1] < len(nodes) else {}
                field = (
                    str(node.get("id"))
                    if isinstance(node, dict) and node.get("id")
                    else (f"nodes[{where[1]}]")
                )
                where = where[3:] if len(where) > 2 and isinstance(where[2], str) else where[2:]
            detail = ".".join(str(part) for part in where)
            problems.append(
                FieldError(field, f"{detail}: {found['msg']}" if detail else found["msg"])
            )
        raise ValidationFailed(problems) from None


def graph_problems(ports: JourneyCommands, definition: Mapping[str, Any]) -> list[FieldError]:
    """What stops the graph from publishing, each on the node it concerns: what the compiler
    finds (against the mail templates there are, as publish_journey checks), and branches
    reading a segment that does not exist. The editor shows these; publish refuses on them."""
    try:
        validate(parse_graph(definition), ports.templates())
    except ValidationFailed as error:
        problems = list(error.errors)
    else:
        problems = []
    return problems + _branch_problems(ports, definition)


def publish(
    ports: JourneyCommands,
    actor: Actor,
    definition: Mapping[str, Any],
    note: str | None,
    publisher: Publisher,
    *,
    revision: int | None = None,
) -> dict[str, Any]:
    """A definition published as a new version, without a deploy; new entries take it.
    ConcurrentUpdate when another publication was recorded while this one was made.

    ``revision``: the draft's as the editor read it (GraphView.revision), when the definition
    is the editor's. It is kept as the draft first, over that revision: ConcurrentUpdate, and
    nothing published, if someone saved the draft since - published, their draft would be older
    than the version and never shown again (``graph``), and the next save would overwrite it.
    The answer then carries the draft's new ``revision``, and so does a refusal the publisher
    makes after the draft was kept (TsunaguError.revision). None (a definition from a file, as
    the CLI publishes): the draft is left as it is."""
    journey_id = str(definition.get("journey_id", ""))
    target = f"journey:{journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.publish", target) as log:
        # What the editor says stops it, stops it: nothing of it goes live then
        if problems := graph_problems(ports, definition):
            raise ValidationFailed(problems)
        kept = None
        if revision is not None:
            # A write conditional on the revision read, not a look at it: a colleague's save
            # landing while this publishes is refused in turn (their revision is now stale)
            kept = _keep_draft(ports, actor, parse_graph(definition), revision)
        draft = kept or ports.journeys.graph(journey_id, "draft")
        live = _live_version(ports, journey_id)
        # The publisher keeps the version's graph (for the editor, and a rollback to show what
        # it was) before it moves the alias: a version is never live without it.
        payload: dict[str, Any] = {
            "action": "publish",
            "definition": dict(definition),
            "by": _who(actor),
            # The version's graph keeps it: a draft saved after it (a colleague's, while this
            # was published) is still shown as work not published
            "draft_revision": draft.revision if draft is not None else 0,
        }
        if note:
            payload["note"] = note
        try:
            answer = publisher(payload)
        except TsunaguError as refusal:
            if kept is not None:
                # The canvas is the draft now, published or not (another publication holding
                # the journey, a check only the publisher makes): the editor goes on from the
                # draft's new revision, or its next save is refused as over a colleague's
                refusal.revision = kept.revision
            raise
        if answer.get("changed"):
            log.changed({"version": live}, {"version": answer["version"]})
            log.detail = note
    return answer if kept is None else {**answer, "revision": kept.revision}


def rollback(
    ports: JourneyCommands,
    actor: Actor,
    journey_id: str,
    version: int | None,
    publisher: Publisher,
) -> dict[str, Any]:
    """New entries take an earlier version (the one before the live one when None)."""
    target = f"journey:{journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.rollback", target) as log:
        find(ports, journey_id)
        live = _live_version(ports, journey_id)
        payload: dict[str, Any] = {"action": "rollback", "journey_id": journey_id}
        if version is not None:
            payload["version"] = version
        answer = publisher(payload)
        log.changed({"version": live}, {"version": answer["version"]})
    return answer


def versions(
    ports: JourneyCommands, actor: Actor, journey_id: str, publisher: Publisher
) -> dict[str, Any]:
    with recorded(ports.audit, ports.clock, actor, "journeys.list", f"journey:{journey_id}"):
        find(ports, journey_id)
        return publisher({"action": "versions", "journey_id": journey_id})


def _live_version(ports: JourneyCommands, journey_id: str) -> int | None:
    journey = ports.journeys.get_journey(journey_id)
    return journey.published.version if journey and journey.published else None


SettableStatus = Literal["draft", "active", "archived"]


def set_status(
    ports: JourneyCommands, actor: Actor, journey_id: str, new_status: SettableStatus
) -> Journey:
    """draft / active / archived (pause and resume hold and release leads: their own use
    cases). An archived journey enters nobody, and its leads leave at their next gate.

    A paused journey may be archived (a disaster, a wrong mail found: ended without its leads
    let go first): the leads held at its gates are released into them, and leave there with no
    mail sent and no step run (steps.release_archived). To draft or active it is resumed first,
    by a policy."""
    find(ports, journey_id)
    target = f"journey:{journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.set_status", target) as log:

        def changed_to(journey: Journey) -> Journey:
            if journey.status == "paused" and new_status != "archived":
                raise ValidationFailed(
                    [FieldError("status", f"{journey_id} is paused: resume it first (by a policy)")]
                )
            return journey.model_copy(update={"status": new_status, "paused_at": None})

        # Decided on the record as stored: a pause landing meanwhile is seen, never undone
        journey, changed = rewrite(ports.journeys, journey_id, changed_to, _now(ports))
        log.changed({"status": journey.status}, {"status": changed.status})
        if changed.status == "archived":
            # After the record says archived: a gate parking meanwhile finds it not paused and
            # goes back to its gate (NotPaused), which ends the lead's time there
            released = steps.release_archived(
                journey_id, store=ports.journeys, executions=ports.executions
            )
            if released:
                log.detail = f"{released} held lead(s) released to leave at their gates"
    return changed


def pause(ports: JourneyCommands, actor: Actor, journey_id: str) -> Journey:
    """Each lead stops at its next mail or step (tag, owner, CRM) until the journey is
    resumed."""
    journey = find(ports, journey_id)
    target = f"journey:{journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.pause", target) as log:
        paused = steps.pause_journey(journey_id, store=ports.journeys, clock=ports.clock)
        log.changed({"status": journey.status}, {"status": paused.status})
    return paused


def resume(
    ports: JourneyCommands, actor: Actor, journey_id: str, policy: ResumePolicy | None
) -> ResumeReport:
    """Release the held leads by ``policy`` (the journey's own when None)."""
    journey = find(ports, journey_id)
    target = f"journey:{journey_id}"
    with recorded(ports.audit, ports.clock, actor, "journeys.resume", target) as log:
        report = steps.resume_journey(
            journey_id,
            policy=policy,
            store=ports.journeys,
            executions=ports.executions,
            clock=ports.clock,
            allowed_at=ports.allowed_at,
        )
        chosen = policy or journey.resume
        log.changed({"status": journey.status}, {"status": "active"})
        if report.held_by_stop is not None:
            log.detail = (
                f"policy {chosen.kind}: held by the emergency stop, released by this policy"
                " when the stop is lifted"
            )
        else:
            log.detail = f"policy {chosen.kind}: {report.released} released " + (
                ", ".join(f"{n} {action}" for action, n in sorted(report.by_action.items()))
                or "(none parked)"
            )
    return report


def stop_all(ports: JourneyCommands, actor: Actor) -> None:
    """The emergency stop: every journey holds its leads at their next mail or step until
    ``resume_all``."""
    with recorded(ports.audit, ports.clock, actor, "journeys.stop_all", "account") as log:
        was = ports.journeys.account_paused()
        steps.stop_all(store=ports.journeys, clock=ports.clock, by=_who(actor))
        log.changed({"emergency_stop": was}, {"emergency_stop": True})


def resume_all(ports: JourneyCommands, actor: Actor) -> dict[str, ResumeReport]:
    """Lift the emergency stop; each journey not paused on its own resumes by its policy."""
    with recorded(ports.audit, ports.clock, actor, "journeys.resume_all", "account") as log:
        was = ports.journeys.account_paused()
        reports = steps.resume_all(
            store=ports.journeys,
            executions=ports.executions,
            clock=ports.clock,
            by=_who(actor),
            allowed_at=ports.allowed_at,
        )
        log.changed({"emergency_stop": was}, {"emergency_stop": False})
        log.detail = ", ".join(f"{j}: {r.released} released" for j, r in reports.items())
    return reports


def _now(ports: JourneyCommands) -> Callable[[], str]:
    return lambda: isoformat(ports.clock.now())


def _who(actor: Actor) -> str:
    return f"{actor.via}:{actor.email or actor.user_id}"
