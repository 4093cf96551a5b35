"""The A/B report of a journey's split: per arm, the leads assigned, the mails sent to them after
the split and people's clicks on those mails, and each arm against the first (a 95 % interval of
the difference, a two-proportion test, and how many more mails the test still needs).

The comparison is on people's clicks only, never on opens: privacy proxies open every mail and
blocked images hide real opens, so open rates say more about mail clients than about a subject
line. A split is called significant only by the test (tsunagu.reports.statistics); until then
the report says how many more mails per arm would tell.

A rate here is per mail sent after the split (a lead sent two mails counts twice), as the
counters count: ``clicked_people_unique / sent``.

Conversions are compared too, per lead: ``converted / assigned``, where converted is a lead
that reached one of the journey's goals within its window (tsunagu.reports.counting). A holdout
is read the same way, its control group (``holdout``) the baseline: the difference is the
journey's lift over leads it left alone.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from tsunagu.journeys.decisions import HOLDOUT
from tsunagu.reports.counting import experiment_subject
from tsunagu.reports.figures import CounterRows, check_range, rate, within
from tsunagu.reports.statistics import Comparison, compare_proportions, still_needed
from tsunagu.text import spreadsheet_safe

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Arm:
    version: int
    outcome: str
    counts: dict[str, int]

    @property
    def sent(self) -> int:
        return self.counts.get("sent", 0)

    @property
    def clicked(self) -> int:
        # A mail sent before the range and clicked in it is a click without its send: at the
        # range's edge, never more clicked mails than sent ones (figures.within).
        return within(self.counts.get("clicked_people_unique", 0), self.sent)

    @property
    def assigned(self) -> int:
        return self.counts.get("assigned", 0)

    @property
    def converted(self) -> int:
        # As with clicks: a lead assigned before the range and converted in it.
        return within(self.counts.get("converted", 0), self.assigned)


@dataclass(frozen=True)
class Versus:
    """An arm against the baseline arm."""

    arm: str
    baseline: str
    comparison: Comparison
    more_needed: int | None
    per: str = "mails"
    """What a trial is: a mail sent (clicks) or a lead assigned (conversions)."""

    def as_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "arm": self.arm,
            "baseline": self.baseline,
            "difference": _rounded(c.difference),
            "interval": None if c.interval is None else [
                _rounded(c.interval.low), _rounded(c.interval.high)
            ],
            "relative_lift": _rounded(c.relative_lift),
            "p_value": _rounded(c.p_value),
            "significant": c.significant,
            f"more_{self.per}_needed_per_arm": self.more_needed,
        }  # fmt: skip


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class ExperimentReport:
    journey_id: str
    node: str
    first_day: str
    last_day: str
    arms: list[Arm]
    versus: list[Versus]
    conversions: list[Versus]

    def as_dict(self) -> dict[str, Any]:
        return {
            "journey_id": self.journey_id,
            "node": self.node,
            "from": self.first_day,
            "to": self.last_day,
            "metric": "clicked_people_unique / sent",
            "confidence": CONFIDENCE,
            "arms": [
                {
                    "version": arm.version,
                    "arm": arm.outcome,
                    "assigned": arm.counts.get("assigned", 0),
                    "sent": arm.sent,
                    "clicked_people_unique": arm.clicked,
                    "click_rate": rate(arm.clicked, arm.sent, digits=6),
                    "opened_people_unique": arm.counts.get("opened_people_unique", 0),
                    "clicked_machines": arm.counts.get("clicked_machines", 0),
                    "converted": arm.converted,
                    "conversion_rate": rate(arm.converted, arm.assigned, digits=6),
                    "mqls": arm.counts.get("mql", 0),
                }
                for arm in self.arms
            ],
            "versus": [v.as_dict() for v in self.versus],
            "conversion_metric": "converted / assigned",
            "conversions_versus": [v.as_dict() for v in self.conversions],
        }


def experiment_report(
    journey_id: str,
    node: str,
    first_day: date,
    last_day: date,
    *,
    store: CounterRows,
    version: int | None = None,
) -> ExperimentReport:
    """The split ``node`` of a journey over the days; one version's arms (the latest counted
    unless ``version``), since a new version may have changed what the arms send."""
    check_range(first_day, last_day)
    subject = experiment_subject(journey_id, node)
    totals: dict[tuple[int, str], dict[str, int]] = {}
    for key, counts in store.rows(subject, first_day.isoformat(), last_day.isoformat()):
        version_text, _, outcome = key.part.partition("#")
        row = totals.setdefault((int(version_text.removeprefix("v")), outcome), {})
        for name, n in counts.items():
            row[name] = row.get(name, 0) + n
    versions = sorted({v for v, _ in totals}, reverse=True)
    chosen = version if version is not None else (versions[0] if versions else None)
    arms = [
        Arm(v, outcome, counts) for (v, outcome), counts in sorted(totals.items()) if v == chosen
    ]
    # A holdout's control group is what the rest is measured against; else the first arm.
    arms.sort(key=lambda arm: arm.outcome != HOLDOUT)
    versus, conversions = [], []
    if arms:
        baseline = arms[0]
        for arm in arms[1:]:
            compared = compare_proportions(
                baseline.clicked, baseline.sent, arm.clicked, arm.sent, CONFIDENCE
            )
            versus.append(Versus(arm.outcome, baseline.outcome, compared, still_needed(compared)))
            lift = compare_proportions(
                baseline.converted, baseline.assigned, arm.converted, arm.assigned, CONFIDENCE
            )
            conversions.append(
                Versus(arm.outcome, baseline.outcome, lift, still_needed(lift), per="leads")
            )
    return ExperimentReport(
        journey_id, node, first_day.isoformat(), last_day.isoformat(), arms, versus, conversions
    )


def experiment_csv(found: ExperimentReport) -> str:
    """One row per arm (leads, mails, people's clicks, conversions and their rates), then one per
    comparison with its interval and test."""
    shown = found.as_dict()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    names = ["assigned", "sent", "clicked_people_unique", "click_rate", "converted",
             "conversion_rate", "mqls"]  # fmt: skip
    writer.writerow(["journey", "node", "version", "arm", *names])
    for arm in shown["arms"]:
        cells = [found.journey_id, found.node, arm["version"], arm["arm"]]
        writer.writerow([_cell(c) for c in cells + [arm[n] for n in names]])
    writer.writerow([])
    writer.writerow(["metric", "arm", "baseline", "difference", "low", "high", "p_value",
                     "significant", "more_needed_per_arm"])  # fmt: skip
    compared = (
        ("people's clicks per mail", shown["versus"], "mails"),
        ("conversions per lead", shown["conversions_versus"], "leads"),
    )
    for metric, comparisons, per in compared:
        for v in comparisons:
            low, high = v["interval"] or ("", "")
            row = [metric, v["arm"], v["baseline"], v["difference"], low, high, v["p_value"],
                   v["significant"], v[f"more_{per}_needed_per_arm"]]  # fmt: skip
            writer.writerow([_cell(c) for c in row])
    return buffer.getvalue()


def _cell(value: object) -> str:
    """A cell a spreadsheet reads as the value: empty for none (an arm sent no mail has no
    click rate), a rate or a difference in plain decimals - Python writes 0.000012 as 1.2e-05,
    and -1.2e-05, not being a plain number, would be guarded into text."""
    if value is None:
        return ""
    if isinstance(value, float):
        return spreadsheet_safe(format(Decimal(repr(value)), "f"))
    return spreadsheet_safe(str(value))
