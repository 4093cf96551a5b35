"""The leads stream's consumer: keeps each lead's tags and search words in the lead terms, the
table lead search reads for a tag or a word (tsunagu.store.lead_search), and its grade with the
fields it follows from (a job title changed by a form, an import or the CRM regrades the lead,
so grade filters and `leads hot` read what `leads score` explains).

Each record moves the terms from what the old item implied to what the new one does; most lead
changes (a last-activity mark) touch none. Records of one lead arrive in order, and applying one
twice writes the same, so a retried batch is harmless. Failed records are reported one by one.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from tsunagu import services
from tsunagu.observability import observed
from tsunagu.settings import get_settings

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _record_handler(record: DynamoDBRecord) -> None:
    # The images as DynamoDB wrote them: the terms are written back in the same form.
    change = record.raw_event.get("dynamodb") or {}
    settings = get_settings()
    services.lead_terms(settings).apply(change.get("OldImage"), change.get("NewImage"))
    services.qualification_repository(settings).regrade(change.get("NewImage"))


@observed()
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
