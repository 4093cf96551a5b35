"""The funnel: of the leads created in a range of days, how many reached MQL, SQL, opportunity
and customer, the conversion from each stage to the next, and the median days it took - by the
channel each lead first came by, or by its first form.

A cohort report: a lead counts in the days it was created, whenever it reaches a stage later,
so this month's leads keep filling their row as they progress. A lead counts at a stage the
first time it reaches it, or a later one (the CRM making a lead a customer at once has passed
every stage, each in 0 days). Days between stages are counted in whole days, up to 400, so a
median is read from their counts without keeping each lead.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from tsunagu.reports.counting import FUNNEL_STAGES, FUNNEL_SUBJECT
from tsunagu.reports.figures import CounterRows, check_range, rate
from tsunagu.text import spreadsheet_safe

Grouping = Literal["channel", "form"]


@dataclass(frozen=True)
class Stage:
    name: str
    reached: int
    conversion: float | None
    """Of the leads at the stage before, the share that reached this one."""
    median_days: float | None
    """Days from the stage before, the median of the leads that reached this one."""


@dataclass(frozen=True)
class FunnelGroup:
    name: str
    stages: list[Stage]

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.name,
            "stages": [
                {
                    "stage": s.name,
                    "reached": s.reached,
                    "conversion": s.conversion,
                    "median_days": s.median_days,
                }
                for s in self.stages
            ],
        }


@dataclass(frozen=True)
class FunnelReport:
    first_day: str
    last_day: str
    by: Grouping
    total: FunnelGroup
    groups: list[FunnelGroup]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.first_day,
            "to": self.last_day,
            "by": self.by,
            "cohort": "leads created from `from` to `to`",
            "total": self.total.as_dict(),
            "groups": [g.as_dict() for g in self.groups],
        }


def median_from_counts(counts: dict[int, int]) -> float | None:
    """The median of values given as value -> how many times (the mean of the two middle
    values when there is an even number of them)."""
    total = sum(counts.values())
    if total == 0:
        return None
    ordered = sorted(counts.items())

    def nth(index: int) -> int:
        seen = 0
        for value, n in ordered:
            seen += n
            if index < seen:
                return value
        raise AssertionError("index beyond the counts")

    if total % 2:
        return float(nth(total // 2))
    return (nth(total // 2 - 1) + nth(total // 2)) / 2


def _group(name: str, metrics: dict[str, int]) -> FunnelGroup:
    stages = []
    before: int | None = None
    for stage in FUNNEL_STAGES:
        reached = metrics.get(f"reached:{stage}", 0)
        prefix = f"days_to:{stage}:"
        days = {int(k.removeprefix(prefix)): n for k, n in metrics.items() if k.startswith(prefix)}
        conversion = rate(reached, before) if before is not None else None
        stages.append(Stage(stage, reached, conversion, median_from_counts(days)))
        before = reached
    return FunnelGroup(name, stages)


def funnel_report(
    first_day: date, last_day: date, *, store: CounterRows, by: Grouping = "channel"
) -> FunnelReport:
    check_range(first_day, last_day)
    grouped: dict[str, dict[str, int]] = {}
    total: dict[str, int] = {}
    for key, metrics in store.rows(FUNNEL_SUBJECT, first_day.isoformat(), last_day.isoformat()):
        channel, _, form = key.part.partition("#")
        row = grouped.setdefault(channel if by == "channel" else form, {})
        for name, n in metrics.items():
            row[name] = row.get(name, 0) + n
            total[name] = total.get(name, 0) + n
    return FunnelReport(
        first_day.isoformat(),
        last_day.isoformat(),
        by,
        _group("all", total),
        # A group whose every lead was taken back out (an import undone) adds up to nothing.
        [_group(name, m) for name, m in sorted(grouped.items()) if any(m.values())],
    )


def funnel_csv(found: FunnelReport) -> str:
    """One row per group and stage (the total last): reached, conversion, median days."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["by", "group", "stage", "reached", "conversion", "median_days", "from", "to"])
    for group in (*found.groups, found.total):
        for stage in group.stages:
            row = [found.by, group.name, stage.name, stage.reached,
                   "" if stage.conversion is None else stage.conversion,
                   "" if stage.median_days is None else stage.median_days,
                   found.first_day, found.last_day]  # fmt: skip
            writer.writerow([spreadsheet_safe(str(cell)) for cell in row])
    return buffer.getvalue()
