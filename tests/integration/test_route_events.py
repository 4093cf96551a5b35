"""route_events' handler fed with stream batches under moto."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.conftest import AwsStack, load_event, moto_client


def capture_lead(aws: AwsStack) -> str:
    from tsunagu import services
    from tsunagu.forms.model import FormDefinition, FormField

    settings = aws.settings()
    services.form_repository(settings).put(
        FormDefinition(
            form_id="demo",
            name="Demo",
            fields=[FormField(name="email", type="email", required=True)],
        ),
        services.clock(settings),
    )
    event = load_event("capture_form", "new_lead_json")
    event["headers"].pop("origin", None)
    event["body"] = json.dumps({"email": "hanako.sato@example.jp"})
    response = aws.function("capture_form").invoke(event)
    lead_id: str = json.loads(response["body"])["lead_id"]
    return lead_id


def batch_for(lead_id: str, occurred_at: str, sequence: str = "1") -> dict[str, Any]:
    batch = copy.deepcopy(load_event("route_events", "form_submitted"))
    record = batch["Records"][0]
    image = record["dynamodb"]["NewImage"]
    image["lead_id"]["S"] = lead_id
    image["occurred_at"]["S"] = occurred_at
    record["dynamodb"]["SequenceNumber"] = sequence
    return batch


def lead_item(aws: AwsStack, lead_id: str) -> dict[str, Any]:
    dynamodb = moto_client("dynamodb")
    item: dict[str, Any] = dynamodb.get_item(
        TableName=aws.tables["LeadsTable"], Key={"lead_id": {"S": lead_id}}
    )["Item"]
    return item


def test_an_event_moves_the_leads_last_activity(aws: AwsStack) -> None:
    lead_id = capture_lead(aws)

    result = aws.function("route_events").invoke(batch_for(lead_id, "2030-01-01T00:00:00.000Z"))

    assert result == {"batchItemFailures": []}
    assert lead_item(aws, lead_id)["last_activity_at"]["S"] == "2030-01-01T00:00:00.000Z"


def test_an_import_is_not_the_leads_activity(aws: AwsStack) -> None:
    # An imported list says nothing about what the lead did: a lead imported today has not
    # been active today (inactivity segments and the lead list's last activity rely on it).
    lead_id = capture_lead(aws)
    imported = batch_for(lead_id, "2030-01-01T00:00:00.000Z")
    imported["Records"][0]["dynamodb"]["NewImage"]["type"]["S"] = "lead_imported"

    result = aws.function("route_events").invoke(imported)

    assert result == {"batchItemFailures": []}
    assert "last_activity_at" not in lead_item(aws, lead_id)


def test_a_redelivered_or_older_event_changes_nothing(aws: AwsStack) -> None:
    lead_id = capture_lead(aws)
    route = aws.function("route_events")
    route.invoke(batch_for(lead_id, "2030-01-01T00:00:00.000Z"))
    version = lead_item(aws, lead_id)["version"]

    route.invoke(batch_for(lead_id, "2030-01-01T00:00:00.000Z"))
    route.invoke(batch_for(lead_id, "2029-01-01T00:00:00.000Z"))

    assert lead_item(aws, lead_id)["version"] == version
    assert lead_item(aws, lead_id)["last_activity_at"]["S"] == "2030-01-01T00:00:00.000Z"


def test_a_broken_record_is_reported_alone(aws: AwsStack) -> None:
    lead_id = capture_lead(aws)
    good = batch_for(lead_id, "2030-01-01T00:00:00.000Z", sequence="1")["Records"][0]
    broken = batch_for(lead_id, "2030-01-02T00:00:00.000Z", sequence="2")["Records"][0]
    del broken["dynamodb"]["NewImage"]["type"]

    result = aws.function("route_events").invoke({"Records": [good, broken]})

    assert result == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert lead_item(aws, lead_id)["last_activity_at"]["S"] == "2030-01-01T00:00:00.000Z"


def test_events_of_anonymous_visitors_wait(aws: AwsStack) -> None:
    batch = load_event("route_events", "form_submitted")
    del batch["Records"][0]["dynamodb"]["NewImage"]["lead_id"]

    assert aws.function("route_events").invoke(batch) == {"batchItemFailures": []}
