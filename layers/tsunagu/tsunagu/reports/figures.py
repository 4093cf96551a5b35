"""Reports read from the counters: a mail (per template version) and a journey (per version and
node), over a range of days, with the rates of ``tsunagu.reports.definitions``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from tsunagu.reports.cost import JourneyCost
from tsunagu.reports.counting import CounterKey, journey_subject, mail_subject
from tsunagu.text import spreadsheet_safe

MAX_DAYS = 400
"""The longest range a report reads (a year and a bit: a year-on-year look)."""


class CounterRows(Protocol):
    def rows(
        self, subject: str, first_day: str, last_day: str
    ) -> list[tuple[CounterKey, dict[str, int]]]: ...


@dataclass(frozen=True)
class Figures:
    """The summed counters of one part of a report, and the rates computed from them."""

    counts: dict[str, int]

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)

    @property
    def not_bounced(self) -> int:
        return self.get("sent") - self.get("bounced_hard") - self.get("bounced_soft")

    def rates(self) -> dict[str, float | None]:
        kept = self.not_bounced
        clicks = self.get("clicked_people") + self.get("clicked_machines")
        return {
            "delivery_rate": rate(kept, self.get("sent")),
            "bounce_rate": rate(
                self.get("bounced_hard") + self.get("bounced_soft"), self.get("sent")
            ),
            "open_rate": rate(self.get("opened_people_unique"), kept),
            "click_rate": rate(self.get("clicked_people_unique"), kept),
            "click_to_open_rate": rate(
                self.get("clicked_people_unique"), self.get("opened_people_unique")
            ),
            "unsubscribe_rate": rate(self.get("unsubscribed"), kept),
            "complaint_rate": rate(self.get("complained"), kept),
            "machine_click_share": rate(self.get("clicked_machines"), clicks),
        }

    def machine_reasons(self, action: str) -> dict[str, int]:
        prefix = f"{action}_machines:"
        return {
            name.removeprefix(prefix): n
            for name, n in sorted(self.counts.items())
            if name.startswith(prefix)
        }

    def outcomes(self) -> dict[str, int]:
        return {
            name.removeprefix("outcome:"): n
            for name, n in sorted(self.counts.items())
            if name.startswith("outcome:")
        }

    def as_dict(self) -> dict[str, Any]:
        plain = {k: v for k, v in sorted(self.counts.items()) if ":" not in k}
        return {
            "counts": plain,
            "rates": self.rates(),
            "machines_by_reason": {
                "opened": self.machine_reasons("opened"),
                "clicked": self.machine_reasons("clicked"),
            },
            "outcomes": self.outcomes(),
        }


def rate(part: int, whole: int, digits: int = 4) -> float | None:
    """``part / whole`` as every report gives a rate: None (shown as "–") when there is nothing
    to divide by (``whole`` 0, or below 0: mails not bounced when more bounced in the days than
    were sent in them), and never below 0 or above 1. A range's counts come from different
    days: a mail sent before the range and bounced, opened or clicked in it adds to the part
    without its send in the whole, and a rate of 130 % or -100 % would say nothing true."""
    if whole <= 0:
        return None
    return round(min(max(part / whole, 0.0), 1.0), digits)


def within(part: int, whole: int) -> int:
    """The same bound on a count: ``part`` as at most ``whole`` (and at least 0), for what is
    computed from the counts themselves (a comparison of two proportions)."""
    return max(0, min(part, whole))


def _summed(rows: Iterable[dict[str, int]]) -> Figures:
    total: dict[str, int] = {}
    for row in rows:
        for name, n in row.items():
            total[name] = total.get(name, 0) + n
    return Figures(total)


@dataclass(frozen=True)
class Part:
    """One version (of a mail) or one node of one version (of a journey), with its figures and
    its counts per day."""

    version: int
    node: str | None
    figures: Figures
    by_day: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"version": self.version}
        if self.node is not None:
            shown["node"] = self.node
        return {**shown, **self.figures.as_dict(), "by_day": self.by_day}


@dataclass(frozen=True)
class Report:
    kind: str
    subject_id: str
    first_day: str
    last_day: str
    time_zone: str
    total: Figures
    parts: list[Part]
    costs: Mapping[int, JourneyCost | None] = field(default_factory=dict)
    """A journey's: each version's AWS cost at list price (tsunagu.reports.cost), None for a
    version whose definition is not kept."""

    @property
    def cost_usd(self) -> Decimal | None:
        """The journey's cost over the days, all versions (None: nothing could be priced)."""
        known = [c.total_usd for c in self.costs.values() if c is not None]
        return sum(known, Decimal(0)) if known else None

    def counts_by_node(self, version: int) -> dict[str, dict[str, int]]:
        """One version's summed counters per node, as the cost estimate reads them."""
        return {p.node: p.figures.counts for p in self.parts if p.version == version and p.node}

    def as_dict(self) -> dict[str, Any]:
        shown = {
            "kind": self.kind,
            "id": self.subject_id,
            "from": self.first_day,
            "to": self.last_day,
            "time_zone": self.time_zone,
            "total": self.total.as_dict(),
            "parts": [p.as_dict() for p in self.parts],
        }
        if self.kind == "journey":
            total = self.cost_usd
            shown["cost"] = {
                "total_usd": None if total is None else str(total),
                "versions": [
                    {"version": version, "priced": cost is not None}
                    | ({} if cost is None else cost.as_dict())
                    for version, cost in sorted(self.costs.items(), reverse=True)
                ],
            }
        return shown


EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)
"""The days a report may name (no event is older; the end of the range plus a day must still
be a date)."""


def check_range(first_day: date, last_day: date) -> None:
    if not (first_day >= EARLIEST and last_day <= LATEST):
        raise ValueError(f"a report's days are from {EARLIEST} to {LATEST}")
    if last_day < first_day:
        raise ValueError("the range ends before it starts")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ValueError(f"a report covers at most {MAX_DAYS} days")


def mail_report(
    template_id: str, first_day: date, last_day: date, *, store: CounterRows, time_zone: str
) -> Report:
    subject = mail_subject(template_id)
    return _report("mail", template_id, subject, first_day, last_day, store, time_zone)


def journey_report(
    journey_id: str, first_day: date, last_day: date, *, store: CounterRows, time_zone: str
) -> Report:
    subject = journey_subject(journey_id)
    return _report("journey", journey_id, subject, first_day, last_day, store, time_zone)


def _report(
    kind: str,
    subject_id: str,
    subject: str,
    first_day: date,
    last_day: date,
    store: CounterRows,
    time_zone: str,
) -> Report:
    check_range(first_day, last_day)
    rows = store.rows(subject, first_day.isoformat(), last_day.isoformat())
    grouped: dict[str, dict[str, dict[str, int]]] = {}
    for key, counts in rows:
        grouped.setdefault(key.part, {})[key.day] = counts
    parts = [_part(part, by_day) for part, by_day in grouped.items()]
    parts.sort(key=lambda p: (-p.version, p.node or ""))
    return Report(
        kind=kind,
        subject_id=subject_id,
        first_day=first_day.isoformat(),
        last_day=last_day.isoformat(),
        time_zone=time_zone,
        total=_summed(counts for _, counts in rows),
        parts=parts,
    )


def _part(part: str, by_day: Mapping[str, dict[str, int]]) -> Part:
    version_text, _, node = part.partition("#")
    return Part(
        version=int(version_text.removeprefix("v")),
        node=node or None,
        figures=_summed(by_day.values()),
        by_day=dict(sorted(by_day.items())),
    )


def report_csv(report: Report) -> str:
    """One row per version (or node), every count and rate as a column; the cells as a
    spreadsheet shows them (nothing it would run as a formula)."""
    names = sorted({n for p in report.parts for n in p.figures.counts} | {"sent"})
    rate_names = list(report.total.rates())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["kind", "id", "version", "node", "from", "to", *names, *rate_names])
    for part in report.parts:
        rates = part.figures.rates()
        row = [
            report.kind,
            report.subject_id,
            part.version,
            part.node or "",
            report.first_day,
            report.last_day,
            *(part.figures.get(n) for n in names),
            *("" if rates[r] is None else rates[r] for r in rate_names),
        ]
        writer.writerow([spreadsheet_safe(str(cell)) for cell in row])
    return buffer.getvalue()
