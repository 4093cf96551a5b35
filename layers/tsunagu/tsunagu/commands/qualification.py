"""The qualification rules (scoring, grading, the MQL threshold, owner rules, the CRM merge
policy), as marketers read and change them; each change goes in the audit log, section by
section, so "who lowered the MQL threshold?" has an answer. And what the rules make of the
leads: a lead's score explained, the hot list for sales, the CRM pushes that failed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from tsunagu.client_values import validation_failed
from tsunagu.clock import Clock
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.commands.definitions import Revised
from tsunagu.errors import ConcurrentUpdate
from tsunagu.leads.lookup import LeadFinder, lead_by_email
from tsunagu.leads.model import Lead
from tsunagu.leads.search import MAX_PAGE_SIZE, LeadPage, LeadQuery
from tsunagu.leads.search_words import highest_from
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.grading import GradeReason, grade, matrix_cell
from tsunagu.qualification.pipeline import lead_attributes
from tsunagu.qualification.scores import LeadScores
from tsunagu.qualification.scoring import Award, ScoreExplanation, explain, score_band

NOT_HOT = frozenset({"customer", "disqualified"})
"""Stages the hot list leaves out: sales has them already, or has ruled them out."""
HOT_LIST_PAGE = MAX_PAGE_SIZE
"""Leads read from the score index at a time for the hot list (see :func:`hot_list`)."""


class Rules(Protocol):
    def config(self) -> QualificationConfig: ...

    def config_revision(self) -> tuple[QualificationConfig, int]: ...

    def replace_config(self, config: QualificationConfig, *, over: int) -> int:
        """Save them if still at revision ``over``: their revision now, else ConcurrentUpdate
        (carrying the revision now), checked in the write itself (tsunagu.store.revisions)."""
        ...

    def awards_of(self, lead_id: str) -> list[Award]: ...

    def lead_scores(self, now: datetime) -> LeadScores: ...

    def failed_pushes(self) -> list[dict[str, Any]]: ...


class Leads(LeadFinder, Protocol):
    def search(self, query: LeadQuery) -> LeadPage: ...


@dataclass(frozen=True)
class QualificationCommands:
    rules: Rules
    leads: Leads
    audit: AuditLog
    clock: Clock


@dataclass(frozen=True)
class ScoreReport:
    """A lead's score as sales and marketing read it: every award behind it, decay included,
    the grade with its reasons, the matrix cell and the stage history."""

    lead: Lead
    explanation: ScoreExplanation
    threshold: int
    grade: str
    cell: str
    fit: list[GradeReason]

    @property
    def score(self) -> float:
        return self.explanation.score

    def as_json(self) -> dict[str, Any]:
        return {
            "email": self.lead.email,
            "lead_id": self.lead.lead_id,
            "score": self.score,
            "threshold": self.threshold,
            "grade": self.grade,
            "cell": self.cell,
            "stage": self.lead.stage,
            "lines": [
                {
                    "event_id": line.event_id,
                    "event_type": line.event_type,
                    "occurred_at": line.occurred_at.isoformat(),
                    "rule_id": line.rule_id,
                    "description": line.description,
                    "points": line.points,
                    "decayed": line.decayed,
                    "half_life_days": line.half_life_days,
                    "note": line.note,
                }
                for line in self.explanation.lines
            ],
            "fit": [
                {
                    "attribute": reason.attribute,
                    "value": reason.value,
                    "matched": reason.matched,
                    "points": reason.points,
                }
                for reason in self.fit
            ],
            "stage_history": list(self.lead.stage_history),
        }


@dataclass(frozen=True)
class HotLead:
    lead: Lead
    score: float
    """At the time asked, decay included."""

    def as_json(self) -> dict[str, Any]:
        owner = self.lead.fields.get("owner_email")
        return {
            "email": self.lead.email,
            "lead_id": self.lead.lead_id,
            "score": self.score,
            "grade": self.lead.grade,
            "stage": self.lead.stage,
            "last_activity_at": self.lead.last_activity_at,
            "owner": owner.value if owner is not None else None,
        }


def explain_score(ports: QualificationCommands, actor: Actor, email: str) -> ScoreReport:
    """Every point behind the lead's score as of now, decay included, and its grade."""
    allowed(ports.audit, ports.clock, actor, "leads.score", f"lead:{email}")
    lead = lead_by_email(ports.leads, email)
    config = ports.rules.config()
    explanation = explain(ports.rules.awards_of(lead.lead_id), ports.clock.now(), config.scoring)
    fit = grade(lead_attributes(lead), config.grading)
    band = score_band(explanation.score, config.scoring.mql_threshold)
    return ScoreReport(
        lead=lead,
        explanation=explanation,
        threshold=config.scoring.mql_threshold,
        grade=fit.grade.value,
        cell=matrix_cell(fit.grade, band),
        fit=list(fit.reasons),
    )


def hot_list(ports: QualificationCommands, actor: Actor, limit: int = 20) -> list[HotLead]:
    """For sales: leads by their score now (decay included, as ``leads score`` explains it),
    then grade, then how recently they were active; customers and disqualified leads left out.

    Read through the leads' score index, highest stored score first, never a scan, and only as
    far as the list needs. The stored score is the score as of the lead's last scored event;
    decay only takes a fading award towards 0, so while no penalty fades the score now is never
    above it, and reading stops at the first lead stored (as the index ranks it) below the
    list's last score now: no lead after it can rank above that one. Many leads hot long ago
    make the read longer, never the list wrong. With a fading penalty a score now can be above
    the stored one, and every scored lead is read (tsunagu.qualification.scores).
    """
    allowed(ports.audit, ports.clock, actor, "leads.hot", "leads")
    scores = ports.rules.lead_scores(ports.clock.now())
    candidates = (
        lead
        for lead in _by_stored_score(ports.leads)
        if lead.score is not None and lead.stage not in NOT_HOT
    )
    ranked = [
        HotLead(lead, score)
        for lead, score in scores.contenders(
            candidates, limit, most_from=lambda lead: highest_from(lead.score)
        )
    ]
    ranked.sort(key=lambda hot: hot.lead.last_activity_at or "", reverse=True)
    ranked.sort(key=lambda hot: hot.lead.grade or "Z")
    ranked.sort(key=lambda hot: hot.score, reverse=True)
    return ranked[:limit]


def _by_stored_score(leads: Leads) -> Iterator[Lead]:
    """Every lead, highest stored score first (the index's order), a page at a time as read."""
    cursor: str | None = None
    while True:
        page = leads.search(LeadQuery(limit=HOT_LIST_PAGE, cursor=cursor))
        yield from page.leads
        cursor = page.next_cursor
        if cursor is None:
            return


def failed_pushes(ports: QualificationCommands, actor: Actor) -> list[dict[str, Any]]:
    """Pushes to the CRM that failed every retry, newest first (parked for a person to see)."""
    allowed(ports.audit, ports.clock, actor, "crm.pushes", "crm")
    return ports.rules.failed_pushes()


def show(ports: QualificationCommands, actor: Actor) -> Revised[QualificationConfig]:
    """The rules as saved now, with their revision: what an editor sends back when it saves."""
    with recorded(ports.audit, ports.clock, actor, "qualification.show", "qualification"):
        return Revised(*ports.rules.config_revision())


def replace_sections(
    ports: QualificationCommands,
    actor: Actor,
    given: Mapping[str, Any],
    *,
    over: int | None = None,
) -> Revised[QualificationConfig]:
    """Replace the sections ``given`` has (scoring, grading, minimum_grade, owners, crm_merge);
    the others stay as they are saved now - not as this process last read them: another admin
    may have saved one a moment ago. ValidationFailed says what is wrong, field by field.

    ``over``: the revision the editor read - saved only if the rules are still at it, else
    ConcurrentUpdate (nothing stored, the revision now in the error), or a colleague's change
    made meanwhile would be silently lost. None (the CLI, scripts): over whatever is saved."""
    with recorded(ports.audit, ports.clock, actor, "qualification.set", "qualification") as log:
        for _ in range(SAVE_ATTEMPTS if over is None else 1):
            saved, revision = ports.rules.config_revision()
            current = saved.model_dump(mode="json")
            try:
                # Strictly, as JSON reads (the CLI's file and the API's body alike): "60" is not 60
                merged = json.dumps({**current, **given})
                config = QualificationConfig.model_validate_json(merged, strict=True)
            except ValidationError as error:
                raise validation_failed(error, "(rules)") from None
            try:
                # Saved only over the revision read (the editor's, or else this one's): if
                # another save landed since, the write's own condition refuses this one
                stored = ports.rules.replace_config(config, over=revision if over is None else over)
            except ConcurrentUpdate:
                if over is not None:
                    raise
                continue  # another section saved meanwhile: merge into that one, as asked
            log.changed(current, config.model_dump(mode="json"))
            return Revised(config, stored)
        raise ConcurrentUpdate("the rules kept changing while they were saved: try again")


SAVE_ATTEMPTS = 3
