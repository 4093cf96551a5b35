"""A simple lead filter: ``stage=lead,tag=seminar-2026-12,silent_days>=90``. Manual entries,
segment triggers and a journey's ``branch`` cases all read it (tsunagu.journeys.decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tsunagu.clock import parse_instant
from tsunagu.leads.model import Lead

_KNOWN = ("stage", "tag", "source", "domain", "grade", "crm_status", "silent_days", "score")
_AT_LEAST = ("silent_days", "score")
"""Compared with ``>=`` (a number); the others with ``=``."""


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
            if (name in _AT_LEAST) != (operator == ">="):
                at_least = " and ".join(_AT_LEAST)
                raise ValueError(f"{name}: use {at_least} with >=N, = for the others")
            if name in _AT_LEAST and not value.isdigit():
                raise ValueError(f"{name} needs a whole number, not {value!r}")
            conditions.append(Condition(name, operator, value))
        if not conditions:
            raise ValueError("an empty segment would select every lead; name a filter")
        return cls(tuple(conditions))

    def selects(self, lead: Lead, now: datetime) -> bool:
        return all(_holds(c, lead, now) for c in self.conditions)

    def values(self, lead: Lead, now: datetime) -> dict[str, object]:
        """What the lead had for each name the filter reads: why it did or did not select it."""
        return {c.name: _value(c.name, lead, now) for c in self.conditions}


def _value(name: str, lead: Lead, now: datetime) -> object:
    if name == "tag":
        return sorted(lead.tags)
    if name == "source":
        return list(lead.sources)
    if name == "domain":
        return lead.email.rsplit("@", 1)[-1].casefold()
    if name == "silent_days":
        return (now - parse_instant(lead.last_activity_at or lead.created_at)).days
    return {"stage": lead.stage, "grade": lead.grade, "crm_status": lead.crm_status}.get(
        name, lead.score
    )


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
    if name == "grade":
        return (lead.grade or "").casefold() == value.casefold()
    if name == "crm_status":
        return (lead.crm_status or "").casefold() == value.casefold()
    if name == "score":
        return (lead.score or 0) >= int(value)
    last = parse_instant(lead.last_activity_at or lead.created_at)
    return now - last >= timedelta(days=int(value))
