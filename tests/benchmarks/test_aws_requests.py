"""How many AWS requests one capture_form submission makes (goal for a new lead: <= 3).

Every botocore API call in the process is counted (BaseClient._make_api_call is wrapped while the
handler runs), whichever client makes it: PynamoDB's per-table connections, the connection of the
cross-table transaction, or anything else. Calls go to moto in-process. Counts are deterministic;
the goal is printed as met or not met, never asserted.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import botocore.session
from tsunagu import services
from tsunagu.forms.model import ConsentSpec, FormDefinition, FormField
from tsunagu.store import tables
from tsunagu.store.forms import forget_cached_forms

from tests.benchmarks.conftest import BenchReport
from tests.conftest import AwsStack, load_event

GOAL = 3
SITE = "https://www.example.com"
TITLE = "capture_form AWS requests per submission"


@dataclass
class Recorded:
    calls: list[str] = field(default_factory=list)
    """Operation names, with the table (or the tables of a transaction) each one touched."""
    clients_created: list[str] = field(default_factory=list)
    """The service of every botocore client created."""


@contextmanager
def recording_aws_calls(table_labels: dict[str, str]) -> Iterator[Recorded]:
    """Count every botocore API call, and every botocore client created, in this process."""
    recorded = Recorded()
    make_api_call = botocore.client.BaseClient._make_api_call
    create_client = botocore.session.Session.create_client

    def counting_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        recorded.calls.append(describe_call(operation_name, api_params, table_labels))
        return make_api_call(client, operation_name, api_params)

    def counting_create(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        recorded.clients_created.append(service_name)
        return create_client(session, service_name, *args, **kwargs)

    botocore.client.BaseClient._make_api_call = counting_call  # type: ignore[method-assign]
    botocore.session.Session.create_client = counting_create  # type: ignore[method-assign]
    try:
        yield recorded
    finally:
        botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def describe_call(operation: str, params: dict[str, Any], table_labels: dict[str, str]) -> str:
    if "TableName" in params:
        return f"{operation}({table_labels.get(params['TableName'], params['TableName'])})"
    if "TransactItems" in params:
        names = [next(iter(item.values()))["TableName"] for item in params["TransactItems"]]
        labels = [table_labels.get(name, name) for name in names]
        counted = [
            f"{label} x{labels.count(label)}" if labels.count(label) > 1 else label
            for label in dict.fromkeys(labels)
        ]
        return f"{operation}({len(labels)} items: {', '.join(counted)})"
    return operation


def seed_demo_form(aws: AwsStack) -> None:
    settings = aws.settings()
    services.form_repository(settings).put(
        FormDefinition(
            form_id="demo",
            name="White paper",
            fields=[
                FormField(name="email", type="email", required=True),
                FormField(name="name", max_length=100),
                FormField(name="company", max_length=200),
                FormField(name="consent", type="checkbox"),
            ],
            allowed_origins=[SITE],
            consent=ConsentSpec(text="Send me product news.", version="2026-11"),
            thank_you_url=f"{SITE}/thanks",
        ),
        services.clock(settings),
    )


def start_cold_container() -> None:
    """What a new execution environment starts without: cached forms, stores, bound tables."""
    forget_cached_forms()
    services.lead_repository.cache_clear()
    services.form_repository.cache_clear()
    services.clock.cache_clear()
    tables.bind_tables.cache_clear()


def with_body(event: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    """The event with fields of its JSON body changed (None removes a field)."""
    changed = copy.deepcopy(event)
    body = json.loads(changed["body"])
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    changed["body"] = json.dumps(body)
    return changed


def test_capture_form_aws_requests(aws: AwsStack, bench_report: BenchReport) -> None:
    new_lead = load_event("capture_form", "new_lead_json")
    another_new_lead = with_body(
        new_lead,
        email="taro.yamada@example.jp",
        name="Taro Yamada",
        submission_id="9b2d7c41-5e8a-4f60-b3c9-0a1e2f3d4c5b",
        visitor_id="v_0a1b2c3d4e5f6a7b",
    )
    same_address_again = with_body(new_lead, submission_id=None, company="Example Holdings KK")
    # (label, event, expected status, whether the goal applies: it is about new leads)
    scenarios = [
        ("new lead, cold container (form not cached)", new_lead, 201, True),
        ("new lead, form cached (a second address)", another_new_lead, 201, True),
        ("existing lead (same address, no submission_id)", same_address_again, 200, False),
        ("replay (new_lead_json again, same submission_id)", new_lead, 201, False),
    ]
    labels = {name: logical_id.removesuffix("Table") for logical_id, name in aws.tables.items()}

    seed_demo_form(aws)  # before anything is counted
    start_cold_container()
    function = aws.function("capture_form")  # its module is imported at the first invocation

    results: list[tuple[str, Recorded, dict[str, Any]]] = []
    for label, event, _status, _goal in scenarios:
        with recording_aws_calls(labels) as recorded:
            response: dict[str, Any] = function.invoke(event)
        results.append((label, recorded, response))

    # Correctness, not speed: each submission got its answer and its calls were seen.
    for (label, _event, status, _goal), (_, recorded, response) in zip(
        scenarios, results, strict=True
    ):
        assert response["statusCode"] == status, (label, response)
        assert recorded.calls, label
    first_lead = json.loads(results[0][2]["body"])["lead_id"]
    assert json.loads(results[1][2]["body"])["lead_id"] != first_lead
    assert json.loads(results[2][2]["body"])["lead_id"] == first_lead
    assert json.loads(results[3][2]["body"])["lead_id"] == first_lead
    assert results[3][2]["headers"].get("idempotent-replayed") == "true"

    lines = [
        "Every botocore API call made while the handler ran (moto in-process); one invocation",
        "each, in this order, after the demo form was seeded. Goal: a new-lead submission",
        f"makes <= {GOAL}.",
        "",
        f"  {'submission':<50} {'status':>6} {'requests':>8}  goal <= {GOAL}",
    ]
    new_lead_counts = []
    for (label, _event, _status, goal), (_, recorded, response) in zip(
        scenarios, results, strict=True
    ):
        count = len(recorded.calls)
        if goal:
            new_lead_counts.append(count)
            judged = "met" if count <= GOAL else "NOT MET"
        else:
            judged = "(no goal: not a new lead)"
        lines.append(f"  {label:<50} {response['statusCode']:>6} {count:>8}  {judged}")
        lines.extend(f"      {call}" for call in recorded.calls)
    worst = max(new_lead_counts)
    lines += [
        "",
        f"  a new-lead submission: at most {worst} requests   "
        f"(goal <= {GOAL}: {'met' if worst <= GOAL else 'NOT MET'})",
        "",
        "  for information, DynamoDB clients (botocore sessions) created during each invocation:",
        "    "
        + ", ".join(f"{recorded.clients_created.count('dynamodb')}" for _, recorded, _ in results)
        + "   (one per table model first used, and one for transactions, built once)",
    ]
    bench_report.add(TITLE, *lines)
