"""Scoring: points for what a lead does, so "hand to sales" is a rule both sides can read.

Seed 000 replaced "experience and instinct" with an explicit rule: reading a mail is 5 points,
attending a seminar 20, and over 70 sales is told. Rules are data (the CLI manages them); each
names an event kind, optional conditions, points (negative allowed), an optional cap per period
and an optional half-life.

An event earns an :class:`Award` per matching rule, and awards are what is stored: the score is
always recomputed from them at a given "now", so decay needs no background job and a changed
half-life applies to old activity too. An award keeps the half-life its rule gave it with, and
goes on decaying by it once the rule is removed. Whether an event counts at all (automated opens
and clicks, Tsunagu's own system events) is the caller's decision, made before it asks for
points.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tsunagu.clock import isoformat, parse_instant
from tsunagu.event_match import EventConditions

CapPeriod = Literal["day", "week", "month", "ever"]
Band = Literal[1, 2, 3, 4]

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SECONDS_PER_DAY = 86_400
# Band limits as fractions of the MQL threshold (band 1 is at or over the threshold).
BAND_2_FRACTION = 0.6
BAND_3_FRACTION = 0.3


class ScoringRule(EventConditions):
    """One line of the scoring sheet: "a pricing page view is worth 10 points, 10 a day at most".

    Every condition given must match; none given matches every event of the kind.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str = Field(pattern=RULE_ID_PATTERN)
    description: str = Field(default="", max_length=200)
    points: int = Field(ge=-1000, le=1000)
    """Negative for signals against buying: an unsubscribe, a visit to the careers page."""
    cap: int | None = Field(default=None, ge=1, le=100_000)
    """At most this many points (in absolute value, for a negative rule) from this rule per
    ``cap_period``; the event that reaches the cap gets what is left of it."""
    cap_period: CapPeriod = "day"
    """Calendar day, ISO week (Monday first) or month in the model's time zone, or ``ever``."""
    half_life_days: float | None = Field(default=None, gt=0, le=3650)
    """The points halve every this many days after the event; None keeps them whole."""

    @field_validator("points")
    @classmethod
    def _not_zero(cls, points: int) -> int:
        if points == 0:
            raise ValueError("a rule worth 0 points does nothing; remove it instead")
        return points


class ScoringModel(BaseModel):
    """The whole sheet: the rules, the MQL threshold, and the time zone periods are counted in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[ScoringRule, ...] = Field(default=(), max_length=200)
    mql_threshold: int = Field(default=70, ge=1, le=100_000)
    time_zone: str = "Asia/Tokyo"
    """Where "per day" is counted: a cap resets at the team's midnight, not UTC's."""

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.rule_id in seen:
                raise ValueError(f"two rules have the id {rule.rule_id!r}")
            seen.add(rule.rule_id)
        return self

    def rule(self, rule_id: str) -> ScoringRule | None:
        return next((r for r in self.rules if r.rule_id == rule_id), None)


DEFAULT_RULES: tuple[ScoringRule, ...] = (
    # Seed 000's numbers, exactly: an open is 5, a seminar 20 (threshold 70 on the model).
    ScoringRule(rule_id="mail-opened", description="Opened a mail", type="mail_opened", points=5),
    ScoringRule(
        rule_id="seminar-attended",
        description="Attended a seminar",
        type="seminar_attended",
        points=20,
    ),
    # Extras a B2B marketer expects. A click is a stronger signal than an open; the cap keeps a
    # scanner that slipped past the automated-activity rules from making an MQL on its own.
    ScoringRule(
        rule_id="link-clicked",
        description="Clicked a link in a mail",
        type="link_clicked",
        points=10,
        cap=30,
        cap_period="day",
    ),
    # Capped: a form can be posted by anyone who knows an address, as often as they like, and
    # seven posts once made an invented address an MQL. One submission a day is the signal.
    ScoringRule(
        rule_id="form-submitted",
        description="Submitted a form",
        type="form_submitted",
        points=10,
        cap=10,
        cap_period="day",
    ),
    ScoringRule(
        rule_id="pricing-viewed",
        description="Viewed the pricing page",
        type="page_view",
        url_contains="/pricing",
        points=10,
        cap=10,
        cap_period="day",
    ),
    ScoringRule(
        rule_id="page-viewed",
        description="Viewed a page of the site",
        type="page_view",
        points=1,
        cap=5,
        cap_period="day",
    ),
    # A person answering a mail is the strongest sign a nurture mail gets (an automatic reply
    # is another kind, email_auto_replied, and never matches). Capped: one conversation a day
    # is the signal, not each message of it.
    ScoringRule(
        rule_id="mail-replied",
        description="Replied to a mail",
        type="email_replied",
        points=20,
        cap=20,
        cap_period="day",
    ),
    ScoringRule(
        rule_id="unsubscribed",
        description="Unsubscribed from a mail topic",
        type="consent_changed",
        properties={"status": "opted_out"},
        points=-10,
    ),
)

DEFAULT_MODEL = ScoringModel(rules=DEFAULT_RULES, mql_threshold=70)

ONCE_PER: Mapping[str, str] = {"mail_opened": "message_id"}
"""Event kinds every rule scores at most once per value of a property, whatever the rule says:
one mail's open pixel is fetched each time the mail is shown (a re-read, a client rendering it
again, a forwarded copy, anyone holding the URL), and one mail read is one signal - as the
reports count it. Twelve fetches of one pixel once made an MQL and a sales hand-off. Each
fetch is still stored as an open; only the first of a message scores."""


@dataclass(frozen=True)
class Award:
    """Points one rule gave one event: what the lead's score is made of."""

    rule_id: str
    points: int
    event_id: str
    occurred_at: datetime
    event_type: str = ""
    capped_from: int | None = None
    """The rule's full points when the cap cut this award down (for the explanation)."""
    half_life_days: float | None = None
    """The rule's half-life when it gave the award (None: the rule had none). While the rule is
    in the model its half-life of the day applies; once it is removed, this one does."""
    once_key: str | None = None
    """For an event kind scored once per value (ONCE_PER): that value, e.g. the mail's
    message id; no later event with it earns points from the same rule."""

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "rule_id": self.rule_id,
            "points": self.points,
            "event_id": self.event_id,
            "occurred_at": isoformat(self.occurred_at),
            "event_type": self.event_type,
        }
        if self.capped_from is not None:
            item["capped_from"] = self.capped_from
        if self.half_life_days is not None:
            item["half_life_days"] = self.half_life_days
        if self.once_key is not None:
            item["once_key"] = self.once_key
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Award:
        capped = item.get("capped_from")
        half_life = item.get("half_life_days")
        once_key = item.get("once_key")
        return cls(
            rule_id=str(item["rule_id"]),
            points=int(item["points"]),
            event_id=str(item["event_id"]),
            occurred_at=parse_instant(str(item["occurred_at"])),
            event_type=str(item.get("event_type") or ""),
            capped_from=None if capped is None else int(capped),
            half_life_days=None if half_life is None else float(half_life),
            once_key=None if once_key is None else str(once_key),
        )


def _aware(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return instant


def _period(instant: datetime, period: CapPeriod, zone: ZoneInfo) -> tuple[int, int] | date | None:
    local = instant.astimezone(zone)
    if period == "day":
        return local.date()
    if period == "week":
        iso = local.isocalendar()
        return (iso.year, iso.week)
    if period == "month":
        return (local.year, local.month)
    return None  # "ever": one period for all time


def points_for(
    event_id: str,
    event_type: str,
    properties: Mapping[str, Any],
    occurred_at: datetime,
    prior_awards: Iterable[Award],
    model: ScoringModel,
) -> list[Award]:
    """The awards one event earns, one per matching rule, caps applied.

    ``prior_awards`` are the lead's awards so far (any order). An event that already has an award
    for a rule gets none again from it, so a redelivered stream batch cannot score twice even if
    the caller's own once-only guard failed. Caps count the prior awards of the same rule in the
    same period as the event, whichever order the events arrived in. An event of a kind scored
    once per value (ONCE_PER: a mail's opens) earns nothing from a rule that already scored
    that value.
    """
    _aware(occurred_at, "occurred_at")
    zone = ZoneInfo(model.time_zone)
    prior = list(prior_awards)
    once_key = _once_key(event_type, properties)
    awards: list[Award] = []
    for rule in model.rules:
        if not rule.matches(event_type, properties):
            continue
        same_rule = [a for a in prior if a.rule_id == rule.rule_id]
        if any(a.event_id == event_id for a in same_rule):
            continue
        if once_key is not None and any(a.once_key == once_key for a in same_rule):
            continue
        points = rule.points
        capped_from: int | None = None
        if rule.cap is not None:
            period = _period(occurred_at, rule.cap_period, zone)
            used = sum(
                abs(a.points)
                for a in same_rule
                if _period(a.occurred_at, rule.cap_period, zone) == period
            )
            allowed = max(0, rule.cap - used)
            if allowed < abs(points):
                capped_from = points
                points = allowed if points > 0 else -allowed
        if points == 0:
            continue  # the cap is used up: nothing to store, nothing to explain
        awards.append(
            Award(
                rule.rule_id,
                points,
                event_id,
                occurred_at,
                event_type,
                capped_from,
                rule.half_life_days,
                once_key,
            )
        )
    return awards


def _once_key(event_type: str, properties: Mapping[str, Any]) -> str | None:
    """The value an event of a kind scored once per value is scored under (ONCE_PER)."""
    name = ONCE_PER.get(event_type)
    value = properties.get(name) if name is not None else None
    return f"{name}:{value}" if value else None


def decayed_points(award: Award, now: datetime, half_life_days: float | None) -> float:
    """``points * 0.5 ** (age / half-life)``. An award stamped after ``now`` (a client clock a
    little ahead) counts whole rather than more than whole."""
    if half_life_days is None:
        return float(award.points)
    age_days = max(0.0, (now - award.occurred_at).total_seconds() / SECONDS_PER_DAY)
    factor: float = 0.5 ** (age_days / half_life_days)
    return award.points * factor


def score_band(score: float, threshold: int) -> Band:
    """The score's band in the A1..D4 matrix, 1 hottest.

    1: at or over the MQL threshold; 2: at or over 60 % of it; 3: at or over 30 % of it;
    4: below that (a negative score included). With the default threshold of 70 the limits are
    70, 42 and 21.
    """
    if score >= threshold:
        return 1
    if score >= BAND_2_FRACTION * threshold:
        return 2
    if score >= BAND_3_FRACTION * threshold:
        return 3
    return 4


@dataclass(frozen=True)
class ExplanationLine:
    event_id: str
    event_type: str
    occurred_at: datetime
    rule_id: str
    description: str
    points: int
    """As awarded (after the cap)."""
    decayed: float
    """What the award is worth at ``now``: this is what the score adds up."""
    half_life_days: float | None
    note: str = ""


@dataclass(frozen=True)
class ScoreExplanation:
    lines: tuple[ExplanationLine, ...]
    awarded: int
    """The sum of the points as awarded, before decay."""
    score: float
    """The sum of the lines' decayed points: the lead's score at ``now``."""
    threshold: int
    band: Band

    def text(self) -> list[str]:
        """Human-readable lines for ``tsunagu leads score``, oldest event first."""
        rows = []
        for line in self.lines:
            decay = (
                f"  -> {line.decayed:.1f} (half-life {line.half_life_days:g} d)"
                if line.half_life_days is not None
                else ""
            )
            note = f"  [{line.note}]" if line.note else ""
            rows.append(
                f"{isoformat(line.occurred_at)}  {line.event_type or '-'}  {line.event_id}  "
                f"{line.rule_id} ({line.description or 'no description'})  "
                f"{line.points:+d}{decay}{note}"
            )
        rows.append(
            f"total {self.score:.1f} (awarded {self.awarded:+d} before decay); "
            f"MQL threshold {self.threshold}; band {self.band}"
        )
        return rows


def explain(awards: Iterable[Award], now: datetime, model: ScoringModel) -> ScoreExplanation:
    """Every award behind the score, with what it was worth and what it is worth now.

    An award whose rule has since been removed from the model still counts: it was earned under
    the rules of its day, and a score should not jump because a rule was deleted - so it goes on
    decaying by the half-life it was given with. An award stored before awards kept their
    half-life has none to go by and counts undecayed, as it always has. The explanation says
    which.
    """
    _aware(now, "now")
    lines = []
    for award in sorted(awards, key=lambda a: (a.occurred_at, a.event_id, a.rule_id)):
        rule = model.rule(award.rule_id)
        half_life = rule.half_life_days if rule is not None else award.half_life_days
        notes = []
        if rule is None and half_life is None:
            notes.append("rule no longer in the model; counted without decay")
        elif rule is None:
            notes.append("rule no longer in the model; decays by the half-life it was given with")
        if award.capped_from is not None:
            notes.append(f"capped from {award.capped_from:+d}")
        lines.append(
            ExplanationLine(
                event_id=award.event_id,
                event_type=award.event_type,
                occurred_at=award.occurred_at,
                rule_id=award.rule_id,
                description=rule.description if rule is not None else "",
                points=award.points,
                decayed=decayed_points(award, now, half_life),
                half_life_days=half_life,
                note="; ".join(notes),
            )
        )
    score = sum((line.decayed for line in lines), 0.0)
    return ScoreExplanation(
        lines=tuple(lines),
        awarded=sum(line.points for line in lines),
        score=score,
        threshold=model.mql_threshold,
        band=score_band(score, model.mql_threshold),
    )


def current_score(awards: Iterable[Award], now: datetime, model: ScoringModel) -> float:
    """The lead's score at ``now``: exactly the total :func:`explain` shows."""
    return explain(awards, now, model).score
