"""Branch, split and holdout: validated with the node's id, compiled to the journey_decide task
and a Choice on its outcome, decided from the lead (a branch) or from a draw that is the same
for the same lead every time (a split, a holdout), and recorded as a journey_decision event."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from tsunagu.errors import MissingSegment, ValidationFailed
from tsunagu.journeys.compiler import compile_journey
from tsunagu.journeys.decisions import (
    BranchSpec,
    HoldoutSpec,
    SplitSpec,
    decide,
    decision_event,
    draw,
)
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.leads.model import Lead
from tsunagu.segments.filter import NoFacts, Segment

NOW = datetime(2026, 12, 7, 1, tzinfo=UTC)
DEFINITION: dict[str, Any] = {
    "$format": "tsunagu.journey/1",
    "journey_id": "pricing_follow_up",
    "description": "Pricing readers get the offer; the others an A/B test, less a control group.",
    "start": "interest",
    "nodes": [
        {"id": "interest", "kind": "branch", "label": "the pricing interest",
         "cases": [{"outcome": "pricing", "when": "tag=interest:pricing", "next": "offer"},
                   {"outcome": "hot", "when": "score>=70", "next": "offer"}],
         "default": "control"},
        {"id": "control", "kind": "holdout", "label": "the control group", "percent": 10,
         "next": "subject_test"},
        {"id": "subject_test", "kind": "split", "label": "the subject-line test",
         "paths": [{"outcome": "a", "percent": 50, "next": "guide"},
                   {"outcome": "b", "percent": 50, "next": "stories"}]},
        {"id": "offer", "kind": "send", "label": "the offer", "template": "offer"},
        {"id": "guide", "kind": "send", "label": "the guide", "template": "guide"},
        {"id": "stories", "kind": "send", "label": "the stories", "template": "stories"},
    ],
}  # fmt: skip


def definition(change: Any = None) -> JourneyDefinition:
    data = copy.deepcopy(DEFINITION)
    if change is not None:
        change({n["id"]: n for n in data["nodes"]})
    return JourneyDefinition.model_validate(data)


def problems(change: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        compile_journey(definition(change))
    return [(e.field, e.message) for e in refused.value.errors]


def lead(lead_id: str = "lead_1", **overrides: Any) -> Lead:
    values: dict[str, Any] = {
        "lead_id": lead_id,
        "email": "hanako@example.jp",
        "fields": {},
        "sources": ["web_form"],
        "visitor_ids": set(),
        "stage": "lead",
        "created_at": "2026-11-01T00:00:00Z",
        "updated_at": "2026-11-01T00:00:00Z",
    }
    return Lead(**{**values, **overrides})


# ---------------------------------------------------------------- compiling
def test_each_decision_is_the_decide_task_then_a_choice_on_its_outcome() -> None:
    states = compile_journey(definition())["States"]
    assert compile_journey(definition())["StartAt"] == "Decide the pricing interest"
    task = states["Decide the pricing interest"]
    assert task["Parameters"]["FunctionName"] == "${JourneyDecideFunctionArn}"
    payload = task["Parameters"]["Payload"]
    assert payload["decision"] == {
        "kind": "branch",
        "cases": [
            {"outcome": "pricing", "when": "tag=interest:pricing"},
            {"outcome": "hot", "when": "score>=70"},
        ],
    }
    assert (payload["node"], payload["execution_id.$"]) == ("interest", "$$.Execution.Id")
    assert task["Next"] == "Which way after the pricing interest?"
    choice = states["Which way after the pricing interest?"]
    assert [(c["StringEquals"], c["Next"]) for c in choice["Choices"]] == [
        ("pricing", "Check the gate before the offer"),
        ("hot", "Check the gate before the offer"),
    ]
    assert choice["Default"] == "Draw the control group"
    # A holdout's lead is kept as a control group: the journey ends for it, successfully
    holdout = states["Is the lead in the control group?"]
    assert holdout["Choices"] == [
        {
            "Variable": "$.decision.outcome",
            "StringEquals": "holdout",
            "Next": "Keep the lead in the control group",
        }
    ]
    assert holdout["Default"] == "Draw the subject-line test"
    assert states["Keep the lead in the control group"]["Type"] == "Succeed"
    split = states["Which path of the subject-line test?"]
    assert [(c["StringEquals"], c["Next"]) for c in split["Choices"]] == [
        ("a", "Check the gate before the guide")
    ]
    assert split["Default"] == "Check the gate before the stories"


# ---------------------------------------------------------------- validation, by node
def test_a_branch_without_a_default_is_named() -> None:
    def drop(nodes: dict[str, Any]) -> None:
        del nodes["interest"]["default"]

    assert ("interest", "has no default: say where a lead no case selects goes") in problems(drop)


def test_a_split_whose_shares_do_not_add_up_to_100_is_named() -> None:
    def uneven(nodes: dict[str, Any]) -> None:
        nodes["subject_test"]["paths"][1]["percent"] = 40

    assert problems(uneven) == [
        (
            "subject_test",
            "shares 90% of the leads: the paths' percents must add up to 100",
        )
    ]


def test_a_case_whose_filter_cannot_be_read_is_named() -> None:
    def unreadable(nodes: dict[str, Any]) -> None:
        nodes["interest"]["cases"][1]["when"] = "score=high"

    [(node, sentence)] = problems(unreadable)
    assert node == "interest" and sentence.startswith("case 'hot': score: use")


def test_two_ways_with_one_outcome_are_named() -> None:
    def twice(nodes: dict[str, Any]) -> None:
        nodes["subject_test"]["paths"][1]["outcome"] = "a"

    assert ("subject_test", "has two paths with the outcome 'a'") in problems(twice)


def test_a_loop_through_decisions_only_is_named() -> None:
    def loop(nodes: dict[str, Any]) -> None:
        nodes["subject_test"]["paths"][1]["next"] = "interest"

    assert any("loop with no wait" in sentence for _, sentence in problems(loop))


# ---------------------------------------------------------------- deciding
def test_a_branch_takes_the_first_case_that_holds_and_records_what_it_read() -> None:
    spec = BranchSpec.model_validate(
        {"kind": "branch", "cases": [
            {"outcome": "pricing", "when": "tag=interest:pricing"},
            {"outcome": "hot", "when": "score>=70"},
        ]}
    )  # fmt: skip
    tagged = lead(tags={"interest:pricing"}, score=90.0)
    assert decide(spec, tagged, journey_id="j", node="n", now=NOW).outcome == "pricing"
    hot = decide(spec, lead(score=75.0), journey_id="j", node="n", now=NOW)
    assert (hot.outcome, hot.values) == ("hot", {"tag": [], "score": 75.0})
    cold = decide(spec, lead(score=10.0), journey_id="j", node="n", now=NOW)
    assert cold.outcome == "default"


def test_a_branch_reading_a_segment_no_longer_saved_fails_instead_of_choosing_a_way() -> None:
    # The segment "customers" was deleted while a running version's branch still reads it
    spec = BranchSpec.model_validate(
        {"kind": "branch", "cases": [{"outcome": "prospect", "when": "in_segment!=customers"}]}
    )

    class NothingSaved(NoFacts):
        def segment(self, name: str) -> Segment | None:
            return None

    with pytest.raises(MissingSegment, match="'customers'"):
        decide(spec, lead(), journey_id="j", node="n", now=NOW, facts=NothingSaved())
    # A dry run's synthetic lead, with nothing known beyond itself, is in no segment
    assert decide(spec, lead(), journey_id="j", node="n", now=NOW).outcome == "prospect"


def test_a_split_shares_leads_as_asked_and_the_same_lead_always_the_same_way() -> None:
    spec = SplitSpec.model_validate(
        {"kind": "split", "paths": [
            {"outcome": "a", "percent": 20}, {"outcome": "b", "percent": 30},
            {"outcome": "c", "percent": 50},
        ]}
    )  # fmt: skip
    outcomes = Counter(
        decide(spec, lead(f"lead_{n}"), journey_id="j", node="ab", now=NOW).outcome
        for n in range(10_000)
    )
    # 10,000 leads: each share within four standard deviations of its expectation
    for outcome, percent in (("a", 20), ("b", 30), ("c", 50)):
        expected = 100 * percent
        sigma = (10_000 * percent / 100 * (1 - percent / 100)) ** 0.5
        assert abs(outcomes[outcome] - expected) < 4 * sigma, outcomes
    first = decide(spec, lead("lead_42"), journey_id="j", node="ab", now=NOW)
    assert decide(spec, lead("lead_42"), journey_id="j", node="ab", now=NOW) == first


def test_two_splits_do_not_share_the_same_leads_alike() -> None:
    leads = [f"lead_{n}" for n in range(2_000)]
    first = [draw("j", "test_one", lead_id) < 50 for lead_id in leads]
    second = [draw("j", "test_two", lead_id) < 50 for lead_id in leads]
    agreement = sum(a == b for a, b in zip(first, second, strict=True)) / len(leads)
    assert 0.45 < agreement < 0.55  # independent: about half agree, not all


def test_a_holdout_keeps_its_share_as_a_control_group_on_the_lead() -> None:
    spec = HoldoutSpec(kind="holdout", percent=10)
    decided = [
        decide(spec, lead(f"lead_{n}"), journey_id="j", node="control", now=NOW)
        for n in range(5_000)
    ]
    held = sum(d.outcome == "holdout" for d in decided)
    assert abs(held - 500) < 4 * (5_000 * 0.1 * 0.9) ** 0.5
    assert {d.outcome for d in decided} == {"holdout", "continue"}
    kept = next(d for d in decided if d.outcome == "holdout")
    event = decision_event(
        kept, lead_id="lead_1", journey_id="j", node="control", kind="holdout",
        execution_name="pricing_follow_up-lead_1-0001",
        entered_at="2026-12-07T01:00:00Z",
    )  # fmt: skip
    assert event.type == "journey_decision"
    assert event.properties["control_group"] is True
    assert event.properties["values"] == {"draw": kept.values["draw"], "holdout_percent": 10}


def test_a_retried_decision_is_the_same_event() -> None:
    decided = decide(
        HoldoutSpec(kind="holdout", percent=10), lead(), journey_id="j", node="c", now=NOW
    )
    common: dict[str, Any] = {
        "lead_id": "lead_1", "journey_id": "j", "node": "c", "kind": "holdout",
        "execution_name": "pricing_follow_up-lead_1-0001",
    }  # fmt: skip
    once = decision_event(decided, entered_at="2026-12-07T01:00:00Z", **common)
    again = decision_event(decided, entered_at="2026-12-07T01:00:00Z", **common)
    later = decision_event(decided, entered_at="2026-12-14T01:00:00Z", **common)
    assert once.storage_key == again.storage_key
    assert later.storage_key != once.storage_key  # the node reached again, a new decision


def test_a_case_named_default_is_refused() -> None:
    def named_default(nodes: dict[str, Any]) -> None:
        nodes["interest"]["cases"][1]["outcome"] = "default"

    assert (
        "interest",
        "names a case 'default', the outcome of no case holding: rename it",
    ) in problems(named_default)


def test_a_decision_is_not_the_leads_activity() -> None:
    # A journey_decision is Tsunagu's record: it must not move the lead's last activity (which
    # would reset silent_days) nor resume a wait, nor enter a journey as if the lead acted.
    from tsunagu.routing import route_event

    class Store:
        def __init__(self) -> None:
            self.recorded: list[str] = []

        def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool:
            self.recorded.append(event_type)
            return True

    class Journeys:
        def __init__(self) -> None:
            self.by_person: list[bool] = []

        def on_event(self, event: Any, *, by_person: bool) -> None:
            self.by_person.append(by_person)

    store, journeys = Store(), Journeys()
    decided = decide(
        HoldoutSpec(kind="holdout", percent=10), lead(), journey_id="j", node="c", now=NOW
    )
    event = decision_event(
        decided, lead_id="lead_1", journey_id="j", node="c", kind="holdout",
        execution_name="j-lead_1-0001", entered_at="2026-12-07T01:00:00Z",
    )  # fmt: skip
    image = {
        "lead_id": event.lead_id,
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "properties": event.properties,
    }
    route_event(image, store=store, journeys=journeys)
    assert store.recorded == [] and journeys.by_person == [False]
    # ... where a page view is the lead's own
    route_event({**image, "type": "page_view"}, store=store, journeys=journeys)
    assert store.recorded == ["page_view"] and journeys.by_person == [False, True]
