"""Scoring an event as it arrives on the stream, and the stage change it may cause.

Exactly once: every award is written with the condition that no award for the same event and
rule exists, in the same transaction as the lead's new score (and, when the lead now meets the
MQL rule, its move to MQL). A redelivered stream batch finds its awards written and changes
nothing - so the owner hears about a new MQL once, whatever the stream does.

The MQL rule is read at every scored activity, not only at the event that crosses the
threshold: a lead already over a threshold marketing lowered, or whose grade has since risen to
``minimum_grade``, is promoted the next time it does something that scores (see
:func:`qualifying_score` for a recycled lead).

A scored event costs two requests: the lead's awards (one Query) and the transaction. A score at
or over the threshold adds one read of the lead, for its grade and stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tsunagu.clock import isoformat, parse_instant
from tsunagu.ids import new_id
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.qualification.config import GRADED_FIELDS, QualificationConfig
from tsunagu.qualification.grading import Grade, grade, qualifies_as_mql
from tsunagu.qualification.scoring import Award, ScoringModel, current_score, points_for

# Stages from which a score may promote a lead; a lead already with sales stays where it is.
PROMOTABLE_STAGES = frozenset({"lead", "recycled"})
RECYCLED = "recycled"


@dataclass(frozen=True)
class StageChange:
    from_stage: str
    to_stage: str
    by: str


@dataclass(frozen=True)
class ScoreWrite:
    lead_id: str
    awards: Sequence[Award]
    score: float
    at: str
    grade: str | None
    stage_change: StageChange | None
    events: Sequence[LeadEvent]


class ScoreStore(Protocol):
    def awards_of(self, lead_id: str) -> list[Award]: ...

    def get_lead(self, lead_id: str) -> Lead | None: ...

    def record_score(self, write: ScoreWrite) -> bool:
        """Write it all or nothing; False when the event was scored already (a redelivery).
        Raises StageMoved when the lead's stage changed underneath (read again and retry)."""
        ...


class StageMoved(Exception):
    """The lead's stage changed between the read and the write."""


@dataclass(frozen=True)
class ScoreOutcome:
    awards: Sequence[Award]
    before: float
    after: float
    stage_change: StageChange | None


def lead_attributes(lead: Lead) -> dict[str, str]:
    values = {name: field.value for name, field in lead.fields.items() if name in GRADED_FIELDS}
    return {**values, "email": lead.email}


def score_event(
    lead_id: str,
    event_id: str,
    event_type: str,
    occurred_at: str,
    properties: Mapping[str, Any],
    *,
    config: QualificationConfig,
    store: ScoreStore,
    now: datetime,
) -> ScoreOutcome | None:
    """Score one event by a person; None when no rule gives it points (or it was scored)."""
    model = config.scoring
    if not any(rule.matches(event_type, properties) for rule in model.rules):
        return None  # most events: no read, no write
    for _ in range(3):
        prior = store.awards_of(lead_id)
        awards = points_for(
            event_id, event_type, properties, parse_instant(occurred_at), prior, model
        )
        if not awards:
            return None
        before = current_score(prior, now, model)
        after = current_score([*prior, *awards], now, model)
        at = isoformat(now)
        events = [
            _event(
                "score_changed",
                lead_id,
                now,
                **{"from": round(before, 2), "to": round(after, 2)},
                event_id=event_id,
                points=sum(a.points for a in awards),
                rules=[a.rule_id for a in awards],
            )
        ]
        change, lead_grade = None, None
        if after >= model.mql_threshold:
            # Whether or not this event crossed: the rule may have been met since the last one.
            change, lead_grade = _promotion(lead_id, [*prior, *awards], after, config, store, now)
            if change is not None:
                events.append(
                    _event(
                        "stage_changed",
                        lead_id,
                        now,
                        **{"from": change.from_stage, "to": change.to_stage},
                        by=change.by,
                    )
                )
        write = ScoreWrite(lead_id, awards, after, at, lead_grade, change, events)
        try:
            if not store.record_score(write):
                return None
        except StageMoved:
            continue
        return ScoreOutcome(awards, before, after, change)
    raise StageMoved(f"lead {lead_id}'s stage kept changing while it was scored")


def recycled_at(lead: Lead) -> datetime | None:
    """When the lead was last moved to recycled (its stage history), or None if it never was."""
    for change in reversed(lead.stage_history):
        if change.get("to") == RECYCLED and change.get("at"):
            return parse_instant(change["at"])
    return None


def qualifying_score(
    lead: Lead, awards: Sequence[Award], score: float, model: ScoringModel, now: datetime
) -> float:
    """The score the MQL rule reads for this lead.

    For a recycled lead, only the points earned by activity since it was recycled. Sales sent it
    back (a lost deal, not ready yet) with the score it had; recycling leaves that score as it
    is, so the lead would otherwise be handed straight back at its next page view, on the very
    score sales just turned down. It requalifies as lead lifecycle models in MA tools make a
    recycled lead do (there, by resetting its behaviour score at recycle): by earning the
    threshold anew. Nothing is reset here - the lead's score still shows all of its history;
    only the rule counts afresh. (The total must be at or over the threshold too.)
    """
    if lead.stage != RECYCLED:
        return score
    since = recycled_at(lead)
    if since is None:
        return score  # no recorded move to recycled: nothing to count from
    return current_score([a for a in awards if a.occurred_at >= since], now, model)


def _promotion(
    lead_id: str,
    awards: Sequence[Award],
    score: float,
    config: QualificationConfig,
    store: ScoreStore,
    now: datetime,
) -> tuple[StageChange | None, str | None]:
    lead = store.get_lead(lead_id)
    if lead is None:
        return None, None
    fit = grade(lead_attributes(lead), config.grading)
    threshold = config.scoring.mql_threshold
    if lead.stage not in PROMOTABLE_STAGES:
        return None, fit.grade.value
    counted = qualifying_score(lead, awards, score, config.scoring, now)
    if not (
        qualifies_as_mql(score, fit.grade, threshold, config.minimum_grade)
        and qualifies_as_mql(counted, fit.grade, threshold, config.minimum_grade)
    ):
        return None, fit.grade.value
    if lead.stage == RECYCLED:
        rule = f"rule: score {counted:g} since recycled >= {threshold}, grade {fit.grade.value}"
    else:
        rule = f"rule: score {score:g} >= {threshold}, grade {fit.grade.value}"
    if config.minimum_grade is not Grade.D:
        rule += f" >= {config.minimum_grade.value}"
    return StageChange(lead.stage, "mql", rule), fit.grade.value


def _event(kind: str, lead_id: str, now: datetime, **properties: Any) -> LeadEvent:
    return LeadEvent(new_id("evt", now), kind, isoformat(now), lead_id, properties=properties)
