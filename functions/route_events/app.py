"""The events stream's consumer: what follows from each thing a lead did.

It scores what a person did (exactly once; automated activity never), hands a lead that becomes
MQL to sales, keeps each lead's last-activity mark current, mails double opt-in confirmations,
resumes journeys waiting for what the lead did, enters leads into journeys whose triggers fire
and takes them out of journeys an unsubscribe, a CRM status or a stage change ends. A click
that looks like a person's waits until a scanner's burst could no longer re-judge it
(tsunagu.tracking.settling).
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
    DynamoDBStreamEvent,
)

from tsunagu import services
from tsunagu.observability import observed
from tsunagu.routing import route_event
from tsunagu.settings import get_settings
from tsunagu.stream_batch import LatestActivityOnly, latest_activity

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
# The batch being processed: its leads' latest activity (see tsunagu.stream_batch).
_activity: LatestActivityOnly | None = None


def _record_handler(record: DynamoDBRecord) -> None:
    settings = get_settings()
    route_event(
        record.dynamodb.new_image if record.dynamodb else None,
        store=_activity or services.lead_repository(settings),
        confirmations=services.confirmations(settings),
        waits=services.journey_waits(settings),
        journeys=services.journey_routing(settings),
        qualification=services.qualification_routing(settings),
        settling=services.click_settling(settings),
    )


@observed()
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    global _activity
    settings = get_settings()
    services.journey_waits(settings).begin_batch()
    services.qualification_routing(settings).begin_batch()
    services.journey_routing(settings).begin_batch()
    records = list(DynamoDBStreamEvent(event).records)
    images = {
        record.dynamodb.sequence_number: record.dynamodb.new_image
        for record in records
        if record.dynamodb is not None
    }
    _activity = LatestActivityOnly(
        services.lead_repository(settings), latest_activity(images.values())
    )
    response = process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
    failed = [images.get(str(f["itemIdentifier"])) for f in response.get("batchItemFailures", [])]
    _activity.settle(
        (str(image["lead_id"]), str(image["occurred_at"]))
        for image in failed
        if image and image.get("lead_id") and image.get("occurred_at")
    )
    return response
