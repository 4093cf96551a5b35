"""Reports, as people ask for them: a mail's or a journey's figures over a range of days, and a
rebuild of the counters; shared by the CLI (``tsunagu reports``) and the admin API
(``/admin/reports/...``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError as PydanticValidationError

from tsunagu.clock import Clock, isoformat
from tsunagu.commands.access import Actor, Role
from tsunagu.commands.audit import AuditLog, allowed, noted, recorded
from tsunagu.errors import ConcurrentUpdate, FieldError, NotFound, ValidationFailed
from tsunagu.ids import new_id
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.journeys.model import Journey, StoredGraph, published_graph_key
from tsunagu.mail.templates import MailTemplate
from tsunagu.reports import attribution, counters, experiments, figures, funnel
from tsunagu.reports.cost import JourneyCost, journey_cost
from tsunagu.reports.counters import RebuildStore, Rebuilt
from tsunagu.reports.counting import DEPLOYED, CountedDeal, CountedMail, JourneyGoal
from tsunagu.reports.experiments import ExperimentReport
from tsunagu.reports.figures import CounterRows, Report
from tsunagu.reports.funnel import FunnelReport, Grouping
from tsunagu.reports.rebuild_jobs import STOPPED_EXECUTIONS, RebuildJob


class AttributionStore(Protocol):
    def deals_closed(self, first_day: str, last_day: str) -> list[CountedDeal]: ...

    def touches(self, lead_id: str, since: str, until: str) -> list[CountedMail]: ...

    def first_touches(self, lead_ids: Iterable[str]) -> dict[str, tuple[str, str]]: ...


class RebuildJobs(Protocol):
    def rebuild_job(self, rebuild_id: str) -> RebuildJob | None: ...

    def save_rebuild_job(self, job: RebuildJob) -> RebuildJob: ...


class EventsIndex(Protocol):
    def events_indexed_since(self) -> str | None: ...

    def start_events_index(self, since: str) -> str: ...


class ReportStore(CounterRows, RebuildStore, AttributionStore, RebuildJobs, EventsIndex, Protocol):
    """The counters' table, as reports read it and a rebuild replaces it."""


class JourneyGraphs(Protocol):
    def graph(self, journey_id: str, which: str) -> StoredGraph | None: ...

    def published_graph(self, journey_id: str) -> StoredGraph | None: ...

    def get_journey(self, journey_id: str) -> Journey | None: ...


class Templates(Protocol):
    def template(self, template_id: str, version: int | None) -> MailTemplate | None: ...


@dataclass(frozen=True)
class ReportCommands:
    counters: ReportStore
    audit: AuditLog
    clock: Clock
    time_zone: str
    """The account's time zone: a report's days are its days."""
    goals: Callable[[], Mapping[str, JourneyGoal]] = dict
    """Each journey's goal (what a rebuild counts as converted), read when needed."""
    graphs: JourneyGraphs | None = None
    """Each journey version's definition, to price what it did (None: reports without cost),
    and to tell a journey or an experiment that does not exist from one that counted nothing."""
    templates: Templates | None = None
    """To tell a template that does not exist from one that counted nothing."""
    start_rebuild: Callable[[str], object] | None = None
    """Hand a rebuild job (its id) to the state machine that counts its days in the background
    (None: a stack without one, where days a caller cannot count in its time are refused)."""
    rebuild_execution: Callable[[str], str | None] | None = None
    """How the execution of a rebuild job (its id) stands, as Step Functions says (RUNNING,
    ABORTED, ...; None: it has none): a job stopped by hand has no step left to say so."""


def _checked(first: date, last: date) -> None:
    try:
        figures.check_range(first, last)
    except ValueError as problem:
        raise ValidationFailed([FieldError("to", str(problem))]) from None


def mail_report(
    ports: ReportCommands, actor: Actor, template_id: str, first: date, last: date
) -> Report:
    """A mail template's figures per version, from ``first`` to ``last`` (days, inclusive)."""
    allowed(ports.audit, ports.clock, actor, "reports.show", f"mail:{template_id}")
    _checked(first, last)
    report = figures.mail_report(
        template_id, first, last, store=ports.counters, time_zone=ports.time_zone
    )
    if not report.parts and ports.templates and not ports.templates.template(template_id, None):
        raise NotFound(f"no template {template_id!r} (tsunagu templates list)")
    return report


def journey_report(
    ports: ReportCommands, actor: Actor, journey_id: str, first: date, last: date
) -> Report:
    """A journey's figures per version and node, from ``first`` to ``last``, with each
    version's AWS cost at list price."""
    allowed(ports.audit, ports.clock, actor, "reports.show", f"journey:{journey_id}")
    _checked(first, last)
    report = figures.journey_report(
        journey_id, first, last, store=ports.counters, time_zone=ports.time_zone
    )
    if not report.parts:
        _journey_known(ports, journey_id)
    return replace(report, costs=_costs(ports, report))


def _journey_known(ports: ReportCommands, journey_id: str) -> None:
    """NotFound for a journey that never was (a typo), so an empty report means "nothing
    counted in these days", never "no such journey"."""
    if ports.graphs is not None and ports.graphs.get_journey(journey_id) is None:
        raise NotFound(f"no journey {journey_id!r} (tsunagu journeys list)")


def _experiment_known(
    ports: ReportCommands, journey_id: str, node: str, version: int | None
) -> None:
    """NotFound for a node that is no split or holdout of the journey's shipped definition,
    its latest published one, or the version asked for, naming those they have."""
    _journey_known(ports, journey_id)
    if ports.graphs is None:
        return
    graphs = [ports.graphs.graph(journey_id, "shipped"), ports.graphs.published_graph(journey_id)]
    if version is not None and version != DEPLOYED:
        graphs.append(ports.graphs.graph(journey_id, published_graph_key(version)))
    experiments_of = sorted(
        {
            str(n.get("id"))
            for graph in graphs
            if graph is not None
            for n in graph.definition.get("nodes", [])
            if isinstance(n, dict) and n.get("kind") in ("split", "holdout")
        }
    )
    if node not in experiments_of:
        named = ", ".join(experiments_of) if experiments_of else "none"
        raise NotFound(f"{journey_id} has no split or holdout {node!r} (its experiments: {named})")


def _costs(ports: ReportCommands, report: Report) -> dict[int, JourneyCost | None]:
    """Each version's cost, from the definition it was published with (the shipped one for a
    state machine deployed with the stack)."""
    if ports.graphs is None:
        return {}
    costs: dict[int, JourneyCost | None] = {}
    for version in sorted({p.version for p in report.parts}):
        which = "shipped" if version == DEPLOYED else published_graph_key(version)
        graph = ports.graphs.graph(report.subject_id, which)
        try:
            definition = JourneyDefinition.model_validate(graph.definition) if graph else None
            costs[version] = (
                None
                if definition is None
                else journey_cost(definition, report.counts_by_node(version))
            )
        except (PydanticValidationError, ValidationFailed):
            costs[version] = None  # a definition an older Tsunagu stored, no longer valid
    return costs


def experiment_report(
    ports: ReportCommands,
    actor: Actor,
    journey_id: str,
    node: str,
    first: date,
    last: date,
    version: int | None = None,
) -> ExperimentReport:
    """A journey's split: each arm's mails and people's clicks, each arm against the first."""
    allowed(ports.audit, ports.clock, actor, "reports.show", f"journey:{journey_id}#{node}")
    _checked(first, last)
    report = experiments.experiment_report(
        journey_id, node, first, last, store=ports.counters, version=version
    )
    if not report.arms:
        _experiment_known(ports, journey_id, node, version)
    return report


def funnel_report(
    ports: ReportCommands, actor: Actor, first: date, last: date, by: Grouping = "channel"
) -> FunnelReport:
    """The leads created in the days, stage by stage, by first channel or first form."""
    allowed(ports.audit, ports.clock, actor, "reports.show", f"funnel:{by}")
    _checked(first, last)
    return funnel.funnel_report(first, last, store=ports.counters, by=by)


def attribution_report(
    ports: ReportCommands,
    actor: Actor,
    first: date,
    last: date,
    lookback_days: int = attribution.DEFAULT_LOOKBACK_DAYS,
    usd_rates: Mapping[str, Decimal] | None = None,
) -> attribution.Attribution:
    """The deals won in the days, credited to the journeys and mails that touched their leads
    by first-touch, last-touch and linear models, with each journey's ROI."""
    allowed(ports.audit, ports.clock, actor, "reports.show", "attribution")
    _checked(first, last)
    problems = []
    if not 1 <= lookback_days <= attribution.MAX_LOOKBACK_DAYS:
        limit = attribution.MAX_LOOKBACK_DAYS
        problems.append(FieldError("lookback_days", f"from 1 to {limit} days"))
    if problems:
        raise ValidationFailed(problems)
    deals = ports.counters.deals_closed(first.isoformat(), last.isoformat())
    found = attribution.attribute(
        deals,
        ports.counters.touches,
        first_day=first,
        last_day=last,
        lookback_days=lookback_days,
        time_zone=ports.time_zone,
        first_touches=ports.counters.first_touches(d.lead_ids[0] for d in deals if d.lead_ids),
    )
    # A journey's cost over the days its credited touches could come from (at most a report's
    # longest range, ending with the last day).
    since = max(first - timedelta(days=lookback_days), last - timedelta(days=figures.MAX_DAYS - 1))
    costs = {}
    for journey_id in found.journeys:
        report = figures.journey_report(
            journey_id, since, last, store=ports.counters, time_zone=ports.time_zone
        )
        costs[journey_id] = replace(report, costs=_costs(ports, report)).cost_usd
    return replace(found, costs_usd=costs, usd_rates=dict(usd_rates or {}))


def rebuild(
    ports: ReportCommands,
    actor: Actor,
    first: date,
    last: date,
    *,
    max_events: int | None = None,
    background: bool = False,
) -> Rebuilt | RebuildJob:
    """Count the days again from the stored events (after automated activity was re-judged,
    or a batch was set aside), replacing their counters.

    In the call (Rebuilt), unless ``background``, or unless the days hold more than
    ``max_events`` - the most a caller with a deadline (the admin API's 29 s) can count in
    it: then nothing is written in the call, and the days are counted in the background
    instead, a day at a time (a RebuildJob, queued; ``rebuild_progress`` reads how far it is).
    A range within the bound stays in the call on purpose: the person gets the counts at
    once, with nothing to follow, and the bound is found by the same read that counts them.
    On a stack that runs no rebuilds in the background, days over the bound are refused,
    naming the CLI, which has no deadline."""
    target = _rebuild_target(first, last)
    with recorded(ports.audit, ports.clock, actor, "reports.rebuild", target) as log:
        _checked(first, last)
        if background:
            job = _queued(ports, actor, first, last)
            log.after = {"rebuild_id": job.rebuild_id}
            log.detail = f"queued as {job.rebuild_id}: {job.days_total} days, a day at a time"
            return job
        _index_events(ports)
        try:
            done = counters.rebuild(
                first,
                last,
                store=ports.counters,
                time_zone=ZoneInfo(ports.time_zone),
                goals=ports.goals(),
                max_events=max_events,
            )
        except counters.TooManyEvents as error:
            if ports.start_rebuild is None:
                days = f"--from {first.isoformat()} --to {last.isoformat()}"
                message = (
                    f"the days hold {error}: more than can be counted again within the admin"
                    f" API's time; rebuild fewer days, or run `tsunagu reports rebuild {days}`"
                )
                raise ValidationFailed([FieldError("to", message)]) from None
            job = _queued(ports, actor, first, last)
            log.after = {"rebuild_id": job.rebuild_id}
            log.detail = (
                f"the days hold {error}: queued as {job.rebuild_id},"
                f" {job.days_total} days, a day at a time"
            )
            return job
        log.detail = (
            f"{done.events} events read, {done.counted} counted, {done.rows} counter rows"
            f" written, {done.rows_removed} replaced"
        )
    return done


REBUILD_ID = re.compile(r"^rebuild_[0-9A-Z]{26}$")


def _index_events(ports: ReportCommands) -> None:
    """Say from which day the events_by_day index holds every event, if no rebuild has yet:
    the days from then on are read a day at a time by Query (README, "Reports")."""
    if ports.counters.events_indexed_since() is None:
        ports.counters.start_events_index(counters.events_indexed_from(ports.clock.now()))


def _rebuild_target(first: date, last: date) -> str:
    return f"counters:{first.isoformat()}..{last.isoformat()}"


def _queued(ports: ReportCommands, actor: Actor, first: date, last: date) -> RebuildJob:
    """The job stored and handed to the state machine (named by it: started once)."""
    if ports.start_rebuild is None:
        raise RuntimeError("no state machine runs rebuilds in the background on this stack")
    now = ports.clock.now()
    at = isoformat(now)
    job = ports.counters.save_rebuild_job(
        RebuildJob(
            rebuild_id=new_id("rebuild", now),
            first_day=first,
            last_day=last,
            by=actor.email or actor.user_id,
            asked_by={
                "user_id": actor.user_id,
                "role": actor.role.value if actor.role else None,
                "email": actor.email,
                "via": actor.via,
            },
            at=at,
            updated_at=at,
        )
    )
    try:
        ports.start_rebuild(job.rebuild_id)
    except Exception as error:
        # Not started: said on the job, which is done with (a new rebuild runs the days) -
        # unless a step saved it meanwhile: then its execution started after all, and runs
        with suppress(ConcurrentUpdate):
            ports.counters.save_rebuild_job(job.with_failure(f"not started: {error}", at))
        raise
    return job


def rebuild_progress(ports: ReportCommands, actor: Actor, rebuild_id: str) -> RebuildJob:
    """A background rebuild and how far it is (days done of the range's)."""
    allowed(ports.audit, ports.clock, actor, "reports.rebuilds", f"rebuild:{rebuild_id}")
    # Only what new_id makes is looked up (a key too long for DynamoDB would fail the read)
    job = ports.counters.rebuild_job(rebuild_id) if REBUILD_ID.match(rebuild_id) else None
    if job is None:
        raise NotFound(f"no rebuild {rebuild_id!r}")
    return _ended_meanwhile(ports, job)


def _ended_meanwhile(ports: ReportCommands, job: RebuildJob) -> RebuildJob:
    """The job, stopped if its execution ended without a step of its own saying so - stopped
    by hand (StopExecution) or timed out (or failed, if its step recording the failure ran out
    of retries): it would read as running forever. Asked when someone follows it (a read of
    its execution; nothing polls). A step still running when the execution was stopped finds
    the job stopped when it saves its day, and leaves it so (rebuild_next_day)."""
    if job.done or ports.rebuild_execution is None:
        return job
    status = ports.rebuild_execution(job.rebuild_id)
    if status not in STOPPED_EXECUTIONS:
        return job
    return _ended(
        ports,
        job,
        lambda latest: latest.with_stop(status, isoformat(ports.clock.now())),
        lambda ended: f"{ended.rebuild_id} {ended.status} ({ended.summary}): {ended.error}",
    )


END_ATTEMPTS = 5
"""Saves of a job's end over a job saved meanwhile, each time read again: every save between
is a step's that read the job before (one, unless Step Functions retried a step while its
first invocation still ran)."""


def _ended(
    ports: ReportCommands,
    job: RebuildJob,
    end: Callable[[RebuildJob], RebuildJob],
    detail: Callable[[RebuildJob], str],
) -> RebuildJob:
    """The job ended as ``end`` says, over the latest job stored, and its end logged - once:
    a job another writer ended meanwhile (two people following a stopped rebuild at once) is
    answered as that writer stored it, its end already logged."""
    for _ in range(END_ATTEMPTS):
        try:
            ended = ports.counters.save_rebuild_job(end(job))
        except ConcurrentUpdate:
            latest = ports.counters.rebuild_job(job.rebuild_id)
            if latest is None:
                raise NotFound(f"no rebuild {job.rebuild_id!r}") from None
            if latest.done:
                return latest
            job = latest  # a step stored a day meanwhile: ended after it
            continue
        _note_end(ports, ended, detail(ended))
        return ended
    raise ConcurrentUpdate(f"rebuild {job.rebuild_id} kept changing: ask again")


def rebuild_next_day(ports: ReportCommands, rebuild_id: str) -> RebuildJob:
    """A step of a background rebuild (the stack's own work: no actor): count the job's next
    day again and store it as done - in that order, so that a step that fails part-way (and
    is retried, or the job run again) counts the day again from its events and adds it to the
    totals once. A job done is left as it is; its last day logs its end under whoever asked.

    A step whose job was saved by another since it read it - stopped (its execution stopped
    while the step ran, and the stop read by someone following it), or the same day stored by
    a newer invocation of the step - stores nothing and answers the job as stored: the stop
    stands, recorded once, and no day is added twice. Its day's counter rows stay written (the
    day as counted again, which is what a stop leaves a day cut short: old or new)."""
    job = ports.counters.rebuild_job(rebuild_id)
    if job is None:
        raise NotFound(f"no rebuild {rebuild_id!r}")
    day = job.next_day
    if job.done or day is None:
        return job
    if job.status == "queued":
        # Said before the first day is counted (a day of many events takes minutes)
        at = isoformat(ports.clock.now())
        try:
            job = ports.counters.save_rebuild_job(replace(job, status="running", updated_at=at))
        except ConcurrentUpdate:
            return _moved_on(ports, job, day)
    _index_events(ports)
    done = counters.rebuild(
        day,
        day,
        store=ports.counters,
        time_zone=ZoneInfo(ports.time_zone),
        goals=ports.goals(),
        again_until=job.last_day,
    )
    try:
        job = ports.counters.save_rebuild_job(job.with_day(done, isoformat(ports.clock.now())))
    except ConcurrentUpdate:
        return _moved_on(ports, job, day)
    if job.done:
        _note_end(ports, job, f"{job.rebuild_id} done: {job.summary}")
    return job


def _moved_on(ports: ReportCommands, read: RebuildJob, day: date) -> RebuildJob:
    """The job as stored, for a step whose save of ``day`` found it saved since it was read:
    the step ends without error (an error would be retried against the same job, or fail a
    run that went on), said once in the function's log."""
    from tsunagu.observability import logger

    stored = ports.counters.rebuild_job(read.rebuild_id)
    if stored is None:
        raise NotFound(f"no rebuild {read.rebuild_id!r}")
    logger.info(
        "rebuild step not stored: the job was saved meanwhile",
        extra={
            "rebuild_id": read.rebuild_id,
            "day": day.isoformat(),
            "read_revision": read.revision,
            "status": stored.status,
            "days_done": stored.days_done,
            "revision": stored.revision,
        },
    )
    return stored


def rebuild_failed(ports: ReportCommands, rebuild_id: str, error: str) -> RebuildJob:
    """A background rebuild whose step ran out of retries: failed, saying why and how far it
    got (each day before it is counted again; the rest as they were, or the day it failed on
    part-way counted again, never a day with too few), and its end logged."""
    job = ports.counters.rebuild_job(rebuild_id)
    if job is None:
        raise NotFound(f"no rebuild {rebuild_id!r}")
    if job.done:
        return job
    return _ended(
        ports,
        job,
        lambda latest: latest.with_failure(error, isoformat(ports.clock.now())),
        lambda ended: (
            f"{ended.rebuild_id} failed after {ended.days_done} of {ended.days_total} days"
            f" ({ended.summary}): {ended.error}"
        ),
    )


def _note_end(ports: ReportCommands, job: RebuildJob, detail: str) -> None:
    asked = job.asked_by
    actor = Actor(
        user_id=str(asked.get("user_id") or job.by),
        role=Role(asked["role"]) if asked.get("role") else None,
        email=asked.get("email"),
        via="api" if asked.get("via") == "api" else "cli",
    )
    after = {"rebuild_id": job.rebuild_id, "status": job.status, "days_done": job.days_done}
    target = _rebuild_target(job.first_day, job.last_day)
    noted(ports.audit, ports.clock, actor, "reports.rebuild", target, detail, after)
