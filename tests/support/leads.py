"""A lead stored as an import would store it, for tests that need one to act on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.conftest import REGION, AwsStack, moto_client
from tsunagu import services
from tsunagu.leads.capture import CaptureWrite
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead, LeadEvent, email_identity


def store_lead(
    aws: AwsStack,
    email: str,
    *,
    owner: str | None = None,
    name: str = "テスト 太郎",
    company: str | None = None,
    more_fields: dict[str, str] | None = None,
    **changes: Any,
) -> Lead:
    """``more_fields``: other fields, as an import gives them (job_title, company_size...).
    ``changes``: any other of the lead's values (stage, score, grade, tags...)."""
    settings = aws.settings()
    # The stack's clock, as the handlers' own: a lead seeded by another clock could sort after
    # what the code under test records in the same second (an event's timeline order).
    at = services.clock(settings).now().isoformat()
    fields = {"name": FieldValue(name, Channel.IMPORT, at)}
    if company:
        fields["company"] = FieldValue(company, Channel.IMPORT, at)
    if owner:
        fields["owner_email"] = FieldValue(owner, Channel.SALES, at)
    for field, value in (more_fields or {}).items():
        fields[field] = FieldValue(value, Channel.IMPORT, at)
    lead = Lead(
        lead_id=f"lead_{email.split('@')[0]}",
        email=email,
        fields=fields,
        sources=["import"],
        visitor_ids=set(),
        stage="lead",
        created_at=at,
        updated_at=at,
    )
    lead = replace(lead, **changes)
    services.lead_repository(settings).commit_capture(
        CaptureWrite(
            lead=lead,
            is_new=True,
            claim_identities=[email_identity(email)],
            point_identities=[],
            event=LeadEvent(f"evt_{lead.lead_id}", "lead_imported", at, lead.lead_id, None, {}),
            consent=None,
            idempotency_key=None,
            request_hash="",
            response={},
        )
    )
    return lead


def index_leads(aws: AwsStack) -> int:
    """Hand IndexLeadsFunction what is new on the leads table's stream, in batches of 100 as
    Lambda's poller does in AWS and the local runtime's does there (lead search finds tags and
    words through the lead terms it writes). Returns how many records it got."""
    records = new_stream_records(aws, "LeadsTable")
    for start in range(0, len(records), 100):
        answer = aws.function("index_leads").invoke({"Records": records[start : start + 100]})
        assert answer == {"batchItemFailures": []}, answer
    return len(records)


def new_stream_records(aws: AwsStack, table: str) -> list[dict[str, Any]]:
    """The records on the stream of the template's table ``table`` (a logical id) since the last
    call, as Lambda's poller hands them to a function.

    The records are read from moto's shard itself: moto's in-process mock does not answer the
    DynamoDB Streams API (the local runtime's moto server does)."""
    import json

    from tsunagu_local.streams import as_lambda_json, stream_shard

    described = moto_client("dynamodb").describe_table(TableName=aws.tables[table])["Table"]
    stream_arn = described["LatestStreamArn"]
    shard = stream_shard(stream_arn)
    done = aws.stream_marks.get(stream_arn, 0)
    records = [
        json.loads(json.dumps(item.to_json(), default=as_lambda_json))
        | {"eventSourceARN": stream_arn, "awsRegion": REGION}
        for item in shard.items
        if int(item.to_json()["dynamodb"]["SequenceNumber"]) > done
    ]
    if records:
        aws.stream_marks[stream_arn] = int(records[-1]["dynamodb"]["SequenceNumber"])
    return records
