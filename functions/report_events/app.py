"""report_events — the events stream's reader for reports: keeps the report counters, each event
counted exactly once (tsunagu.reports.counters), and hands every event stored or stored again to
the analytics export, a row for SQL through Firehose to S3 (tsunagu.analytics).

One function for both, so that the stream has two readers (route_events and this one): a
DynamoDB stream serves two without throttling, and a third would be slowed down.

The batch is counted together (increments to one counter row are added up first), so a counting
failure fails the batch: it is retried whole, and what was counted is marked and counts nothing
twice (a row exported twice is the same row: analyses take the newest per event). Rows Firehose
kept refusing are reported one by one, and Lambda delivers from the first of them again. A batch
that keeps failing is halved until the record at fault is alone, then set aside on the
dead-letter queue; `tsunagu reports rebuild` counts its days again.
"""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBStreamEvent,
)

from tsunagu import services
from tsunagu.analytics.delivery import export_records
from tsunagu.observability import logger, metrics, observed
from tsunagu.reports.counters import count_batch
from tsunagu.reports.counting import JourneyGoal
from tsunagu.settings import Settings, get_settings

GOALS_KEPT_SECONDS = 60.0
"""How long a container keeps the journeys' goals before reading them again: a goal changed
counts from at most a minute later, and a busy stream does not scan the journeys per batch."""
_goals_read: tuple[float, dict[str, JourneyGoal]] | None = None


def _goals(settings: Settings) -> dict[str, JourneyGoal]:
    global _goals_read
    # The container's own monotonic clock, not the domain's: this is a cache, not a decision.
    if _goals_read is None or time.monotonic() - _goals_read[0] > GOALS_KEPT_SECONDS:
        _goals_read = (time.monotonic(), services.journey_goals(settings))
    return _goals_read[1]


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings = get_settings()
    records: list[dict[str, Any]] = list(event.get("Records") or [])
    images = [
        record.dynamodb.new_image if record.dynamodb else None
        for record in DynamoDBStreamEvent(event).records
    ]
    done = count_batch(
        images,
        store=services.reports(settings),
        time_zone=ZoneInfo(settings.default_time_zone),
        now=services.clock(settings).now(),
        goals=_goals(settings),
    )
    metrics.add_metric(name="EventsCounted", unit="Count", value=done.counted)
    failed: list[str] = []
    if settings.analytics_delivery_stream:  # unset: no export (a stack without analytics)
        failed = export_records(
            records,
            client=services.firehose_client(settings),
            stream=settings.analytics_delivery_stream,
        )
    if failed:
        metrics.add_metric(name="AnalyticsRowsNotDelivered", unit="Count", value=len(failed))
    logger.info(
        "events counted and exported",
        extra={
            "records": len(records),
            "counted": done.counted,
            "already": done.already,
            "not_exported": len(failed),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": key} for key in failed]}
