"""The events stream's consumer: what follows from each thing a lead did.

It scores what a person did (exactly once; automated activity never), hands a lead that becomes
MQL to sales, keeps each lead's last-activity mark current, mails double opt-in confirmations,
resumes journeys waiting for what the lead did, enters leads into journeys whose triggers fire
and takes them out of journeys an unsubscribe, a CRM status or a stage change ends.
Failed records are reported one by one, so a retry re-delivers only what failed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
)

from tsunagu import services
from tsunagu.observability import observed
from tsunagu.routing import route_event
from tsunagu.settings import get_settings

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _record_handler(record: DynamoDBRecord) -> None:
    settings = get_settings()
    route_event(
        record.dynamodb.new_image if record.dynamodb else None,
        store=services.lead_repository(settings),
        confirmations=services.confirmations(settings),
        waits=services.journey_waits(settings),
        journeys=services.journey_routing(settings),
        qualification=services.qualification_routing(settings),
    )


@observed()
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
