"""click_link (GET and HEAD /c/{token}) and open_pixel (GET /o/{token}) fed with
events/click_link/*.json and events/open_pixel/*.json under moto, with freshly signed tokens;
and route_events given the stored clicks."""

from __future__ import annotations

import base64
import json
import secrets
import struct
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import AwsStack, load_event, moto_client
from tests.integration.tracking_helpers import (
    BROWSER,
    DESTINATION,
    LEAD_ID,
    MESSAGE_ID,
    NOW,
    capture_lead,
    from_ip,
    set_clock,
    sign,
    stored_events,
    with_headers,
    with_token,
)
from tsunagu.tracking.judgement import rejudge
from tsunagu.tracking.tokens import TokenKind, TokenSigner, TrackingToken

# Bursts are clicks seconds apart: for those tests the clock runs a thousand times slower than
# real time, and moves only where the test sets it, so a slow machine cannot spread a burst out.
SLOW = 0.001


@pytest.fixture
def stack(aws: AwsStack) -> AwsStack:
    """Given the stack's clock at NOW (tokens are signed as sent an hour earlier unless said)."""
    set_clock(aws, NOW)
    return aws


def click(stack: AwsStack, case: str, token: str | None = None) -> dict[str, Any]:
    event = load_event("click_link", case)
    response: dict[str, Any] = stack.function("click_link").invoke(
        event if token is None else with_token(event, token)
    )
    return response


def open_pixel(stack: AwsStack, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = stack.function("open_pixel").invoke(event)
    return response


def assert_not_a_redirect(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 404
    assert "location" not in {name.lower() for name in response["headers"]}
    assert response["headers"]["content-type"].startswith("text/html")
    assert response["headers"]["cache-control"] == "no-store"
    assert "evil.example.net" not in response["body"]


def assert_is_the_pixel(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "image/gif"
    assert response["isBase64Encoded"] is True
    gif = base64.b64decode(response["body"])
    assert gif[:6] in (b"GIF87a", b"GIF89a")
    assert struct.unpack("<HH", gif[6:10]) == (1, 1)
    assert gif.endswith(b";")


def split(token: str) -> tuple[str, dict[str, Any], str]:
    key_id, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return key_id, payload, signature


def encode(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


# ---------------------------------------------------------------- clicks


def test_a_valid_click_redirects_to_its_destination_and_is_stored(stack: AwsStack) -> None:
    # Given a click token for a mail sent an hour ago
    token = sign(stack)

    # When a browser follows the link
    response = click(stack, "browser_click", token)

    # Then it is sent to the signed destination, with no referrer and no caching
    assert response["statusCode"] == 302
    assert response["headers"]["location"] == DESTINATION
    assert response["headers"]["cache-control"] == "no-store"
    assert response["headers"]["referrer-policy"] == "no-referrer"
    # And the click is the lead's, judged human, with its evidence
    (event,) = stored_events(stack)
    assert event["subject"] == f"lead#{LEAD_ID}"
    assert event["type"] == "link_clicked"
    assert event["properties"]["automated"] is False
    assert event["properties"]["reasons"] == []
    assert event["properties"]["message_id"] == MESSAGE_ID
    assert event["properties"]["link_id"] == "cta"
    assert event["properties"]["url"] == DESTINATION
    signals = event["properties"]["signals"]
    assert signals["method"] == "GET"
    assert signals["ip"] == "198.51.100.23"
    assert 3600 <= float(signals["seconds_since_sent"]) < 3660


def test_a_head_request_redirects_but_is_stored_as_automated(stack: AwsStack) -> None:
    response = click(stack, "head_request", sign(stack))

    assert response["statusCode"] == 302
    assert response["headers"]["location"] == DESTINATION
    (event,) = stored_events(stack)
    assert event["properties"]["automated"] is True
    assert "head_request" in event["properties"]["reasons"]


def test_a_prefetch_is_stored_as_automated(stack: AwsStack) -> None:
    event = with_headers(
        with_token(load_event("click_link", "browser_click"), sign(stack)),
        sec_purpose="prefetch",
    )

    response = stack.function("click_link").invoke(event)

    assert response["statusCode"] == 302
    (stored,) = stored_events(stack)
    assert stored["properties"]["reasons"] == ["prefetch_header"]


def test_the_honeypot_link_is_automated(stack: AwsStack) -> None:
    token = sign(stack, TokenKind.HONEYPOT, url="https://www.example.com/", link_id="honeypot")

    response = click(stack, "browser_click", token)

    assert response["statusCode"] == 302
    (event,) = stored_events(stack)
    assert event["properties"]["automated"] is True
    assert event["properties"]["reasons"] == ["honeypot_link"]


@pytest.mark.parametrize(
    ("scanner", "own_reasons"),
    [
        ("safe_links_scan", []),
        ("mimecast_scan", ["scanner_user_agent"]),
    ],
)
def test_a_scanner_burst_is_automated_and_a_later_human_click_still_counts(
    stack: AwsStack, scanner: str, own_reasons: list[str]
) -> None:
    # Given a mail with two links, sent three seconds ago
    set_clock(stack, NOW, scale=SLOW)
    sent = NOW - timedelta(seconds=3)
    first = sign(stack, sent_at=sent, url="https://www.example.com/pricing", link_id="pricing")
    second = sign(stack, sent_at=sent, url="https://www.example.com/seminar", link_id="seminar")

    # When the gateway follows both links within a second of each other
    assert click(stack, scanner, first)["statusCode"] == 302
    assert click(stack, scanner, second)["statusCode"] == 302

    # Then both are stored as automated, with every reason that fired
    reasons = {e["properties"]["link_id"]: e["properties"]["reasons"] for e in stored_events(stack)}
    assert reasons == {
        # The first click's evidence gains the burst the second click revealed.
        "pricing": [*own_reasons, "too_soon_after_delivery", "link_burst"],
        "seminar": [*own_reasons, "too_soon_after_delivery", "link_burst"],
    }
    assert all(e["properties"]["automated"] is True for e in stored_events(stack))

    # When the person opens the mail two minutes later and clicks the first link
    set_clock(stack, NOW + timedelta(minutes=2))
    response = click(stack, "browser_click", first)

    # Then they are redirected, and that click counts as theirs
    assert response["headers"]["location"] == "https://www.example.com/pricing"
    (human,) = [e for e in stored_events(stack) if e["properties"]["automated"] is False]
    assert human["properties"]["link_id"] == "pricing"
    assert human["properties"]["reasons"] == []


def test_the_first_click_of_a_burst_is_re_judged_when_the_burst_is_seen(stack: AwsStack) -> None:
    # Given a mail sent an hour ago, and a first click that looks human when it comes
    first = sign(stack, url="https://www.example.com/pricing", link_id="pricing")
    second = sign(stack, url="https://www.example.com/seminar", link_id="seminar")
    set_clock(stack, NOW, scale=SLOW)
    click(stack, "safe_links_scan", first)

    # When another link of the same mail follows within a second
    click(stack, "safe_links_scan", second)

    # Then both are automated: the first with link_burst added to its evidence
    reasons = {e["properties"]["link_id"]: e["properties"]["reasons"] for e in stored_events(stack)}
    assert reasons == {"pricing": ["link_burst"], "seminar": ["link_burst"]}
    assert all(e["properties"]["automated"] is True for e in stored_events(stack))


def test_a_re_judged_burst_click_keeps_its_judgement_when_judged_again(stack: AwsStack) -> None:
    # Given the first click of a burst, re-judged as automated when the second came
    set_clock(stack, NOW, scale=SLOW)
    click(stack, "safe_links_scan", sign(stack, url="https://www.example.com/a", link_id="a"))
    click(stack, "safe_links_scan", sign(stack, url="https://www.example.com/b", link_id="b"))
    (first,) = [e for e in stored_events(stack) if e["properties"]["link_id"] == "a"]
    assert first["properties"]["reasons"] == ["link_burst"]

    # When it is judged again from the evidence stored with it
    judgement = rejudge(first["properties"]["signals"])

    # Then the answer is the same
    assert judgement.automated is True
    assert judgement.reasons == ["link_burst"]


def test_a_person_coming_back_to_the_same_link_is_not_a_burst(stack: AwsStack) -> None:
    token = sign(stack)
    set_clock(stack, NOW, scale=SLOW)
    click(stack, "browser_click", token)

    # When the same link is clicked again two seconds later
    set_clock(stack, NOW + timedelta(seconds=2), scale=SLOW)
    click(stack, "browser_click", token)

    events = stored_events(stack)
    assert len(events) == 2
    assert all(e["properties"]["automated"] is False for e in events)


def test_one_link_clicked_twice_within_a_second_is_a_burst(stack: AwsStack) -> None:
    # Given a click that looks like a person's
    token = sign(stack)
    set_clock(stack, NOW, scale=SLOW)
    click(stack, "browser_click", token)

    # When the same link is fetched again half a second later
    set_clock(stack, NOW + timedelta(milliseconds=500), scale=SLOW)
    click(stack, "browser_click", token)

    # Then both are a machine's: the first re-judged with what the second showed
    events = stored_events(stack)
    assert [e["properties"]["reasons"] for e in events] == [["link_burst"], ["link_burst"]]
    assert [e["properties"]["signals"]["same_link_clicked_just_after"] for e in events] == [1, 0]


def tampered_tokens(stack: AwsStack) -> dict[str, str]:
    """Tokens that must never redirect, each made from a good one the way an attacker would."""
    good = sign(stack)
    key_id, payload, signature = split(good)
    body = good.split(".")[1]
    middle = len(body) // 2
    altered_char = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
    other_lead = sign(stack, lead_id="lead_01JDEXAMPLE0000000000000099")
    stranger = TokenSigner({key_id: secrets.token_bytes(48)}, key_id)
    unknown_key = TokenSigner({"k9": secrets.token_bytes(48)}, "k9")
    genuine = TrackingToken(
        TokenKind.CLICK, MESSAGE_ID, LEAD_ID, int(NOW.timestamp()) - 3600, DESTINATION, "cta"
    )
    return {
        "one payload character changed": f"{key_id}.{altered_char}.{signature}",
        "destination changed": (
            f"{key_id}.{encode({**payload, 'u': 'https://evil.example.net/'})}.{signature}"
        ),
        "another lead spliced in": (
            f"{key_id}.{encode({**payload, 'l': 'lead_01JDEXAMPLE0000000000000099'})}.{signature}"
        ),
        "another token's signature": f"{key_id}.{body}.{other_lead.split('.')[2]}",
        "signed with another key": stranger.sign(genuine),
        "signed with an unknown key id": unknown_key.sign(genuine),
        "signature cut off": f"{key_id}.{body}",
        "signature empty": f"{key_id}.{body}.",
        "an extra part": f"{good}.https://evil.example.net",
        "evil host appended": f"{good}@evil.example.net",
        "an open token": sign(stack, TokenKind.OPEN),
        "too long": f"{key_id}.{'A' * 5000}.{signature}",
        "not a token": "https://evil.example.net/",
        "empty": "",
    }


@pytest.mark.parametrize(
    "how",
    [
        "one payload character changed",
        "destination changed",
        "another lead spliced in",
        "another token's signature",
        "signed with another key",
        "signed with an unknown key id",
        "signature cut off",
        "signature empty",
        "an extra part",
        "evil host appended",
        "an open token",
        "too long",
        "not a token",
        "empty",
    ],
)
def test_a_tampered_token_gets_a_page_and_no_redirect(stack: AwsStack, how: str) -> None:
    token = tampered_tokens(stack)[how]

    response = click(stack, "browser_click", token)

    assert_not_a_redirect(response)
    assert stored_events(stack) == []


@pytest.mark.parametrize("case", ["forged_token", "evil_url_in_path", "evil_url_in_query"])
def test_sample_attacks_get_a_page_and_no_redirect(stack: AwsStack, case: str) -> None:
    # events/click_link/evil_url_in_query.json still has its placeholder: no valid token
    response = click(stack, case)

    assert_not_a_redirect(response)
    assert stored_events(stack) == []


def test_a_destination_in_the_query_is_ignored(stack: AwsStack) -> None:
    # Given a valid token, and ?url=https://evil.example.net/login&next=//evil.example.net
    response = click(stack, "evil_url_in_query", sign(stack))

    # Then the redirect goes only where the token says
    assert response["statusCode"] == 302
    assert response["headers"]["location"] == DESTINATION


def test_a_head_request_with_a_forged_token_gets_no_redirect(stack: AwsStack) -> None:
    event = load_event("click_link", "forged_token")
    event["requestContext"]["http"]["method"] = "HEAD"

    response = stack.function("click_link").invoke(event)

    assert_not_a_redirect(response)
    assert stored_events(stack) == []


# ---------------------------------------------------------------- opens


def test_an_open_by_a_person_is_stored_as_human(stack: AwsStack) -> None:
    response = open_pixel(
        stack, with_token(load_event("open_pixel", "open"), sign(stack, TokenKind.OPEN))
    )

    assert_is_the_pixel(response)
    assert response["headers"]["cache-control"].startswith("no-store")
    (event,) = stored_events(stack)
    assert event["subject"] == f"lead#{LEAD_ID}"
    assert event["type"] == "mail_opened"
    assert event["properties"]["message_id"] == MESSAGE_ID
    assert event["properties"]["automated"] is False
    assert event["properties"]["reasons"] == []


def test_a_token_without_the_gif_suffix_counts_too(stack: AwsStack) -> None:
    token = sign(stack, TokenKind.OPEN)
    event = with_token(load_event("open_pixel", "open"), token)
    event["pathParameters"]["token"] = token

    assert_is_the_pixel(open_pixel(stack, event))
    assert len(stored_events(stack)) == 1


@pytest.mark.parametrize(
    ("ip", "user_agent"),
    [
        ("17.58.100.12", "Mozilla/5.0"),
        ("17.58.100.12", BROWSER),
        ("198.51.100.99", "Mozilla/5.0"),
    ],
    ids=["apple network and bare agent", "apple network", "bare agent"],
)
def test_an_apple_privacy_protection_fetch_is_automated(
    stack: AwsStack, ip: str, user_agent: str
) -> None:
    event = with_token(load_event("open_pixel", "apple_privacy_proxy"), sign(stack, TokenKind.OPEN))

    response = open_pixel(stack, with_headers(from_ip(event, ip), user_agent=user_agent))

    assert_is_the_pixel(response)
    (stored,) = stored_events(stack)
    assert stored["properties"]["automated"] is True
    assert stored["properties"]["reasons"] == ["apple_privacy_proxy"]


def test_a_gmail_image_proxy_open_is_human(stack: AwsStack) -> None:
    event = with_token(load_event("open_pixel", "gmail_image_proxy"), sign(stack, TokenKind.OPEN))

    assert_is_the_pixel(open_pixel(stack, event))

    (stored,) = stored_events(stack)
    assert stored["properties"]["automated"] is False
    assert "GoogleImageProxy" in stored["properties"]["signals"]["user_agent"]


def test_an_open_right_after_sending_is_automated(stack: AwsStack) -> None:
    token = sign(stack, TokenKind.OPEN, sent_at=NOW - timedelta(seconds=2))

    open_pixel(stack, with_token(load_event("open_pixel", "open"), token))

    (stored,) = stored_events(stack)
    assert stored["properties"]["reasons"] == ["too_soon_after_delivery"]


@pytest.mark.parametrize("how", ["placeholder", "click token", "altered", "other key", "garbage"])
def test_an_invalid_open_token_still_gets_the_pixel_and_stores_nothing(
    stack: AwsStack, how: str
) -> None:
    good = sign(stack, TokenKind.OPEN)
    key_id, payload, signature = split(good)
    token = {
        "placeholder": "SIGNED_TOKEN",
        "click token": sign(stack),
        "altered": f"{key_id}.{encode({**payload, 'l': 'lead_someone_else'})}.{signature}",
        "other key": TokenSigner({key_id: secrets.token_bytes(48)}, key_id).sign(
            TrackingToken(TokenKind.OPEN, MESSAGE_ID, LEAD_ID, int(NOW.timestamp()))
        ),
        "garbage": "<script>alert(1)</script>\x00" * 300,
    }[how]

    response = open_pixel(stack, with_token(load_event("open_pixel", "open"), token))

    assert_is_the_pixel(response)
    assert stored_events(stack) == []


# ---------------------------------------------------------------- what the router does with them


def stream_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A DynamoDB stream batch carrying these events-table items as INSERTs."""
    template = load_event("route_events", "form_submitted")["Records"][0]
    records = []
    for sequence, item in enumerate(items, start=1):
        record = json.loads(json.dumps(template))
        record["eventID"] = str(sequence)
        record["dynamodb"]["Keys"] = {"subject": item["subject"], "sk": item["sk"]}
        record["dynamodb"]["NewImage"] = item
        record["dynamodb"]["SequenceNumber"] = str(sequence)
        records.append(record)
    return {"Records": records}


def click_items(stack: AwsStack) -> dict[bool, dict[str, Any]]:
    """The stored link_clicked items (raw DynamoDB JSON), by their automated judgement."""
    dynamodb = moto_client("dynamodb")
    items = dynamodb.scan(TableName=stack.tables["EventsTable"])["Items"]
    return {
        item["properties"]["M"]["automated"]["BOOL"]: item
        for item in items
        if item["type"]["S"] == "link_clicked"
    }


def last_activity(stack: AwsStack, lead_id: str) -> tuple[str | None, str | None]:
    dynamodb = moto_client("dynamodb")
    item = dynamodb.get_item(TableName=stack.tables["LeadsTable"], Key={"lead_id": {"S": lead_id}})[
        "Item"
    ]
    return (
        item.get("last_activity_at", {}).get("S"),
        item.get("last_activity_type", {}).get("S"),
    )


@pytest.fixture
def clicks(stack: AwsStack) -> tuple[str, dict[bool, dict[str, Any]]]:
    """Given a captured lead, a person's click on a link in its mail and, a minute later, a link
    checker's HEAD on the same link, both stored by click_link."""
    lead_id = capture_lead(stack)
    token = sign(stack, lead_id=lead_id)
    click(stack, "browser_click", token)
    set_clock(stack, NOW + timedelta(minutes=1))
    click(stack, "head_request", token)
    return lead_id, click_items(stack)


def test_an_automated_click_does_not_move_the_leads_last_activity(
    stack: AwsStack, clicks: tuple[str, dict[bool, dict[str, Any]]]
) -> None:
    lead_id, items = clicks
    before = last_activity(stack, lead_id)

    result = stack.function("route_events").invoke(stream_batch([items[True]]))

    assert result == {"batchItemFailures": []}
    assert last_activity(stack, lead_id) == before
    assert before[1] != "link_clicked"


def test_a_human_click_moves_the_leads_last_activity_and_a_later_automated_one_does_not(
    stack: AwsStack, clicks: tuple[str, dict[bool, dict[str, Any]]]
) -> None:
    lead_id, items = clicks
    human_at = items[False]["occurred_at"]["S"]
    assert items[True]["occurred_at"]["S"] > human_at

    result = stack.function("route_events").invoke(stream_batch([items[False], items[True]]))

    assert result == {"batchItemFailures": []}
    assert last_activity(stack, lead_id) == (human_at, "link_clicked")


def test_a_destination_beyond_ascii_is_redirected_to_as_a_browser_would_ask_for_it(
    stack: AwsStack,
) -> None:
    # Given a click token for a Japanese path with a lead's name in its query
    destination = "https://www.example.com/セミナー/?name=佐藤 花子&ref=a%2Fb#申込"
    token = sign(stack, url=destination)

    # When a browser follows the link
    response = click(stack, "browser_click", token)

    # Then the header is ASCII, the URI a browser would ask for (escapes already there kept)
    assert response["statusCode"] == 302
    assert response["headers"]["location"] == (
        "https://www.example.com/%E3%82%BB%E3%83%9F%E3%83%8A%E3%83%BC/"
        "?name=%E4%BD%90%E8%97%A4%20%E8%8A%B1%E5%AD%90&ref=a%2Fb#%E7%94%B3%E8%BE%BC"
    )
    # And the click is stored with the link as the mail had it
    (event,) = stored_events(stack)
    assert event["properties"]["url"] == destination
