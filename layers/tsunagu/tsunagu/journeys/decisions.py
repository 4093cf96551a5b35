"""A journey's decisions about a lead — ``branch``, ``split``, ``holdout``, and a ``wait_for``
that timed out — and the ``journey_decision`` event that says, on the lead's timeline, why it
went the way it did. (A ``wait_for`` a person's event ends is recorded by route_events, which
resumes it: tsunagu.journeys.waits.wait_decision.)

A split or holdout draws from the lead, the journey and the node alone, so the same lead is
always on the same side of an A/B test however often it enters or the step is retried; a branch
reads the lead as it is when it gets there and records the values its cases read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.journeys.definition import Branch, Holdout, Split
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.segments.filter import MAX_FILTER, NO_FACTS, Facts, Segment

DECISION_EVENT = "journey_decision"
HOLDOUT = "holdout"
CONTINUE = "continue"
TIMED_OUT = "timed_out"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseSpec(_Spec):
    outcome: str = Field(min_length=1, max_length=40)
    when: str = Field(min_length=1, max_length=MAX_FILTER)


class BranchSpec(_Spec):
    kind: Literal["branch"]
    cases: list[CaseSpec] = Field(min_length=1, max_length=10)


class PathSpec(_Spec):
    outcome: str = Field(min_length=1, max_length=40)
    percent: int = Field(ge=1, le=99)


class SplitSpec(_Spec):
    kind: Literal["split"]
    paths: list[PathSpec] = Field(min_length=2, max_length=10)


class HoldoutSpec(_Spec):
    kind: Literal["holdout"]
    percent: int = Field(ge=1, le=50)


class TimedOutSpec(_Spec):
    """Nothing a ``wait_for`` listened for happened within its time: nothing to decide, only
    to record (the state machine's timeout already chose the way)."""

    kind: Literal["timed_out"]
    within_seconds: int = Field(ge=1)


Spec = BranchSpec | SplitSpec | HoldoutSpec | TimedOutSpec
DecisionSpec = Annotated[Spec, Field(discriminator="kind")]


def node_kind(spec: Spec) -> str:
    """The kind of node the decision was taken at, as the event records it."""
    return "wait_for" if isinstance(spec, TimedOutSpec) else spec.kind


def spec_of(node: Branch | Split | Holdout) -> BranchSpec | SplitSpec | HoldoutSpec:
    """What journey_decide is asked to decide at a definition's node: the compiler sends it as
    the task's ``decision``, the dry run decides it directly."""
    if isinstance(node, Branch):
        cases = [CaseSpec(outcome=c.outcome, when=c.when) for c in node.cases]
        return BranchSpec(kind="branch", cases=cases)
    if isinstance(node, Split):
        paths = [PathSpec(outcome=p.outcome, percent=p.percent) for p in node.paths]
        return SplitSpec(kind="split", paths=paths)
    return HoldoutSpec(kind="holdout", percent=node.percent)


@dataclass(frozen=True)
class Decided:
    outcome: str
    values: dict[str, Any]
    """Why: the values a branch's cases read, or the lead's draw (0-99) and the shares."""


def draw(journey_id: str, node: str, lead_id: str) -> int:
    """The lead's number from 0 to 99 at this node: the same every time, and independent from
    one node (and journey) to the next, so two tests do not split the same leads alike."""
    digest = hashlib.sha256(f"{journey_id}\n{node}\n{lead_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def decide(
    spec: Spec,
    lead: Lead,
    *,
    journey_id: str,
    node: str,
    now: datetime,
    facts: Facts = NO_FACTS,
) -> Decided:
    if isinstance(spec, TimedOutSpec):
        return Decided(TIMED_OUT, {"within_seconds": spec.within_seconds})
    if isinstance(spec, BranchSpec):
        read: dict[str, Any] = {}
        chosen = "default"
        for case in spec.cases:
            segment = Segment.parse(case.when)
            read.update(segment.values(lead, now, facts))
            if segment.selects(lead, now, facts):
                chosen = case.outcome
                break
        return Decided(chosen, read)
    number = draw(journey_id, node, lead.lead_id)
    if isinstance(spec, HoldoutSpec):
        outcome = HOLDOUT if number < spec.percent else CONTINUE
        return Decided(outcome, {"draw": number, "holdout_percent": spec.percent})
    upper = 0
    for path in spec.paths:
        upper += path.percent
        if number < upper:
            break
    shares = {p.outcome: p.percent for p in spec.paths}
    return Decided(path.outcome, {"draw": number, "shares": shares})


def decision_event(
    decided: Decided,
    *,
    lead_id: str,
    journey_id: str,
    node: str,
    kind: str,
    execution_name: str,
    entered_at: str,
    journey_version: int | None = None,
) -> LeadEvent:
    """The event, keyed on the execution, the node and when the step was entered: a retried
    step writes the same item again rather than a second decision."""
    seed = f"{execution_name}\n{node}\n{entered_at}".encode()
    event_id = "dec_" + hashlib.sha256(seed).hexdigest()[:26]
    return LeadEvent(
        event_id=event_id,
        type=DECISION_EVENT,
        occurred_at=entered_at,
        lead_id=lead_id,
        properties={
            "journey_id": journey_id,
            "node": node,
            "kind": kind,
            "outcome": decided.outcome,
            "values": {k: v for k, v in decided.values.items() if v is not None},
            "execution_name": execution_name,
            "control_group": kind == "holdout" and decided.outcome == HOLDOUT,
            **({"journey_version": journey_version} if journey_version is not None else {}),
        },
    )
