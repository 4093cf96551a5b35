"""Reports, as people ask for them: a mail's or a journey's figures over a range of days, and a
rebuild of the counters; shared by the CLI (``tsunagu reports``) and the admin API
(``/admin/reports/...``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Protocol
from zoneinfo import ZoneInfo

from tsunagu.clock import Clock
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.reports import counters, experiments, figures, funnel
from tsunagu.reports.counters import RebuildStore, Rebuilt
from tsunagu.reports.counting import JourneyGoal
from tsunagu.reports.experiments import ExperimentReport
from tsunagu.reports.figures import CounterRows, Report
from tsunagu.reports.funnel import FunnelReport, Grouping


class ReportStore(CounterRows, RebuildStore, Protocol):
    """The counters' table, as reports read it and a rebuild replaces it."""


@dataclass(frozen=True)
class ReportCommands:
    counters: ReportStore
    audit: AuditLog
    clock: Clock
    time_zone: str
    """The account's time zone: a report's days are its days."""
    goals: Callable[[], Mapping[str, JourneyGoal]] = dict
    """Each journey's goal (what a rebuild counts as converted), read when needed."""


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
    return figures.mail_report(
        template_id, first, last, store=ports.counters, time_zone=ports.time_zone
    )


def journey_report(
    ports: ReportCommands, actor: Actor, journey_id: str, first: date, last: date
) -> Report:
    """A journey's figures per version and node, from ``first`` to ``last``."""
    allowed(ports.audit, ports.clock, actor, "reports.show", f"journey:{journey_id}")
    _checked(first, last)
    return figures.journey_report(
        journey_id, first, last, store=ports.counters, time_zone=ports.time_zone
    )


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
    return experiments.experiment_report(
        journey_id, node, first, last, store=ports.counters, version=version
    )


def funnel_report(
    ports: ReportCommands, actor: Actor, first: date, last: date, by: Grouping = "channel"
) -> FunnelReport:
    """The leads created in the days, stage by stage, by first channel or first form."""
    allowed(ports.audit, ports.clock, actor, "reports.show", f"funnel:{by}")
    _checked(first, last)
    return funnel.funnel_report(first, last, store=ports.counters, by=by)


def rebuild(ports: ReportCommands, actor: Actor, first: date, last: date) -> Rebuilt:
    """Count the days again from the stored events (after automated activity was re-judged,
    or a batch was set aside), replacing their counters."""
    target = f"counters:{first.isoformat()}..{last.isoformat()}"
    with recorded(ports.audit, ports.clock, actor, "reports.rebuild", target) as log:
        _checked(first, last)
        done = counters.rebuild(
            first,
            last,
            store=ports.counters,
            time_zone=ZoneInfo(ports.time_zone),
            goals=ports.goals(),
        )
        log.detail = (
            f"{done.events} events read, {done.counted} counted, {done.rows} counter rows"
            f" written, {done.rows_removed} replaced"
        )
    return done
