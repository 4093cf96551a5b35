"""Journey waits in DynamoDB, and the Step Functions adapter that resumes executions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tsunagu.clock import parse_instant
from tsunagu.journeys.waits import EventMatch, JourneyWait
from tsunagu.settings import Settings
from tsunagu.store.tables import Tables

# A wait item outlives its deadline by this much, then DynamoDB's TTL removes it.
WAIT_GRACE = timedelta(days=1)


class WaitRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def register_wait(self, wait: JourneyWait) -> None:
        expires = parse_instant(wait.deadline) + WAIT_GRACE
        self._tables.waits(
            wait.lead_id,
            wait.wait_id,
            token=wait.token,
            match=wait.match.model_dump(mode="json", exclude_none=True),
            deadline=wait.deadline,
            expires_at=int(expires.timestamp()),
        ).save()

    def waits_of(self, lead_id: str) -> list[JourneyWait]:
        return [
            JourneyWait(
                item.lead_id,
                item.wait_id,
                item.token,
                EventMatch.model_validate(_plain(item.match)),
                item.deadline,
            )
            for item in self._tables.waits.query(lead_id, consistent_read=True)
        ]

    def end_wait(self, wait: JourneyWait) -> None:
        self._tables.waits(wait.lead_id, wait.wait_id).delete()


def _plain(attribute: Any) -> dict[str, Any]:
    """A raw MapAttribute as the dict it holds."""
    plain: dict[str, Any] = attribute.as_dict()
    return plain


class StepFunctionsResumer:
    """SendTaskSuccess; a token that is used, timed out or unknown is not an error here."""

    GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})

    def __init__(self, settings: Settings) -> None:
        import boto3  # only route_events resumes executions

        self._client: Any = boto3.client(
            "stepfunctions", region_name=settings.region, endpoint_url=settings.aws_endpoint_url
        )

    def resume(self, token: str, output: Mapping[str, Any]) -> bool:
        try:
            self._client.send_task_success(taskToken=token, output=json.dumps(output))
        except Exception as error:  # botocore's ClientError, without importing botocore here
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            if code in self.GONE:
                return False
            raise
        return True
