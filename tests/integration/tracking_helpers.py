"""What the tracking handlers' tests share: the site, the clock, signed tokens, stored events.

Tokens cannot sit pre-signed in events/ (each test stack generates its own key), so the sample
events of open_pixel and click_link carry the placeholder ``SIGNED_TOKEN``; ``with_token`` puts
a freshly signed token in its place.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tests.conftest import AwsStack, load_event, moto_client
from tsunagu import services
from tsunagu.tracking.sites import SiteDefinition
from tsunagu.tracking.tokens import TokenKind, TrackingToken

SITE_ID = "example-corp"
ORIGIN = "https://www.example.com"
VISITOR = "v_3b7e1d2c9a4f6e80"
# The sample events were sent a few seconds after 09:00 UTC on 2026-11-22 (their occurred_at
# values are 09:00:00 to 09:00:04): the stack's clock is started there.
NOW = datetime(2026, 11, 22, 9, 0, 5, tzinfo=UTC)
PLACEHOLDER = "SIGNED_TOKEN"
MESSAGE_ID = "msg_01JDEXAMPLE0000000000000001"
LEAD_ID = "lead_01JDEXAMPLE0000000000000000"
DESTINATION = "https://www.example.com/seminar/2026-12?utm_source=tsunagu&utm_medium=email"
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15"
)

_deserializer = TypeDeserializer()


def set_clock(aws: AwsStack, instant: datetime, scale: float = 1.0) -> None:
    """Start the functions' clock at ``instant``; it then runs ``scale`` times real speed."""
    aws.environment["TSUNAGU_CLOCK_START"] = instant.isoformat()
    aws.environment["TSUNAGU_CLOCK_EPOCH"] = repr(time.time())
    aws.environment["TSUNAGU_TIME_SCALE"] = repr(scale)


def register_site(aws: AwsStack, **changes: Any) -> SiteDefinition:
    settings = aws.settings()
    site = SiteDefinition(
        **{
            "site_id": SITE_ID,
            "name": "Example Corp website",
            "allowed_origins": [ORIGIN],
            **changes,
        }
    )
    services.site_repository(settings).put(site, services.clock(settings))
    return site


def capture_lead(aws: AwsStack) -> str:
    """A lead captured through capture_form; events/capture_form/new_lead_json.json links the
    browser's visitor id ``v_8f14e45fceea167a`` to it."""
    aws.seed_demo_form()
    response = aws.function("capture_form").invoke(load_event("capture_form", "new_lead_json"))
    assert response["statusCode"] == 201, response
    lead_id: str = json.loads(response["body"])["lead_id"]
    return lead_id


def sign(
    aws: AwsStack,
    kind: TokenKind = TokenKind.CLICK,
    *,
    sent_at: datetime | None = None,
    lead_id: str = LEAD_ID,
    message_id: str = MESSAGE_ID,
    url: str | None = DESTINATION,
    link_id: str | None = "cta",
) -> str:
    """A token signed with the stack's own key (an hour after sending unless told)."""
    sent = sent_at if sent_at is not None else NOW - timedelta(hours=1)
    token = TrackingToken(
        kind=kind,
        message_id=message_id,
        lead_id=lead_id,
        sent_at=int(sent.timestamp()),
        url=None if kind is TokenKind.OPEN else url,
        link_id=None if kind is TokenKind.OPEN else link_id,
    )
    return services.token_signer(aws.settings()).sign(token)


def with_token(event: dict[str, Any], token: str) -> dict[str, Any]:
    """The sample event with ``token`` where its placeholder is."""
    changed = copy.deepcopy(event)
    changed["rawPath"] = changed["rawPath"].replace(PLACEHOLDER, token)
    changed["requestContext"]["http"]["path"] = changed["requestContext"]["http"]["path"].replace(
        PLACEHOLDER, token
    )
    changed["pathParameters"]["token"] = changed["pathParameters"]["token"].replace(
        PLACEHOLDER, token
    )
    return changed


def with_headers(event: dict[str, Any], **headers: str) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["headers"].update({name.replace("_", "-"): value for name, value in headers.items()})
    return changed


def from_ip(event: dict[str, Any], ip: str) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["requestContext"]["http"]["sourceIp"] = ip
    return changed


def raw_items(aws: AwsStack, logical_id: str) -> list[dict[str, Any]]:
    dynamodb = moto_client("dynamodb")
    found: list[dict[str, Any]] = dynamodb.scan(TableName=aws.tables[logical_id])["Items"]
    return found


def stored_events(aws: AwsStack) -> list[dict[str, Any]]:
    """Every item of the events table, as plain Python values, in key order."""
    events = [
        {name: _deserializer.deserialize(value) for name, value in item.items()}
        for item in raw_items(aws, "EventsTable")
    ]
    return sorted(events, key=lambda e: (e["subject"], e["sk"]))
