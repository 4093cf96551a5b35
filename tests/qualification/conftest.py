"""What the in-process qualification tests share.

The ``qualified`` fixture is the ``aws`` stack (moto in-process) made ready to score and hand
off, as the template wires route_events: mail settings (``prepare_mail``), the functions' clock
started at ``NOW`` (a Tuesday, 10:00 in Tokyo), the state-machine ARN prefix with the hand-off
state machine registered in moto (moto does not run it here: an execution *started* is what
route_events did), the CRM webhook secret, and a small stream: :meth:`Qualified.deliver` hands
route_events every events-table item it has not handed it yet, as the DynamoDB stream would
(INSERT records with the NEW_IMAGE), in the table's key order.

Leads come in through capture_form, opens through open_pixel, clicks through click_link, page
views through track_event, offline events as ``tsunagu leads record`` writes them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tests.conftest import REGION, ROOT, AwsStack, load_event, moto_client
from tests.integration.mail_helpers import prepare_mail
from tests.integration.tracking_helpers import register_site, set_clock, sign, with_token
from tests.support.cli import runtime_here
from tsunagu import cli, services
from tsunagu.clock import isoformat
from tsunagu.ids import new_id
from tsunagu.leads.model import LeadEvent
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.crm import signature_header
from tsunagu.tracking.settling import SETTLE_CLICKS_STATE_MACHINE
from tsunagu.tracking.tokens import TokenKind

ACCOUNT_ID = "123456789012"
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
"""Tuesday 2026-12-01, 10:00 in Tokyo: inside business hours, no holiday."""
STAGE_PREFIX = "tsunagu-test-"
HAND_OFF_MACHINE = f"{STAGE_PREFIX}hand-off-to-sales"
SETTLE_CLICKS_MACHINE = f"{STAGE_PREFIX}{SETTLE_CLICKS_STATE_MACHINE}"
STATE_MACHINE_ARN_PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{STAGE_PREFIX}"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SITE_ORIGIN = "https://www.example.com"
QUALIFICATION_TABLES = ("LeadsTable", "LeadIdentitiesTable", "EventsTable", "QualificationTable")

_deserializer = TypeDeserializer()


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute-value JSON) as plain Python values."""
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> str:
    """``tsunagu`` run in this process (its main): what it printed; it must exit 0."""
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def forget_qualification_caches() -> None:
    """Caches a warm function keeps across invocations (per table name, and the same table names
    come back in every test): the rules, the CRM key, and the routers built on them."""
    from tsunagu.store import qualification

    qualification._configs.clear()
    services._crm_keys.clear()
    services.qualification_routing.cache_clear()
    services.journey_routing.cache_clear()
    services.executions.cache_clear()


@dataclass
class Qualified:
    aws: AwsStack
    delivered: set[tuple[str, str]] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    """Held clicks' settle executions already played (settle_held_clicks)."""
    sequence: int = 0
    visitors: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ plumbing
    def settings(self) -> Any:
        return self.aws.settings()

    def dynamodb(self) -> Any:
        return moto_client("dynamodb")

    def raw_items(self, logical_id: str) -> list[dict[str, Any]]:
        paginator = self.dynamodb().get_paginator("scan")
        return [
            item
            for page in paginator.paginate(TableName=self.aws.tables[logical_id])
            for item in page["Items"]
        ]

    def snapshot(self) -> dict[str, list[str]]:
        """Every item of the tables the CRM webhook and scoring may write, canonically."""
        return {
            logical_id: sorted(json.dumps(i, sort_keys=True) for i in self.raw_items(logical_id))
            for logical_id in QUALIFICATION_TABLES
        }

    def save_config(self, config: QualificationConfig) -> None:
        services.qualification_repository(self.settings()).save_config(config)
        forget_qualification_caches()

    # ------------------------------------------------------------------ what a lead does
    def capture(self, email: str, *, name: str = "佐藤 花子", company: str = "Example KK") -> str:
        """A lead through capture_form (the demo form, consent given, a browser's visitor id):
        a form_submitted event."""
        visitor = "v_" + hashlib.sha256(email.encode()).hexdigest()[:16]
        event = load_event("capture_form", "new_lead_json")
        event["body"] = json.dumps(
            {
                "email": email,
                "name": name,
                "company": company,
                "consent": True,
                "visitor_id": visitor,
            }
        )
        event["headers"].pop("origin", None)
        response = self.aws.function("capture_form").invoke(event)
        assert response["statusCode"] == 201, response
        lead_id: str = json.loads(response["body"])["lead_id"]
        self.visitors[lead_id] = visitor
        return lead_id

    def open_mail(
        self, lead_id: str, message_id: str, *, user_agent: str = CHROME, ip: str | None = None
    ) -> None:
        """open_pixel with a token of a mail sent an hour ago."""
        sent = services.clock(self.settings()).now() - timedelta(hours=1)
        token = sign(self.aws, TokenKind.OPEN, sent_at=sent, lead_id=lead_id, message_id=message_id)
        event = with_token(load_event("open_pixel", "open"), token)
        event["headers"]["user-agent"] = user_agent
        if ip is not None:
            event["requestContext"]["http"]["sourceIp"] = ip
        response = self.aws.function("open_pixel").invoke(event)
        assert response["statusCode"] == 200, response

    def click(self, lead_id: str, message_id: str, *, user_agent: str = CHROME) -> None:
        """click_link with a token of a mail sent an hour ago."""
        sent = services.clock(self.settings()).now() - timedelta(hours=1)
        token = sign(
            self.aws, TokenKind.CLICK, sent_at=sent, lead_id=lead_id, message_id=message_id
        )
        event = with_token(load_event("click_link", "browser_click"), token)
        event["headers"]["user-agent"] = user_agent
        response = self.aws.function("click_link").invoke(event)
        assert response["statusCode"] == 302, response

    def view_pages(self, lead_id: str, *paths: str) -> None:
        """track_event: page views by the lead's browser (linked to it by the form)."""
        register_site(self.aws, allowed_origins=[SITE_ORIGIN])
        event = load_event("track_event", "custom_events_json")
        event["body"] = json.dumps(
            {
                "site_id": "example-corp",
                "events": [
                    {
                        "type": "page_view",
                        "visitor_id": self.visitors[lead_id],
                        "url": f"{SITE_ORIGIN}{path}",
                    }
                    for path in paths
                ],
            }
        )
        response = self.aws.function("track_event").invoke(event)
        assert response["statusCode"] == 200, response
        assert json.loads(response["body"])["accepted"] == len(paths), response

    def record(self, lead_id: str, kind: str, **properties: Any) -> str:
        """An event as ``tsunagu leads record EMAIL KIND`` writes it; its id."""
        settings = self.settings()
        now = services.clock(settings).now()
        event = LeadEvent(
            new_id("evt", now),
            kind,
            isoformat(now),
            lead_id,
            None,
            {**properties, "source": "cli"},
        )
        services.lead_repository(settings).put_event(event)
        return event.event_id

    # ------------------------------------------------------------------ the stream
    def undelivered(self) -> list[dict[str, Any]]:
        items = self.raw_items("EventsTable")
        fresh = [i for i in items if (i["subject"]["S"], i["sk"]["S"]) not in self.delivered]
        return sorted(fresh, key=lambda i: (i["subject"]["S"], i["sk"]["S"]))

    def settle_held_clicks(self) -> bool:
        """What statemachines/settle_clicks.asl.json does once its wait is over, for every click
        route_events held (moto records the executions without running them): mark the click
        settled, so the stream brings it back - here, it is delivered again. Whether anything
        was settled."""
        stepfunctions = moto_client("stepfunctions")
        executions = stepfunctions.list_executions(
            stateMachineArn=STATE_MACHINE_ARN_PREFIX + SETTLE_CLICKS_STATE_MACHINE
        )["executions"]
        settled = False
        for execution in executions:
            if execution["name"] in self.settled:
                continue
            self.settled.add(execution["name"])
            held = json.loads(
                stepfunctions.describe_execution(executionArn=execution["executionArn"])["input"]
            )
            self.dynamodb().update_item(
                TableName=self.aws.tables["EventsTable"],
                Key={"subject": {"S": held["subject"]}, "sk": {"S": held["sk"]}},
                UpdateExpression="SET #properties.#settled = :settled",
                ExpressionAttributeNames={"#properties": "properties", "#settled": "settled"},
                ExpressionAttributeValues={":settled": {"BOOL": True}},
            )
            self.delivered.discard((held["subject"], held["sk"]))
            settled = True
        return settled

    def batch(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """A DynamoDB stream batch carrying these events-table items as INSERTs."""
        template = load_event("route_events", "form_submitted")["Records"][0]
        records = []
        for item in items:
            self.sequence += 1
            record = copy.deepcopy(template)
            record["eventID"] = str(self.sequence)
            record["dynamodb"]["Keys"] = {"subject": item["subject"], "sk": item["sk"]}
            record["dynamodb"]["NewImage"] = item
            record["dynamodb"]["SequenceNumber"] = str(self.sequence).zfill(21)
            records.append(record)
        return {"Records": records}

    def route(self, batch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.aws.function("route_events").invoke(batch)
        return result

    def deliver(self) -> list[dict[str, Any]]:
        """Hand route_events what is new in the events table, batch after batch (what it writes
        comes back as the next batch), until nothing is new. The batches it got, in order."""
        batches: list[dict[str, Any]] = []
        for _ in range(20):
            items = self.undelivered()
            if not items and not self.settle_held_clicks():
                return batches
            items = self.undelivered()
            batch = self.batch(items)
            assert self.route(batch) == {"batchItemFailures": []}
            self.delivered.update((i["subject"]["S"], i["sk"]["S"]) for i in items)
            batches.append(batch)
        raise AssertionError("route_events kept writing events: the stream never settled")

    # ------------------------------------------------------------------ what is stored
    def lead(self, lead_id: str) -> dict[str, Any]:
        item = self.dynamodb().get_item(
            TableName=self.aws.tables["LeadsTable"],
            Key={"lead_id": {"S": lead_id}},
            ConsistentRead=True,
        )["Item"]
        return plain(item)

    def awards(self, lead_id: str) -> list[dict[str, Any]]:
        """The lead's stored awards (their ``data``), in key order."""
        items = [plain(i) for i in self.raw_items("QualificationTable")]
        found = sorted(
            (i for i in items if i["pk"] == f"lead#{lead_id}" and i["sk"].startswith("award#")),
            key=lambda i: str(i["sk"]),
        )
        return [json.loads(i["data"]) for i in found]

    def events(self, lead_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        items = [plain(i) for i in self.raw_items("EventsTable")]
        return sorted(
            (
                i
                for i in items
                if i["subject"] == f"lead#{lead_id}" and (kind is None or i["type"] == kind)
            ),
            key=lambda i: str(i["sk"]),
        )

    def hand_offs(self) -> list[dict[str, Any]]:
        """Executions of the hand-off state machine (started, never run by moto)."""
        stepfunctions = moto_client("stepfunctions")
        listed = stepfunctions.list_executions(
            stateMachineArn=STATE_MACHINE_ARN_PREFIX + "hand-off-to-sales"
        )["executions"]
        return [dict(execution) for execution in listed]

    def hand_off_inputs(self) -> list[dict[str, Any]]:
        stepfunctions = moto_client("stepfunctions")
        return [
            json.loads(stepfunctions.describe_execution(executionArn=e["executionArn"])["input"])
            for e in self.hand_offs()
        ]

    # ------------------------------------------------------------------ the CRM webhook
    def crm_key(self) -> bytes:
        secrets = moto_client("secretsmanager")
        arn = self.aws.environment["TSUNAGU_CRM_SECRET_ARN"]
        value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
        return str(value["signing_key"]).encode()

    def signed_headers(self, body: bytes, *, at: datetime | None = None) -> dict[str, str]:
        # A CRM signs on real time (crm_webhook checks the window against it, not the runtime's
        # clock).
        instant = at if at is not None else datetime.now(UTC)
        timestamp = str(int(instant.timestamp()))
        return {
            "content-type": "application/json",
            "x-tsunagu-timestamp": timestamp,
            "x-tsunagu-signature": signature_header(self.crm_key(), timestamp, body),
        }

    def crm_post(
        self, body: bytes, headers: Mapping[str, str], path: str = "/crm/leads"
    ) -> dict[str, Any]:
        """crm_webhook invoked as API Gateway (HTTP API, payload 2.0) would for POST ``path``
        (/crm/leads or /crm/deals)."""
        epoch_ms = int(time.time() * 1000)
        event = {
            "version": "2.0",
            "routeKey": f"POST {path}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"host": "api.example.com", "user-agent": "ExampleCRM/2.1", **headers},
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": "example",
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {
                    "method": "POST",
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.40",
                    "userAgent": "ExampleCRM/2.1",
                },
                "requestId": f"req-{epoch_ms}",
                "routeKey": f"POST {path}",
                "stage": "$default",
                "time": "01/Dec/2026:01:00:00 +0000",
                "timeEpoch": epoch_ms,
            },
            "isBase64Encoded": False,
            "body": body.decode("utf-8", "surrogateescape"),
        }
        response: dict[str, Any] = self.aws.function("crm_webhook").invoke(event)
        return response


def crm_body(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def qualify(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> Qualified:
    """The stack wired as the template wires route_events, hand_off and crm_webhook."""
    prepare_mail(aws)
    set_clock(aws, NOW)
    secrets = moto_client("secretsmanager")
    (crm_secret,) = [
        s["ARN"]
        for s in secrets.list_secrets()["SecretList"]
        if s["Name"] == f"{STAGE_PREFIX}CrmWebhookSecret"
    ]
    aws.environment["TSUNAGU_STATE_MACHINE_ARN_PREFIX"] = STATE_MACHINE_ARN_PREFIX
    aws.environment["TSUNAGU_CRM_SECRET_ARN"] = crm_secret
    for key, value in aws.environment.items():
        monkeypatch.setenv(key, value)
    definition = (ROOT / "statemachines" / "hand_off_to_sales.asl.json").read_text("utf-8")
    moto_client("stepfunctions").create_state_machine(
        name=HAND_OFF_MACHINE,
        definition=definition.replace(
            "${HandOffFunctionArn}",
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STAGE_PREFIX}hand_off",
        ),
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/hand-off",
    )
    settle = (ROOT / "statemachines" / "settle_clicks.asl.json").read_text("utf-8")
    moto_client("stepfunctions").create_state_machine(
        name=SETTLE_CLICKS_MACHINE,
        definition=settle.replace("${EventsTableName}", aws.tables["EventsTable"]),
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/settle-clicks",
    )
    forget_qualification_caches()
    return Qualified(aws)


@pytest.fixture
def qualified(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Qualified]:
    yield qualify(aws, monkeypatch)
    forget_qualification_caches()


@pytest.fixture
def cli_here(qualified: Qualified, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder whose .tsunagu/runtime.json names the test stack, as ``make up`` leaves one:
    ``tsunagu.cli.main`` run from it talks to moto in-process."""
    return runtime_here(qualified.aws, tmp_path, monkeypatch)
