"""A simple lead filter for manual entry: ``stage=lead,tag=seminar-2026-12,silent_days>=90``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tsunagu.clock import parse_instant
from tsunagu.leads.model import Lead

_KNOWN = ("stage", "tag", "source", "domain", "silent_days")


@dataclass(frozen=True)
class Condition:
    name: str
    operator: str
    value: str


@dataclass(frozen=True)
class Segment:
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, text: str) -> Segment:
        conditions = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            for operator in (">=", "="):
                name, found, value = part.partition(operator)
                if found:
                    break
            else:
                raise ValueError(f"{part!r} is not NAME=VALUE or NAME>=NUMBER")
            name, value = name.strip(), value.strip()
            if name not in _KNOWN:
                raise ValueError(f"unknown filter {name!r}: use {', '.join(_KNOWN)}")
            if (name == "silent_days") != (operator == ">="):
                raise ValueError(f"{name}: use silent_days>=N, and = for the others")
            if name == "silent_days" and not value.isdigit():
                raise ValueError(f"silent_days needs a whole number of days, not {value!r}")
            conditions.append(Condition(name, operator, value))
        if not conditions:
            raise ValueError("an empty segment would select every lead; name a filter")
        return cls(tuple(conditions))

    def selects(self, lead: Lead, now: datetime) -> bool:
        return all(_holds(c, lead, now) for c in self.conditions)


def _holds(condition: Condition, lead: Lead, now: datetime) -> bool:
    name, value = condition.name, condition.value
    if name == "stage":
        return lead.stage == value
    if name == "tag":
        return value in lead.tags
    if name == "source":
        return value in lead.sources
    if name == "domain":
        return lead.email.rsplit("@", 1)[-1].casefold() == value.casefold()
    last = parse_instant(lead.last_activity_at or lead.created_at)
    return now - last >= timedelta(days=int(value))
