"""How many AWS requests one invocation makes, per function.

- capture_form, one submission (goal for a new lead: <= 3);
- track_event (``POST /t/events``), one batch of 50 events (goal: <= 3, i.e. batch writes).

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
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.client
import botocore.session

from tests.conftest import AwsStack, load_event
from tests.support.bench_report import BenchReport
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.leads.lookup import lead_by_email
from tsunagu.store import tables
from tsunagu.store.stored_forms import forget_cached_forms
from tsunagu.store.tracking import forget_cached_sites
from tsunagu.tracking.browser import MAX_EVENTS
from tsunagu.tracking.sites import SiteDefinition

GOAL = 3
SITE = "https://www.example.com"
TITLE = "capture_form AWS requests per submission"
TRACK_GOAL = 3
BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem request (DynamoDB's limit)
TRACK_TITLE = "track_event (POST /t/events) AWS requests per batch of 50 events"
VISITORS = [f"v_{n:016x}" for n in (0x51A7E0C1, 0x51A7E0C2, 0x51A7E0C3, 0x51A7E0C4, 0x51A7E0C5)]
LINKED = VISITORS[:2]
"""The visitors who fill in the demo form before batch (c): their page views belong to a lead."""


@dataclass
class Recorded:
    entries: list[tuple[str, str, str]] = field(default_factory=list)
    """(service, operation, description) of every botocore API call, in order."""
    clients_created: list[str] = field(default_factory=list)
    """The service of every botocore client created."""
    items_read: dict[str, int] = field(default_factory=dict)
    """Items each DynamoDB table's Queries and Scans read (their ``ScannedCount``, before any
    filter), by the table's label: what a request paid for, whatever it kept."""

    @property
    def calls(self) -> list[str]:
        """Operation names, with the table (or the tables of a transaction) each one touched;
        prefixed by the service when it is not DynamoDB."""
        return [described for _, _, described in self.entries]


@contextmanager
def recording_aws_calls[R: Recorded](
    table_labels: dict[str, str],
    recorded_type: type[R] = Recorded,
) -> Iterator[R]:
    """Count every botocore API call, and every botocore client created, in this process."""
    recorded = recorded_type()
    make_api_call = botocore.client.BaseClient._make_api_call
    create_client = botocore.session.Session.create_client

    def counting_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        described = describe_call(operation_name, api_params, table_labels)
        if service != "dynamodb":
            described = f"{service} {described}"
        recorded.entries.append((service, operation_name, described))
        answer = make_api_call(client, operation_name, api_params)
        if service == "dynamodb" and operation_name in ("Query", "Scan"):
            label = table_labels.get(api_params["TableName"], api_params["TableName"])
            read = recorded.items_read.get(label, 0) + int(answer.get("ScannedCount", 0))
            recorded.items_read[label] = read
        return answer

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
    if "RequestItems" in params:  # BatchGetItem: {table: {"Keys": [...]}}; BatchWriteItem: lists
        sizes = {
            table_labels.get(name, name): len(
                request if isinstance(request, list) else request["Keys"]
            )
            for name, request in params["RequestItems"].items()
        }
        counted = [f"{label} x{size}" if size > 1 else label for label, size in sizes.items()]
        noun = "keys" if operation == "BatchGetItem" else "items"
        return f"{operation}({sum(sizes.values())} {noun}: {', '.join(counted)})"
    return operation


def seed_demo_form(aws: AwsStack) -> None:
    aws.seed_demo_form()


def seed_demo_site(aws: AwsStack) -> None:
    settings = aws.settings()
    services.site_repository(settings).put(
        SiteDefinition(site_id="demo", name="Demo", allowed_origins=[SITE]),
        services.clock(settings),
    )


def start_cold_container() -> None:
    """What a new execution environment starts without: cached forms and sites, stores, bound
    tables (and with them every botocore client)."""
    forget_cached_forms()
    forget_cached_sites()
    services.lead_repository.cache_clear()
    services.form_repository.cache_clear()
    services.tracking_repository.cache_clear()
    services.site_repository.cache_clear()
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
        # Answered as a new address is (201, an id of no lead): the form tells nobody who is one
        ("existing lead (same address, no submission_id)", same_address_again, 201, False),
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
    # The known address's answer names no lead; its lead, found by the address (after the
    # counting), is still the first one, updated
    assert json.loads(results[2][2]["body"])["lead_id"] != first_lead
    leads = services.lead_repository(aws.settings())
    assert lead_by_email(leads, "hanako.sato@example.jp").lead_id == first_lead
    assert leads.get_lead(json.loads(results[2][2]["body"])["lead_id"]) is None
    # The replay gets the first answer's body again
    assert results[3][2]["body"] == results[0][2]["body"]
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
        + "   (one client shared by every table, built on the first request)",
    ]
    bench_report.add(TITLE, *lines)


def page_views(batch: str) -> list[dict[str, Any]]:
    """MAX_EVENTS page views as the snippet sends them (one a second, just now, each with its
    client-made id), from the five visitors in turn."""
    now = datetime.now(UTC)
    return [
        {
            "type": "page_view",
            "id": f"{batch}{index:02d}c0ffee0123456789abcdef",
            "occurred_at": isoformat(now - timedelta(seconds=MAX_EVENTS - index)),
            "url": f"{SITE}/products/{index % 7}?utm_source=newsletter&utm_medium=email",
            "title": f"Product {index % 7} | Example",
            "referrer": f"{SITE}/",
            "screen": "1920x1080",
            "language": "ja-JP",
            "properties": {},
            "visitor_id": VISITORS[index % len(VISITORS)],
        }
        for index in range(MAX_EVENTS)
    ]


def track_request(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A sendBeacon POST /t/events from the demo site (text/plain: no CORS preflight)."""
    event = copy.deepcopy(load_event("capture_form", "new_lead_json"))
    event.pop("pathParameters")
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /t/events"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/t/events"
    event["headers"].update({"content-type": "text/plain;charset=UTF-8", "origin": SITE})
    event["body"] = json.dumps({"site_id": "demo", "events": events})
    return event


def stored_events(aws: AwsStack, event_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The Events items with these event ids, read back (after counting) with a scan."""
    events = tables.bind_tables(aws.settings()).events
    return {
        item.event_id: {"subject": item.subject, "lead_id": item.lead_id}
        for item in events.scan()
        if item.event_id in event_ids
    }


def link_visitors_to_leads(aws: AwsStack) -> dict[str, str]:
    """LINKED visitors fill in the demo form (through capture_form): each becomes a lead."""
    seed_demo_form(aws)
    capture = aws.function("capture_form")
    submission = load_event("capture_form", "new_lead_json")
    leads = {}
    for number, visitor in enumerate(LINKED):
        response = capture.invoke(
            with_body(
                submission,
                email=f"visitor{number}@example.jp",
                submission_id=None,
                visitor_id=visitor,
            )
        )
        assert response["statusCode"] == 201, response
        leads[visitor] = json.loads(response["body"])["lead_id"]
    return leads


def test_track_event_aws_requests(aws: AwsStack, bench_report: BenchReport) -> None:
    # (label, batch, visitors linked to a lead when the batch arrives)
    scenarios = [
        ("(a) cold container (site not cached)", page_views("a"), False),
        ("(b) warm (site cached)", page_views("b"), False),
        (
            f"(c) warm, {len(LINKED)} of {len(VISITORS)} visitors linked to a lead",
            page_views("c"),
            True,
        ),
    ]
    labels = {name: logical_id.removesuffix("Table") for logical_id, name in aws.tables.items()}

    seed_demo_site(aws)  # before anything is counted
    start_cold_container()
    function = aws.function("track_event")  # its module is imported at the first invocation

    results: list[tuple[str, Recorded, dict[str, Any]]] = []
    leads: dict[str, str] = {}
    for label, batch, linked in scenarios:
        if linked:
            leads = link_visitors_to_leads(aws)  # not counted; the site stays cached
        with recording_aws_calls(labels) as recorded:
            response: dict[str, Any] = function.invoke(track_request(batch))
        results.append((label, recorded, response))

        # Correctness, not speed: all 50 accepted and really stored, under the right subject.
        assert response["statusCode"] == 200, (label, response)
        assert json.loads(response["body"]) == {"accepted": MAX_EVENTS, "rejected": []}, label
        stored = stored_events(aws, {event["id"] for event in batch})
        assert len(stored) == MAX_EVENTS, (label, len(stored))
        for event in batch:
            lead_id = leads.get(event["visitor_id"]) if linked else None
            subject = f"lead#{lead_id}" if lead_id else f"visitor#{event['visitor_id']}"
            assert stored[event["id"]] == {"subject": subject, "lead_id": lead_id}, label

    linked_events = sum(1 for event in scenarios[2][1] if event["visitor_id"] in LINKED)
    lines = [
        "Every botocore API call made while the handler ran (moto in-process); one invocation",
        "each, in this order, after the demo site was seeded. Each batch: "
        f"{MAX_EVENTS} valid page_view",
        f"events from the same {len(VISITORS)} visitors, sent as the snippet sends them "
        "(text/plain, with an Origin).",
        f"Before (c), {len(LINKED)} of the visitors filled in the demo form through capture_form "
        "(not counted),",
        f"so {linked_events} of its events are stored against their leads. "
        f"Goal: <= {TRACK_GOAL} per batch.",
        "",
        f"  {'batch of ' + str(MAX_EVENTS) + ' events':<50} {'status':>6} {'requests':>8}  "
        f"goal <= {TRACK_GOAL}",
    ]
    counts = []
    for label, recorded, response in results:
        count = len(recorded.calls)
        counts.append(count)
        judged = "met" if count <= TRACK_GOAL else "NOT MET"
        lines.append(f"  {label:<50} {response['statusCode']:>6} {count:>8}  {judged}")
        lines.extend(f"      {call}" for call in recorded.calls)
    worst = max(counts)
    lines += [
        "",
        f"  a batch of {MAX_EVENTS} events: at most {worst} requests   "
        f"(goal <= {TRACK_GOAL}: {'met' if worst <= TRACK_GOAL else 'NOT MET'})",
        "",
        "  for information, DynamoDB clients (botocore sessions) created during each invocation:",
        "    "
        + ", ".join(f"{recorded.clients_created.count('dynamodb')}" for _, recorded, _ in results)
        + "   (one client shared by every table, built on the first request)",
        "",
        f"  {MAX_EVENTS} events need at least 3: BatchWriteItem takes at most "
        f"{BATCH_WRITE_LIMIT} items, so 2 writes, and",
        "  one BatchGetItem for the site and the visitors' links (at most 100 keys; a batch names",
        f"  at most {MAX_EVENTS} visitors, so it always fits). moto never returns UnprocessedKeys "
        "or",
        "  UnprocessedItems; in AWS, throttling can, and each retry is one request more.",
    ]
    bench_report.add(TRACK_TITLE, *lines)
