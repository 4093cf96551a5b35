"""The lead filter: ``stage=lead,tag=seminar-2026-12,silent_days>=90``. Saved segments, manual
entries (``journeys start --segment``), segment triggers and a journey's ``branch`` cases all
read it (tsunagu.journeys.decisions).

Conditions, separated by commas, all of which must hold:

- ``stage``, ``tag``, ``source``, ``domain``, ``grade``, ``crm_status``, ``owner``:
  ``=`` or ``!=`` a value (tags and sources exactly, the rest without case, NFKC; a domain as
  the leads' addresses hold it, an internationalised one as punycode, a final dot or a
  leading ``@`` dropped);
- ``field.<name>``: a lead field (``field.company=株式会社Example``; an empty value means the
  field is blank), ``=`` or ``!=``;
- ``score``, ``silent_days``: ``>=`` or ``<=`` a whole number (a score band is both); the score
  is the lead's score now, decay included (tsunagu.qualification.scores), as ``tsunagu leads
  score`` explains it;
- ``consent.<topic>``: ``=`` or ``!=`` ``yes`` (opted in, as a send reads it), ``no`` (opted
  out) or ``none`` (never asked);
- ``import``: the lead was created or changed by that import (``import=imp_...``);
- ``did`` / ``did_not``: a person (never a machine's click) did the event in the last N days:
  ``did=form_submitted/30d``;
- ``in_segment``: ``=`` or ``!=`` a saved segment's name (membership of another segment).

What only the lead holds is read from it; the rest (events, consent, imports, other segments, the
score where the stored one cannot decide it) from ``Facts``, asked only once the lead's own
conditions hold, so a filter costs a read per lead only where it must.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tsunagu.clock import parse_instant
from tsunagu.errors import MissingSegment
from tsunagu.leads.email import InvalidEmail, pasted_domain
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import Lead
from tsunagu.leads.updates import FIELD_NAME_PATTERN, STAGES
from tsunagu.mail.templates import TOPIC_PATTERN
from tsunagu.qualification.grading import Grade
from tsunagu.qualification.scores import LeadScores

EQUAL, NOT_EQUAL, AT_LEAST, AT_MOST = "=", "!=", ">=", "<="

PLAIN = ("stage", "tag", "source", "domain", "grade", "crm_status", "owner")
"""Compared with = or != against what the lead itself holds."""
NUMBERS = ("score", "silent_days")
"""Compared with >= or <= a whole number."""
DOTTED = ("field", "consent")
"""``field.<name>`` and ``consent.<topic>``."""
FACTS = ("import", "did", "did_not", "in_segment")
"""Read from Facts, not from the lead."""
NAMES = (*PLAIN, *NUMBERS, *(f"{d}.<name>" for d in DOTTED), *FACTS)
CONSENT_VALUES = ("yes", "no", "none")
MAX_DAYS = 3_650
MAX_FILTER = 1_000
"""Characters a filter may have wherever it is written: a saved segment, a journey's segment
trigger or branch case, a manual start, an export (a filter of a dozen conditions is a few
hundred)."""
MAX_DEPTH = 5
"""Segments within segments this deep at most (a saved segment may not contain itself)."""

_CONDITION = re.compile(r"^([a-z_]+)(?:\.([A-Za-z0-9_:-]{1,60}))?\s*(>=|<=|!=|=)\s*(.*)$", re.S)
_DID = re.compile(r"^([a-z][a-z0-9_]{0,59})\s*/\s*(\d{1,4})d$")
SEGMENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
IMPORT_ID = re.compile(r"^imp_[0-9A-HJKMNP-TV-Z]{26}$")
"""An import's id as tsunagu.ids.new_id writes it: ``imp_`` and a ULID (Crockford base32)."""
SOURCES = tuple(channel.value for channel in Channel)
"""What a lead's ``sources`` can hold: the channels that wrote it (tsunagu.leads.merge)."""


class Facts(Protocol):
    """What a filter reads beyond the lead itself."""

    def did(self, lead_id: str, event_type: str, since: datetime) -> bool:
        """Whether a person (not a machine) did the event since then."""
        ...

    def consent(self, lead_id: str) -> Mapping[str, str]:
        """topic -> opted_in | opted_out | pending."""
        ...

    def imported(self, import_id: str) -> frozenset[str]:
        """The leads the import created or changed."""
        ...

    def segment(self, name: str) -> Segment | None:
        """A saved segment's filter (None: no such segment; a filter reading it fails with
        MissingSegment)."""
        ...

    def scores(self, now: datetime) -> LeadScores:
        """The leads' scores as of ``now``."""
        ...


class NoFacts:
    """Nothing known beyond the lead (a dry run's synthetic leads): no events, no consent, in
    no import, in no saved segment (each is NO_LEAD), no award (its stored score is its score)."""

    def did(self, lead_id: str, event_type: str, since: datetime) -> bool:
        return False

    def consent(self, lead_id: str) -> Mapping[str, str]:
        return {}

    def imported(self, import_id: str) -> frozenset[str]:
        return frozenset()

    def segment(self, name: str) -> Segment | None:
        return NO_LEAD

    def scores(self, now: datetime) -> LeadScores:
        return LeadScores.stored(now)


NO_FACTS = NoFacts()


@dataclass(frozen=True)
class Condition:
    name: str
    operator: str
    value: str
    argument: str | None = None
    """The field of ``field.<name>``, the topic of ``consent.<topic>``."""

    @property
    def label(self) -> str:
        return f"{self.name}.{self.argument}" if self.argument else self.name

    @property
    def reads_facts(self) -> bool:
        return self.name in FACTS or self.name == "consent"

    def __str__(self) -> str:
        return f"{self.label}{self.operator}{self.value}"


@dataclass(frozen=True)
class Segment:
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, text: str, *, new: bool = False) -> Segment:
        """The filter in ``text``; ValueError saying what is wrong. ``new``: a person gives it
        now (tsunagu.segments.saved.parsed_filter), so a value no lead could hold is refused
        too (a domain no address has, a stage or grade not in their lists, a topic or field
        name nothing writes: ``_could_be_held``); without it, a filter read back (a saved
        segment, a journey's trigger or branch) written before a rule got stricter still
        reads."""
        conditions = [_condition(part, new=new) for part in _parts(text)]
        if not conditions:
            raise ValueError("an empty segment would select every lead; name a filter")
        # The lead's own conditions first: a lead they leave out costs no read. Then the score
        # (a read only where the stored score cannot decide it), then the facts.
        return cls(tuple(sorted(conditions, key=lambda c: (c.reads_facts, c.name == "score"))))

    def __str__(self) -> str:
        return ",".join(str(c) for c in self.conditions)

    @property
    def segments_named(self) -> frozenset[str]:
        """The saved segments this filter reads (``in_segment``)."""
        return frozenset(c.value for c in self.conditions if c.name == "in_segment")

    @property
    def imports_named(self) -> frozenset[str]:
        """The imports this filter reads (``import``)."""
        return frozenset(c.value for c in self.conditions if c.name == "import")

    def selects(
        self, lead: Lead, now: datetime, facts: Facts = NO_FACTS, *, depth: int = 0
    ) -> bool:
        return all(_holds(c, lead, now, facts, depth) for c in self.conditions)

    def values(self, lead: Lead, now: datetime, facts: Facts = NO_FACTS) -> dict[str, object]:
        """What the lead had for each name the filter reads: why it did or did not select it."""
        return {c.label: _value(c, lead, now, facts) for c in self.conditions}


class _NoLead(Segment):
    """A segment that selects no lead: each saved segment, to a lead nothing is known of
    beyond itself (NoFacts)."""

    def selects(
        self, lead: Lead, now: datetime, facts: Facts = NO_FACTS, *, depth: int = 0
    ) -> bool:
        return False


NO_LEAD = _NoLead(())


def _parts(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _condition(part: str, *, new: bool = False) -> Condition:
    matched = _CONDITION.match(part)
    if matched is None:
        raise ValueError(f"{part!r} is not NAME=VALUE (or NAME>=NUMBER, NAME!=VALUE)")
    name, argument, operator, value = matched.groups()
    value = value.strip()
    if value.startswith(("=", "<", ">")):
        raise ValueError(f"{part!r}: one operator, e.g. stage=mql (not ==)")
    if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
        raise ValueError(f"{part!r}: write the value without quotes, e.g. stage=mql")
    if name in DOTTED and argument is None:
        raise ValueError(f"{name}: name the {'field' if name == 'field' else 'topic'}: {name}.X")
    if name not in (*PLAIN, *NUMBERS, *DOTTED, *FACTS) or (argument and name not in DOTTED):
        raise ValueError(f"unknown filter {part.split(operator)[0].strip()!r}: use "
                         + ", ".join(NAMES))  # fmt: skip
    label = f"{name}.{argument}" if argument else name
    if name in NUMBERS:
        if operator not in (AT_LEAST, AT_MOST):
            raise ValueError(f"{name}: use {name}>=N or {name}<=N")
        if not re.fullmatch(r"[0-9]{1,9}", value):  # not isdigit(): it takes ² and ٣
            raise ValueError(f"{name} needs a whole number, not {value!r}")
    elif operator not in (EQUAL, NOT_EQUAL):
        raise ValueError(f"{label}: use = or != (>= and <= are for {' and '.join(NUMBERS)})")
    if name in ("did", "did_not"):
        if operator != EQUAL:
            raise ValueError(f"{name}: use {name}=EVENT/Nd (did_not for the opposite)")
        did = _DID.match(value)
        if did is None or not 1 <= int(did.group(2)) <= MAX_DAYS:
            raise ValueError(
                f"{name} needs an event and 1 to {MAX_DAYS} days, e.g. {name}=form_submitted/30d"
            )
    if name == "consent" and value.casefold() not in CONSENT_VALUES:
        raise ValueError(f"{label}: use {' / '.join(CONSENT_VALUES)}, not {value!r}")
    if name == "in_segment" and not SEGMENT_NAME.match(value):
        raise ValueError(f"in_segment needs a segment's name, not {value!r}")
    if name == "domain":
        value = _as_stored_domain(value, new=new)
    if not value and name != "field":
        raise ValueError(f"{label} needs a value")
    if new:
        _could_be_held(name, argument, value)
    return Condition(name, operator, value, argument)


GRADES = tuple(grade.value for grade in Grade)


def _could_be_held(name: str, argument: str | None, value: str) -> None:
    """ValueError when a new filter names what no lead can hold: a stage or grade outside their
    fixed lists (compared as the filter compares them, folded), a source that is no channel
    (compared exactly, as the lead search keys it), an import id not shaped as one, a topic or
    field name no form, template or import can write. ``stage!=custmer`` or
    ``source!=trade-show`` would otherwise select every lead - an exclusion that excludes
    nobody, a journey entering everyone. (Whether a well-shaped import exists only the store
    knows: tsunagu.segments.saved.missing_import.)"""
    if name == "stage" and fold(value) not in STAGES:
        raise ValueError(f"stage {value!r} is no stage: use one of {', '.join(STAGES)}")
    if name == "grade" and fold(value) not in {fold(grade) for grade in GRADES}:
        raise ValueError(f"grade {value!r} is no grade: use one of {', '.join(GRADES)}")
    if name == "source" and value not in SOURCES:
        raise ValueError(f"source {value!r} is no source: use one of {', '.join(SOURCES)}")
    if name == "import" and not IMPORT_ID.match(value):
        raise ValueError(
            f"import {value!r} is no import's id: give it as the import's receipt says it,"
            " imp_ and 26 letters and digits (e.g. import=imp_01KD...)"
        )
    if name == "consent" and not re.match(TOPIC_PATTERN, argument or ""):
        raise ValueError(
            f"consent.{argument}: a topic is lower-case letters, digits, _ and - (as forms and"
            " templates name it), e.g. consent.newsletter"
        )
    if name == "field" and not re.match(FIELD_NAME_PATTERN, argument or ""):
        raise ValueError(
            f"field.{argument}: a field's name is lower-case letters, digits and _ (as forms and"
            " imports write it), e.g. field.company"
        )


def _as_stored_domain(value: str, *, new: bool) -> str:
    """``domain=``'s value as the leads' addresses hold their domains (tsunagu.leads.email):
    ``日本.example.jp`` is ``xn--wgv71a.example.jp``, ``straße`` stays ``xn--strae-oqa``.

    People paste a domain as DNS writes it (``rival.example.jp.``) or from an address
    (``@rival.example.jp``): one final dot and a leading ``@`` are not part of the domain, and
    kept they would make a value no address holds - an exclusion segment that excludes nobody,
    a ``!=`` that selects every lead. A value that is still no address's domain is refused in a
    new filter (as the global exclusion list refuses it, tsunagu.mail.exclusions); a filter
    saved before this rule keeps it as written, so it still reads (and selects no lead)."""
    try:
        return pasted_domain(value)
    except InvalidEmail as error:
        if new:
            raise ValueError(f"domain {value!r} is no address's domain: {error}") from None
        return value


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def _consent_of(topic: str, topics: Mapping[str, str]) -> str:
    """yes / no / none for a topic, as a marketing send reads consent (tsunagu.mail.consent)."""
    if topics.get("all") == "opted_out" or topics.get(topic) == "opted_out":
        return "no"
    if topics.get(topic) == "opted_in" or topics.get("marketing") == "opted_in":
        return "yes"
    return "none"


def _silent_days(lead: Lead, now: datetime) -> int:
    return (now - parse_instant(lead.last_activity_at or lead.created_at)).days


def _value(c: Condition, lead: Lead, now: datetime, facts: Facts) -> object:
    """What the lead has for the condition's name (several values for tags and sources)."""
    name = c.name
    if name == "tag":
        return sorted(lead.tags)
    if name == "source":
        return list(lead.sources)
    if name == "domain":
        return lead.email.rsplit("@", 1)[-1].casefold()
    if name == "silent_days":
        return _silent_days(lead, now)
    if name == "score":
        return facts.scores(now).of(lead)
    if name == "owner":
        owner = lead.fields.get("owner_email")
        return owner.value if owner is not None else None
    if name == "field":
        held = lead.fields.get(c.argument or "")
        return held.value if held is not None else None
    if name == "consent":
        return _consent_of(c.argument or "", facts.consent(lead.lead_id))
    if name == "import":
        return lead.lead_id in facts.imported(c.value)
    if name in ("did", "did_not"):
        event, days = _did(c.value)
        return facts.did(lead.lead_id, event, now - timedelta(days=days))
    if name == "in_segment":
        return _member(c.value, lead, now, facts, depth=0)
    return {"stage": lead.stage, "grade": lead.grade, "crm_status": lead.crm_status}[name]


def _did(value: str) -> tuple[str, int]:
    matched = _DID.match(value)
    assert matched is not None  # checked when parsed
    return matched.group(1), int(matched.group(2))


def _member(name: str, lead: Lead, now: datetime, facts: Facts, depth: int) -> bool:
    if depth >= MAX_DEPTH:
        raise ValueError(f"segments nest deeper than {MAX_DEPTH} (does {name!r} contain itself?)")
    segment = facts.segment(name)
    if segment is None:
        # Never "a member of nothing": in_segment!=customers would then select every lead -
        # enter them all, send them all the mail meant for the rest. Failing stops the one
        # evaluation instead, loudly: a branch's execution fails (named in Step Functions), the
        # day's segment trigger enters nobody in that journey, a marketing send is not sent
        # (mail_failed, retried).
        raise MissingSegment(name)
    return segment.selects(lead, now, facts, depth=depth + 1)


def _holds(c: Condition, lead: Lead, now: datetime, facts: Facts, depth: int) -> bool:
    if c.name == "score":
        scores = facts.scores(now)
        if c.operator == AT_LEAST:
            return scores.at_least(lead, int(c.value))
        return scores.at_most(lead, int(c.value))
    if c.name == "silent_days":
        days = _silent_days(lead, now)
        return days >= int(c.value) if c.operator == AT_LEAST else days <= int(c.value)
    if c.name == "did":
        return bool(_value(c, lead, now, facts))
    if c.name == "did_not":
        return not _value(c, lead, now, facts)
    if c.name == "in_segment":
        member = _member(c.value, lead, now, facts, depth)
    elif c.name == "import":
        member = lead.lead_id in facts.imported(c.value)
    else:
        held = _value(c, lead, now, facts)
        if isinstance(held, list):  # tags and sources: as the lead search's index keys them
            member = c.value in held
        else:
            member = fold(str(held or "")) == fold(c.value)
    return member if c.operator == EQUAL else not member
