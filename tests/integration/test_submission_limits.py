"""Form submissions are limited per address and per client address (issue: anyone who knows an
address could post for it as often as they liked). A submission over a limit is answered 429 with
Retry-After and stores nothing; the next window takes it again."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import AwsStack, load_event, moto_client
from tests.integration.tracking_helpers import set_clock
from tsunagu.leads.submission_limits import RateLimit

NOW = datetime(2026, 12, 4, 1, 10, tzinfo=UTC)
"""10:10 in Tokyo: the hour's window ends in 50 minutes."""
FROZEN = 0.000001
"""The functions' clock barely moves while a test posts: every post falls in the same window."""


@pytest.fixture
def stack(aws: AwsStack) -> AwsStack:
    aws.seed_demo_form()
    set_clock(aws, NOW, scale=FROZEN)
    return aws


def post(
    stack: AwsStack, email: str, *, source_ip: str = "198.51.100.7", number: int = 0
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("capture_form", "new_lead_json"))
    body = {
        **json.loads(event["body"]),
        "email": email,
        "submission_id": f"s{number}_{email.replace('@', '_').replace('.', '_')}",
    }
    body.pop("visitor_id")
    event["body"] = json.dumps(body)
    event["requestContext"]["http"]["sourceIp"] = source_ip
    response: dict[str, Any] = stack.function("capture_form").invoke(event)
    return response


def stored(stack: AwsStack) -> dict[str, int]:
    """Items per table, the limits' own counters left out."""
    dynamodb = moto_client("dynamodb")
    counts = {}
    for logical_id, table in stack.tables.items():
        items = dynamodb.scan(TableName=table)["Items"]
        counts[logical_id] = sum(
            1 for i in items if not i.get("key", {}).get("S", "").startswith("rate#")
        )
    return counts


def test_the_eleventh_submission_for_one_address_in_an_hour_is_refused_whole(
    stack: AwsStack,
) -> None:
    # Given ten submissions for one address within the hour, all taken
    for number in range(10):
        assert post(stack, "flood@example.jp", number=number)["statusCode"] == 201
    before = stored(stack)
    assert before["EventsTable"] == 10

    # When an eleventh comes
    refused = post(stack, "flood@example.jp", number=10)

    # Then it is answered 429 with when to come back (the hour's window ends at 11:00 JST)
    assert refused["statusCode"] == 429
    assert refused["headers"]["retry-after"] == str(50 * 60)
    body = json.loads(refused["body"])
    assert body["retry_after_seconds"] == 50 * 60
    assert body["message"] == (
        "too many submissions for this address (at most 10 per hour);"
        " please try again in 3000 seconds"
    )
    # ... and nothing of it is stored
    assert stored(stack) == before

    # And another address from the same client is still taken
    assert post(stack, "someone.else@example.jp")["statusCode"] == 201

    # When the next hour begins, Then the address is taken again
    set_clock(stack, NOW + timedelta(minutes=50), scale=FROZEN)
    assert post(stack, "flood@example.jp", number=11)["statusCode"] == 201


def test_a_client_posting_for_many_addresses_is_limited_per_minute(stack: AwsStack) -> None:
    stack.environment["TSUNAGU_SUBMISSIONS_PER_CLIENT"] = "3/1m"
    for number in range(3):
        assert post(stack, f"invented{number}@example.com")["statusCode"] == 201
    before = stored(stack)

    refused = post(stack, "invented3@example.com")

    assert refused["statusCode"] == 429
    assert refused["headers"]["retry-after"] == "60"  # 10:10:00 sharp: the whole minute
    assert "this network address (at most 3 per minute)" in json.loads(refused["body"])["message"]
    assert stored(stack) == before
    # Another client is not held back by this one
    assert post(stack, "invented3@example.com", source_ip="203.0.113.9")["statusCode"] == 201


def test_a_replay_of_a_taken_submission_is_answered_even_at_the_limit(stack: AwsStack) -> None:
    stack.environment["TSUNAGU_SUBMISSIONS_PER_ADDRESS"] = "1/1h"
    first = post(stack, "double.click@example.jp")
    assert first["statusCode"] == 201

    # The same submission again (a double click, a retried fetch): its first answer, not 429
    again = post(stack, "double.click@example.jp")
    assert again["statusCode"] == 201
    assert again["headers"]["idempotent-replayed"] == "true"
    # A different submission is over the limit
    assert post(stack, "double.click@example.jp", number=1)["statusCode"] == 429


def test_a_browser_post_over_the_limit_gets_a_page_saying_when_to_come_back(
    stack: AwsStack,
) -> None:
    stack.environment["TSUNAGU_SUBMISSIONS_PER_ADDRESS"] = "1/1h"
    event = load_event("capture_form", "browser_form_post")
    assert stack.function("capture_form").invoke(event)["statusCode"] in (201, 303)
    again = copy.deepcopy(event)
    again["body"] = urlencode({"email": "ichiro.suzuki@example.com", "name": "Ichiro Suzuki"})

    refused = stack.function("capture_form").invoke(again)

    assert refused["statusCode"] == 429
    assert refused["headers"]["retry-after"] == "3000"
    assert refused["headers"]["content-type"].startswith("text/html")
    assert "please try again in 3000 seconds" in refused["body"]


def test_limits_are_read_as_count_per_window_and_can_be_switched_off(aws: AwsStack) -> None:
    assert RateLimit.parse("10/1h") == RateLimit(10, 3600)
    assert RateLimit.parse("60/m") == RateLimit(60, 60)
    assert RateLimit.parse("off") is None
    assert RateLimit(5, 600).describe() == "5 per 10 minutes"
    with pytest.raises(ValueError, match="is not a limit like"):
        RateLimit.parse("ten an hour")
    with pytest.raises(ValueError, match="submissions_per_client"):
        replace(aws.settings(), submissions_per_client="lots")
