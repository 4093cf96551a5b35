"""A journey's AWS cost at list price: passes from the counters (measured) or from what flowed in
(estimated), each pass's transitions and invocations read from the compiled ASL, and the dollars
worked out by hand here.

By hand, with the default prices: a transition is $0.000025; an invocation is $0.0000002 plus
0.5 GB x 0.1 s x $0.0000133334 = $0.00000086667; a mail is $0.0001. From the compiler: a send is
3 transitions and 2 invocations (gate, its Choice, the send), a wait 2 and 1 (schedule, wait),
a branch or split 2 and 1 (decide, Choice), update_lead / notify_owner / webhook 1 and 1, an end 1
and 0 (Succeed).
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from tsunagu.errors import ValidationFailed
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.reports.cost import PRICES, JourneyCost, NodeCost, journey_cost

PER_INVOCATION = Decimal("0.00000086667")


def definition(start: str, *nodes: dict[str, Any]) -> JourneyDefinition:
    return JourneyDefinition.model_validate(
        {
            "$format": "tsunagu.journey/1",
            "journey_id": "cost_test",
            "description": "A journey whose cost is worked out by hand.",
            "start": start,
            "nodes": list(nodes),
        }
    )


def send(node_id: str, next_node: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": node_id,
        "kind": "send",
        "label": f"mail {node_id}",
        "template": node_id.replace("_", "-"),
    }
    if next_node:
        node["next"] = next_node
    return node


def wait(node_id: str, next_node: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "kind": "wait",
        "label": f"the wait {node_id}",
        "rule": {"kind": "business_days_later", "days": 2, "at": "10:00"},
        "next": next_node,
    }


def end(node_id: str = "done") -> dict[str, Any]:
    return {"id": node_id, "kind": "end", "label": f"The journey ends at {node_id}"}


def row(cost: JourneyCost, node_id: str) -> NodeCost:
    return next(n for n in cost.nodes if n.node_id == node_id)


def shape(cost: JourneyCost, node_id: str) -> tuple[int, bool, int, int, int]:
    found = row(cost, node_id)
    return (found.passes, found.measured, found.transitions, found.invocations, found.mails)


def test_a_thousand_executions_through_send_wait_send() -> None:
    journey = definition("first", send("first", "pause"), wait("pause", "second"), send("second"))

    cost = journey_cost(journey, {"first": {"sent": 1000}, "second": {"sent": 1000}})

    assert shape(cost, "first") == (1000, True, 3000, 2000, 1000)
    assert shape(cost, "pause") == (1000, False, 2000, 1000, 0)
    assert shape(cost, "second") == (1000, True, 3000, 2000, 1000)
    assert (cost.executions, cost.transitions, cost.invocations, cost.mails) == (
        1000,
        8000,
        5000,
        2000,
    )
    assert cost.step_functions_usd == Decimal("0.200000")  # 8,000 x $0.000025
    assert cost.lambda_usd == Decimal("0.004333")  # 5,000 x $0.00000086667 = $0.00433335
    assert cost.ses_usd == Decimal("0.200000")  # 2,000 x $0.0001
    assert cost.total_usd == Decimal("0.404333")


def test_a_branch_sends_each_outcome_into_its_own_unmeasured_wait() -> None:
    journey = definition(
        "interest",
        {
            "id": "interest",
            "kind": "branch",
            "label": "the interest",
            "cases": [{"outcome": "hot", "when": "score>=50", "next": "hot_wait"}],
            "default": "cold_wait",
        },
        wait("hot_wait", "hot_mail"),
        wait("cold_wait", "cold_mail"),
        send("hot_mail"),
        send("cold_mail"),
    )
    counts = {
        "interest": {"decided": 100, "outcome:hot": 30, "outcome:default": 70},
        "hot_mail": {"sent": 30, "delivered": 29},
        "cold_mail": {"sent": 65},  # the gate let five leads go
    }

    cost = journey_cost(journey, counts)

    assert shape(cost, "interest") == (100, True, 200, 100, 0)
    assert shape(cost, "hot_wait") == (30, False, 60, 30, 0)
    assert shape(cost, "cold_wait") == (70, False, 140, 70, 0)
    assert shape(cost, "hot_mail") == (30, True, 90, 60, 30)
    assert shape(cost, "cold_mail") == (65, True, 195, 130, 65)
    assert (cost.executions, cost.transitions, cost.invocations, cost.mails) == (100, 685, 390, 95)
    assert cost.step_functions_usd == Decimal("0.017125")  # 685 x $0.000025
    assert cost.lambda_usd == Decimal("0.000338")  # 390 x $0.00000086667 = $0.0003380013
    assert cost.ses_usd == Decimal("0.009500")
    assert cost.total_usd == Decimal("0.026963")


def test_two_paths_of_a_split_meeting_at_one_wait_add_up() -> None:
    journey = definition(
        "subject_test",
        {
            "id": "subject_test",
            "kind": "split",
            "label": "the subject test",
            "paths": [
                {"outcome": "a", "percent": 60, "next": "tell_owner"},
                {"outcome": "b", "percent": 40, "next": "tell_crm"},
            ],
        },
        {
            "id": "tell_owner",
            "kind": "notify_owner",
            "label": "Tell the owner about the test",
            "message": "This lead is in the subject-line test.",
            "next": "pause",
        },
        {
            "id": "tell_crm",
            "kind": "webhook",
            "label": "Tell the CRM about the test",
            "event": "lead.in_test",
            "next": "pause",
        },
        wait("pause", "mail"),
        send("mail"),
    )
    counts = {"subject_test": {"decided": 200, "outcome:a": 120, "outcome:b": 80}}

    cost = journey_cost(journey, counts | {"mail": {"sent": 190}})

    assert shape(cost, "subject_test") == (200, True, 400, 200, 0)
    # Each step behind its gate: the gate, its Choice and the step (3, 2)
    assert shape(cost, "tell_owner") == (120, False, 360, 240, 0)
    assert shape(cost, "tell_crm") == (80, False, 240, 160, 0)
    assert shape(cost, "pause") == (200, False, 400, 200, 0)
    assert shape(cost, "mail") == (190, True, 570, 380, 190)


def test_a_wait_for_counts_each_outcome_its_own_way() -> None:
    # Matched: the task and the question (2, 1); timed out: the task and the decide task that
    # records it (2, 2).
    journey = definition(
        "response",
        {
            "id": "response",
            "kind": "wait_for",
            "label": "a response",
            "events": [
                {"type": "link_clicked", "outcome": "clicked"},
                {"type": "form_submitted", "outcome": "filled"},
            ],
            "within_seconds": 86400,
            "exits": [
                {"outcome": "clicked", "next": "case_study"},
                {"outcome": "filled", "next": "tag"},
            ],
            "question": "Did the lead click or fill the form?",
            "timed_out": "done",
        },
        send("case_study"),
        {
            "id": "tag",
            "kind": "update_lead",
            "label": "Tag the lead as a form filler",
            "add_tags": ["filled"],
            "next": "done",
        },
        end(),
    )
    counts = {
        "response": {
            "decided": 100,
            "outcome:clicked": 20,
            "outcome:filled": 10,
            "outcome:timed_out": 70,
        },
        "case_study": {"sent": 20},
    }

    cost = journey_cost(journey, counts)

    assert shape(cost, "response") == (100, True, 200, 170, 0)  # 30 x (2, 1) + 70 x (2, 2)
    assert shape(cost, "tag") == (10, False, 30, 20, 0)  # its gate, the Choice, the update
    assert shape(cost, "done") == (80, False, 80, 0, 0)  # the 70 timed out and the 10 tagged
    assert cost.executions == 100


def test_a_journey_starting_with_a_wait_takes_its_executions_from_the_first_mail() -> None:
    journey = definition("pause", wait("pause", "mail"), send("mail", "done"), end())

    cost = journey_cost(journey, {"mail": {"sent": 500}})

    assert cost.executions == 500
    assert shape(cost, "pause") == (500, False, 1000, 500, 0)
    assert shape(cost, "done") == (500, False, 500, 0, 0)
    assert (cost.transitions, cost.invocations) == (3000, 1500)


def reminder_loop(start: str) -> JourneyDefinition:
    """The tip, then a click or a reminder every two business days until one."""
    return definition(
        start,
        send("tip", "clicked"),
        {
            "id": "clicked",
            "kind": "wait_for",
            "label": "a click",
            "events": [{"type": "link_clicked", "outcome": "clicked"}],
            "within_seconds": 172800,
            "exits": [{"outcome": "clicked", "next": "done"}],
            "timed_out": "pause",
        },
        wait("pause", "reminder"),
        send("reminder", "clicked"),
        end(),
    )


def test_a_reminder_loop_counts_each_round() -> None:
    counts = {
        "tip": {"sent": 1000},
        "clicked": {"decided": 1600, "outcome:clicked": 700, "outcome:timed_out": 900},
        "reminder": {"sent": 600},  # the gate let 300 of the 900 go
    }

    cost = journey_cost(reminder_loop("tip"), counts)

    assert cost.executions == 1000
    assert shape(cost, "tip") == (1000, True, 3000, 2000, 1000)
    # Without a question the click leaves straight from the task (1, 1); a timeout (2, 2).
    assert shape(cost, "clicked") == (1600, True, 700 + 1800, 700 + 1800, 0)
    assert shape(cost, "pause") == (900, False, 1800, 900, 0)
    assert shape(cost, "reminder") == (600, True, 1800, 1200, 600)
    assert shape(cost, "done") == (700, False, 700, 0, 0)
    assert (cost.transitions, cost.invocations, cost.mails) == (9800, 6600, 1600)


def test_a_loop_back_to_a_wait_at_the_start_is_not_counted_as_executions() -> None:
    # The reminder's 1,500 mails: 1,000 leads that started, and 500 back from a timeout.
    counts = {
        "reminder": {"sent": 1500},
        "clicked": {"decided": 1500, "outcome:clicked": 1000, "outcome:timed_out": 500},
    }
    loop = reminder_loop("pause")
    journey = loop.model_copy(update={"nodes": [n for n in loop.nodes if n.id != "tip"]})

    cost = journey_cost(journey, counts)

    assert cost.executions == 1000
    assert shape(cost, "pause") == (1500, False, 3000, 1500, 0)


def test_a_loop_with_no_decision_is_counted_once_around() -> None:
    journey = definition(
        "mail",
        send("mail", "pause"),
        wait("pause", "tag"),
        {
            "id": "tag",
            "kind": "update_lead",
            "label": "Tag the lead as waiting",
            "add_tags": ["waiting"],
            "next": "pause",
        },
    )

    cost = journey_cost(journey, {"mail": {"sent": 10}})

    assert shape(cost, "pause") == (10, False, 20, 10, 0)
    assert shape(cost, "tag") == (10, False, 30, 20, 0)


def test_a_holdout_s_control_group_ends_there() -> None:
    journey = definition(
        "control",
        {
            "id": "control",
            "kind": "holdout",
            "label": "the control group",
            "percent": 10,
            "next": "mail",
        },
        send("mail"),
    )
    counts = {
        "control": {"decided": 1000, "outcome:holdout": 100, "outcome:continue": 900},
        "mail": {"sent": 900},
    }

    cost = journey_cost(journey, counts)

    # Kept: decide, Choice, the Succeed that keeps them (3, 1); going on: (2, 1).
    assert shape(cost, "control") == (1000, True, 100 * 3 + 900 * 2, 1000, 0)
    assert shape(cost, "mail") == (900, True, 2700, 1800, 900)
    assert cost.executions == 1000
    assert cost.step_functions_usd == Decimal("0.120000")  # 4,800 x $0.000025
    assert cost.lambda_usd == Decimal("0.002427")  # 2,800 x $0.00000086667 = $0.002426676
    assert cost.ses_usd == Decimal("0.090000")


def test_no_counts_cost_nothing() -> None:
    journey = definition("first", send("first", "pause"), wait("pause", "second"), send("second"))

    cost = journey_cost(journey, {})

    assert cost.executions == cost.transitions == cost.invocations == cost.mails == 0
    assert [n.passes for n in cost.nodes] == [0, 0, 0]
    assert cost.as_dict()["usd"] == {
        "step_functions": "0.000000",
        "lambda": "0.000000",
        "ses": "0.000000",
        "total": "0.000000",
    }


def test_a_journey_with_nothing_counted_has_no_executions() -> None:
    tag = {"id": "tag", "kind": "update_lead", "label": "Tag it", "stage": "mql", "next": "done"}
    journey = definition("pause", wait("pause", "tag"), tag, end())

    cost = journey_cost(journey, {"pause": {"sent": 5}})  # not a node that counts

    assert cost.executions == 0
    assert [n.passes for n in cost.nodes] == [0, 0, 0]


def test_the_lambda_assumptions_can_be_replaced() -> None:
    journey = definition("first", send("first", "pause"), wait("pause", "second"), send("second"))
    longer = replace(PRICES, lambda_seconds_per_invocation=Decimal("0.3"))

    cost = journey_cost(journey, {"first": {"sent": 1000}, "second": {"sent": 1000}}, longer)

    # 5,000 x ($0.0000002 + 0.5 x 0.3 x $0.0000133334) = 5,000 x $0.00000220001
    assert cost.lambda_usd == Decimal("0.011000")
    assert cost.prices.as_dict()["lambda_seconds_per_invocation"] == "0.3"


def test_the_cost_as_json() -> None:
    journey = definition("first", send("first", "pause"), wait("pause", "second"), send("second"))

    shown = journey_cost(journey, {"first": {"sent": 1000}, "second": {"sent": 1000}}).as_dict()

    assert json.loads(json.dumps(shown)) == shown
    assert shown["usd"]["total"] == "0.404333"
    assert shown["nodes"][1] == {
        "node": "pause",
        "kind": "wait",
        "passes": 1000,
        "measured": False,
        "transitions": 2000,
        "invocations": 1000,
        "mails": 0,
    }
    assert shown["prices"]["step_functions_per_transition"] == "0.000025"


def test_a_definition_the_compiler_refuses_is_refused() -> None:
    broken = definition("first", send("first", "nowhere"))

    with pytest.raises(ValidationFailed):
        journey_cost(broken, {})


def test_the_price_of_one_invocation() -> None:
    assert PRICES.lambda_per_invocation == PER_INVOCATION
