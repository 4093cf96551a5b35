"""track_event's handler (POST and OPTIONS /t/events) fed with events/track_event/*.json, under
moto, through PynamoDB; and serve_snippet's GET /t.js."""

from __future__ import annotations

import copy
import gzip
import json
from datetime import timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from tests.conftest import AwsStack, load_event, moto_client
from tests.integration.tracking_helpers import (
    NOW,
    ORIGIN,
    SITE_ID,
    VISITOR,
    capture_lead,
    from_ip,
    register_site,
    set_clock,
    stored_events,
    with_headers,
)
from tsunagu import services
from tsunagu.leads.history import HISTORY_EVENTS
from tsunagu.leads.model import LeadEvent
from tsunagu.tracking.browser import MAX_EVENTS

GOOD = {"type": "page_view", "visitor_id": VISITOR, "url": f"{ORIGIN}/"}
_serializer = TypeSerializer()


@pytest.fixture
def stack(aws: AwsStack) -> AwsStack:
    """Given the customer's site registered for https://www.example.com (IPs cut to /24, the
    default), and the clock a few seconds after the sample events happened."""
    set_clock(aws, NOW)
    register_site(aws)
    return aws


def invoke(stack: AwsStack, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = stack.function("track_event").invoke(event)
    return response


def with_body(event: dict[str, Any], body: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return changed


def batch(*events: Any, site_id: str = SITE_ID) -> dict[str, Any]:
    """The beacon sample with these events in its body."""
    return with_body(
        load_event("track_event", "page_view_beacon"), {"site_id": site_id, "events": list(events)}
    )


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


# ---------------------------------------------------------------- accepted batches


def test_a_page_view_beacon_is_stored_against_the_anonymous_visitor(stack: AwsStack) -> None:
    # When the snippet's beacon (text/plain, from the registered origin) arrives
    response = invoke(stack, load_event("track_event", "page_view_beacon"))

    # Then it is accepted, with CORS headers for the page
    assert response["statusCode"] == 200
    assert body_of(response) == {"accepted": 1, "rejected": []}
    assert response["headers"]["access-control-allow-origin"] == ORIGIN
    assert response["headers"]["vary"] == "origin"
    # And stored against the visitor, with the page, UTM tags and the client's own time
    (event,) = stored_events(stack)
    assert event["subject"] == f"visitor#{VISITOR}"
    assert event["sk"] == "2026-11-22T09:00:00.000Z#e5c1f0a4b3d2489f9e7a6b5c4d3e2f10"
    assert event["type"] == "page_view"
    assert event["visitor_id"] == VISITOR
    assert "lead_id" not in event or event["lead_id"] is None
    properties = event["properties"]
    assert properties["site_id"] == SITE_ID
    assert properties["path"] == "/pricing"
    assert properties["title"] == "料金プラン | Example"
    assert properties["referrer"] == "https://mail.example.jp/"
    assert properties["utm"] == {
        "source": "newsletter",
        "medium": "email",
        "campaign": "autumn-2026",
        "content": "hero",
    }
    assert properties["screen"] == "1920x1080"
    assert properties["language"] == "ja-JP"
    assert properties["client_time"] == "2026-11-22T09:00:00.000Z"
    assert "Chrome" in properties["user_agent"]
    assert int(event["expires_at"]) > int(NOW.timestamp())


def test_the_ip_address_is_cut_to_its_network_when_the_site_says_so(stack: AwsStack) -> None:
    invoke(stack, load_event("track_event", "page_view_beacon"))
    invoke(
        stack,
        from_ip(
            batch(dict(GOOD, id="ipv6-event-0001", visitor_id="v_ipv6visitor")),
            "2001:db8:1234:5678:9abc::42",
        ),
    )

    addresses = {e["visitor_id"]: e["properties"]["ip"] for e in stored_events(stack)}
    assert addresses == {VISITOR: "198.51.100.0", "v_ipv6visitor": "2001:db8:1234::"}


def test_the_full_ip_address_is_kept_when_the_site_allows_it(stack: AwsStack) -> None:
    # Given the site changed to keep full addresses
    register_site(stack, truncate_ip=False)

    invoke(stack, load_event("track_event", "page_view_beacon"))

    (event,) = stored_events(stack)
    assert event["properties"]["ip"] == "198.51.100.7"


def test_a_visitor_who_became_a_lead_is_tracked_as_the_lead(stack: AwsStack) -> None:
    # Given a lead captured through the form from the browser with visitor id v_8f14e45fceea167a
    lead_id = capture_lead(stack)
    before = {e["sk"] for e in stored_events(stack)}

    # When that browser and an unknown one send page views in one batch
    response = invoke(
        stack,
        batch(
            dict(GOOD, id="known-visitor-01", visitor_id="v_8f14e45fceea167a"),
            dict(GOOD, id="unknown-visitor-01", visitor_id=VISITOR),
        ),
    )

    # Then the known browser's event is the lead's, the other stays the visitor's
    assert body_of(response) == {"accepted": 2, "rejected": []}
    new = {e["event_id"]: e for e in stored_events(stack) if e["sk"] not in before}
    assert new["known-visitor-01"]["subject"] == f"lead#{lead_id}"
    assert new["known-visitor-01"]["lead_id"] == lead_id
    assert new["known-visitor-01"]["visitor_id"] == "v_8f14e45fceea167a"
    assert new["unknown-visitor-01"]["subject"] == f"visitor#{VISITOR}"


def post_form(stack: AwsStack, email: str, visitor: str) -> str:
    """capture_form: the demo form from the browser ``visitor``, for a new address; the new
    lead's id (the answer names the lead only for an address that was none)."""
    stack.seed_demo_form()
    event = load_event("capture_form", "new_lead_json")
    event["body"] = json.dumps({"email": email, "consent": True, "visitor_id": visitor})
    response = stack.function("capture_form").invoke(event)
    assert response["statusCode"] == 201, response
    lead_id: str = json.loads(response["body"])["lead_id"]
    return lead_id


def timeline_of(stack: AwsStack, lead_id: str) -> list[Any]:
    leads = services.lead_repository(stack.settings())
    lead = leads.get_lead(lead_id)
    assert lead is not None
    return leads.timeline(lead)


def test_the_pages_a_browser_read_before_the_form_come_with_the_lead(stack: AwsStack) -> None:
    # Given a browser that read two pages anonymously
    read = [dict(GOOD, id=f"before-form-{n:02}", url=f"{ORIGIN}/{page}") for n, page in
            enumerate(("pricing", "case-study"))]  # fmt: skip
    invoke(stack, batch(*read))

    # When it submits the demo form
    lead_id = post_form(stack, "hanako.sato@example.jp", VISITOR)

    # Then the lead has both views, before its form, claimed at the instant of the link
    events = timeline_of(stack, lead_id)
    assert [(e.type, e.event_id) for e in events][:2] == [
        ("page_view", "before-form-00"),
        ("page_view", "before-form-01"),
    ]
    assert [e.type for e in events][2:] == ["form_submitted"]
    (submitted,) = [e for e in events if e.type == "form_submitted"]
    copies = [e for e in stored_events(stack) if e["subject"] == f"lead#{lead_id}"]
    assert {e["properties"].get("linked_at") for e in copies if e["type"] == "page_view"} == {
        submitted.occurred_at
    }
    # And the visitor's own items are kept as they were stored
    kept = [e for e in stored_events(stack) if e["subject"] == f"visitor#{VISITOR}"]
    assert [(e["event_id"], e.get("lead_id")) for e in kept] == [
        ("before-form-00", None),
        ("before-form-01", None),
    ]


def submitted_came_from(stack: AwsStack, email: str, visitor: str) -> str:
    """The demo form posted from its page on the site, as a browser posts it (Origin, and the
    page as Referer); where the form_submitted event says the person came from."""
    stack.seed_demo_form()
    event = load_event("capture_form", "new_lead_json")
    event["headers"].update({"origin": ORIGIN, "referer": f"{ORIGIN}/contact"})
    event["body"] = json.dumps({"email": email, "consent": True, "visitor_id": visitor})
    response = stack.function("capture_form").invoke(event)
    assert response["statusCode"] == 201, response
    lead_id = json.loads(response["body"])["lead_id"]
    (submitted,) = [e for e in timeline_of(stack, lead_id) if e.type == "form_submitted"]
    return str(submitted.properties["came_from"])


def test_a_submission_came_from_its_visitors_landing_page_not_from_the_site_it_is_on(
    stack: AwsStack,
) -> None:
    # Given a browser that landed from a search ad, then read another page of the site
    invoke(
        stack,
        batch(
            dict(GOOD, id="landed-01", url=f"{ORIGIN}/lp?utm_source=google&utm_medium=cpc",
                 referrer="https://www.google.com/"),
            dict(GOOD, id="landed-02", url=f"{ORIGIN}/pricing", referrer=f"{ORIGIN}/lp"),
        ),
    )  # fmt: skip
    # When it submits the form on the site, Then it came from the campaign
    assert submitted_came_from(stack, "ad.click@example.jp", VISITOR) == "google"
    # And a browser with no history, posting from the site, came from nowhere else: direct
    assert submitted_came_from(stack, "typed.the.url@example.jp", "v_0000000000000042") == (
        "direct"
    )


def test_a_second_person_on_the_same_browser_does_not_get_the_first_ones_history(
    stack: AwsStack,
) -> None:
    # Given a shared browser (a trade-show booth's tablet): the first person reads the pricing
    # page and leaves their address through the form
    invoke(stack, batch(dict(GOOD, id="first-person-01", url=f"{ORIGIN}/pricing")))
    first = post_form(stack, "ichiro@example.jp", VISITOR)

    # When a second person leaves theirs on the same browser (the latest form wins the link)
    second = post_form(stack, "jiro@example.jp", VISITOR)

    # Then the page read before the first form is the first person's history only
    assert "page_view" in [e.type for e in timeline_of(stack, first)]
    assert [e.type for e in timeline_of(stack, second)] == ["form_submitted"]
    # And what the browser does from then on is the second person's
    invoke(stack, batch(dict(GOOD, id="second-person-01", url=f"{ORIGIN}/seminar")))
    assert [e.event_id for e in timeline_of(stack, second) if e.type == "page_view"] == [
        "second-person-01"
    ]


def test_a_browser_with_a_long_anonymous_history_brings_its_newest_events_of_90_days(
    stack: AwsStack,
) -> None:
    # Given a browser with a page view four months ago, and fifty in the last minutes
    settings = stack.settings()
    old = LeadEvent("long-ago-view-01", "page_view", "2026-07-20T09:00:00.000Z", None, VISITOR,
                    {"url": f"{ORIGIN}/", "site_id": SITE_ID})  # fmt: skip
    services.tracking_repository(settings).put_event(old)
    views = [dict(GOOD, id=f"recent-view-{n:03}", occurred_at=f"2026-11-22T08:{n:02}:00Z")
             for n in range(MAX_EVENTS)]  # fmt: skip
    assert body_of(invoke(stack, batch(*views)))["accepted"] == MAX_EVENTS

    # When it submits the form
    lead_id = post_form(stack, "hanako.sato@example.jp", VISITOR)

    # Then the lead gets the newest forty, in one transaction with the form: the rest stays
    # the visitor's (a form never waits on thousands of a crawler's page views)
    claimed = [e.event_id for e in timeline_of(stack, lead_id) if e.type == "page_view"]
    assert claimed == [
        f"recent-view-{n:03}" for n in range(MAX_EVENTS - HISTORY_EVENTS, MAX_EVENTS)
    ]
    assert HISTORY_EVENTS == 40


GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"user-agent": GOOGLEBOT}, "scanner_user_agent"),
        ({"user-agent": "curl/8.5.0"}, "scanner_user_agent"),
        ({"sec-purpose": "prefetch;prerender"}, "prefetch_header"),
    ],
)
def test_a_machines_page_view_of_a_lead_is_kept_and_never_counts_as_the_leads_activity(
    stack: AwsStack, headers: dict[str, str], reason: str
) -> None:
    # Given a lead whose browser is known (the Chrome sample's page view moves its activity)
    lead_id = capture_lead(stack)
    linked = dict(GOOD, visitor_id="v_8f14e45fceea167a")
    invoke(stack, batch(dict(linked, id="person-view-01", occurred_at="2026-11-22T09:00:01Z")))
    # When a crawler running the snippet, or a script, sends a later page view of that visitor
    response = invoke(
        stack,
        with_headers(
            batch(dict(linked, id="machine-view-1", occurred_at="2026-11-22T09:00:03Z")), **headers
        ),
    )

    # Then it is stored, judged automated with its reason and the signals to judge it again
    assert body_of(response) == {"accepted": 1, "rejected": []}
    stored = {e["event_id"]: e for e in stored_events(stack)}
    person, machine = stored["person-view-01"], stored["machine-view-1"]
    assert person["properties"]["automated"] is False  # judged a person's, and says so
    assert machine["properties"]["automated"] is True
    assert machine["properties"]["reasons"] == [reason]
    assert machine["properties"]["signals"]["kind"] == "browser"
    # And routed, the person's view moves the lead's last activity and the machine's does not
    route = stack.function("route_events")
    for sequence, event in enumerate((person, machine), start=1):
        assert route.invoke(stream_batch(event, str(sequence))) == {"batchItemFailures": []}
    lead = moto_client("dynamodb").get_item(
        TableName=stack.tables["LeadsTable"], Key={"lead_id": {"S": lead_id}}
    )["Item"]
    assert lead["last_activity_at"]["S"] == person["occurred_at"]


def stream_batch(event: dict[str, Any], sequence: str) -> dict[str, Any]:
    """The events table's stream record of a stored event, as route_events receives it."""
    batch = copy.deepcopy(load_event("route_events", "form_submitted"))
    record = batch["Records"][0]
    image = {name: _serializer.serialize(value) for name, value in event.items()}
    record["dynamodb"]["NewImage"] = image
    record["dynamodb"]["Keys"] = {"subject": image["subject"], "sk": image["sk"]}
    record["dynamodb"]["SequenceNumber"] = sequence
    return batch


def test_custom_events_sent_as_json_keep_their_properties(stack: AwsStack) -> None:
    response = invoke(stack, load_event("track_event", "custom_events_json"))

    assert response["statusCode"] == 200
    assert body_of(response) == {"accepted": 2, "rejected": []}
    by_type = {e["type"]: e for e in stored_events(stack)}
    assert set(by_type) == {"pdf_download", "video_view"}
    assert by_type["pdf_download"]["properties"]["properties"] == {
        "file": "whitepaper-2026.pdf",
        "pages": 24,
        "gated": True,
    }
    assert float(by_type["video_view"]["properties"]["properties"]["seconds_watched"]) == 95.5
    assert by_type["video_view"]["occurred_at"] == "2026-11-22T09:00:04.000Z"


def test_a_server_side_post_without_origin_is_accepted_without_cors_headers(
    stack: AwsStack,
) -> None:
    response = invoke(stack, load_event("track_event", "server_side_json"))

    assert response["statusCode"] == 200
    assert "access-control-allow-origin" not in response["headers"]
    (event,) = stored_events(stack)
    assert event["properties"]["ip"] == "203.0.113.0"
    # Kept, but as no person's: nothing proves which server (or script) posted it
    assert event["properties"]["automated"] is True
    assert "no_origin" in event["properties"]["reasons"]


def test_a_curl_beacon_without_origin_is_not_a_persons_page_view(stack: AwsStack) -> None:
    # Given a lead whose browser is known by its visitor id (the form's sample event links it)
    lead_id = capture_lead(stack)
    visitor = "v_8f14e45fceea167a"

    # When a script posts a page view for that visitor, leaving out Origin
    event = copy.deepcopy(load_event("track_event", "server_side_json"))
    event["headers"]["user-agent"] = event["requestContext"]["http"]["userAgent"] = "curl/8.5.0"
    page_view = {"type": "page_view", "visitor_id": visitor, "url": f"{ORIGIN}/pricing"}
    event["body"] = json.dumps({"site_id": SITE_ID, "events": [page_view]})
    assert invoke(stack, event)["statusCode"] == 200

    # Then it is stored as a machine's, for both reasons, and never as the lead's own
    (view,) = [e for e in stored_events(stack) if e["subject"] == f"lead#{lead_id}"
               and e["type"] == "page_view"]  # fmt: skip
    assert view["properties"]["automated"] is True
    assert {"no_origin", "scanner_user_agent"} <= set(view["properties"]["reasons"])


def test_a_client_clock_far_off_is_replaced_by_the_server_time(stack: AwsStack) -> None:
    response = invoke(
        stack,
        batch(
            dict(GOOD, id="stale-clock-0001", occurred_at="2020-01-01T00:00:00Z"),
            dict(GOOD, id="future-clock-001", occurred_at="2030-01-01T00:00:00Z"),
        ),
    )

    assert body_of(response)["accepted"] == 2
    for event in stored_events(stack):
        assert event["occurred_at"].startswith("2026-11-22T09:00:0")
        assert event["properties"]["client_time"][:4] in ("2020", "2030")


def test_a_resent_beacon_stores_each_event_once(stack: AwsStack) -> None:
    # Given a beacon and a JSON batch already stored
    invoke(stack, load_event("track_event", "page_view_beacon"))
    invoke(stack, load_event("track_event", "custom_events_json"))
    first = stored_events(stack)

    # When the browser sends both again (same event ids, same occurred_at)
    again = invoke(stack, load_event("track_event", "page_view_beacon"))
    invoke(stack, load_event("track_event", "custom_events_json"))

    # Then the answer is the same and each event is stored once
    assert again["statusCode"] == 200
    events = stored_events(stack)
    assert len(events) == 3
    assert [e["sk"] for e in events] == [e["sk"] for e in first]


def test_a_beacon_resent_after_its_visitor_became_a_lead_is_stored_once(stack: AwsStack) -> None:
    # Given a page view stored while browser v_8f14e45fceea167a was anonymous (a repeat is the
    # same event when it has the same id and the same time)
    browser = {"visitor_id": "v_8f14e45fceea167a", "occurred_at": "2026-11-22T09:00:01.000Z"}
    early = dict(GOOD, id="before-the-form-01", **browser)
    invoke(stack, batch(early))
    # ... and the form then linked that browser to a lead
    lead_id = capture_lead(stack)
    before = stored_events(stack)

    # When the browser sends the same beacon again, now with one page view more
    later = dict(GOOD, id="after-the-form-01", **browser)
    response = invoke(stack, batch(early, later))

    # Then both are accepted and only the new one is stored, under the lead: a second copy of
    # the first under the lead would be scored and routed again (found by make proof's load)
    assert body_of(response) == {"accepted": 2, "rejected": []}
    new = [e for e in stored_events(stack) if e not in before]
    assert [(e["subject"], e["event_id"]) for e in new] == [
        (f"lead#{lead_id}", "after-the-form-01")
    ]


def test_an_event_repeated_inside_one_batch_is_stored_once(stack: AwsStack) -> None:
    event = dict(GOOD, id="repeated-event-01", occurred_at="2026-11-22T09:00:01.000Z")

    response = invoke(stack, batch(event, event))

    assert response["statusCode"] == 200
    assert len(stored_events(stack)) == 1


def client_clock(offset: timedelta) -> str:
    """What a browser whose clock is ``offset`` off sends as occurred_at."""
    return (NOW + offset).isoformat().replace("+00:00", "Z")


def test_a_beacon_from_a_fast_clock_sent_twice_is_stored_once(stack: AwsStack) -> None:
    # Given a visitor whose computer clock runs 10 minutes fast (beyond the 5 minutes believed)
    event = dict(GOOD, id="e5c1f0a4b3d2489f", occurred_at=client_clock(timedelta(minutes=10)))

    # When the browser delivers the same beacon twice
    first = invoke(stack, batch(event))
    again = invoke(stack, batch(event))

    # Then both are answered as accepted, and one page view is stored, on the server's time
    assert body_of(first) == body_of(again) == {"accepted": 1, "rejected": []}
    (stored,) = stored_events(stack)
    assert stored["occurred_at"].startswith("2026-11-22T09:00:0")


def test_the_same_event_twice_in_one_batch_from_a_slow_clock_is_stored_once(
    stack: AwsStack,
) -> None:
    # Given a batch in which a retried event was merged with itself, from a clock not believed
    # (three days behind): each copy would get the server's time plus its place in the batch
    event = dict(GOOD, id="e5c1f0a4b3d2489f", occurred_at=client_clock(-timedelta(days=3)))

    response = invoke(stack, batch(event, event))

    # Then the answer counts one event, and one is stored
    assert body_of(response) == {"accepted": 1, "rejected": []}
    assert len(stored_events(stack)) == 1


def test_a_slow_clocks_beacon_resent_after_its_visitor_became_a_lead_is_stored_once(
    stack: AwsStack,
) -> None:
    # Given a page view from a clock a day behind, stored while its browser was anonymous
    browser = {"visitor_id": "v_8f14e45fceea167a", "occurred_at": client_clock(-timedelta(days=2))}
    early = dict(GOOD, id="before-the-form-01", **browser)
    invoke(stack, batch(early))
    # ... and the form then linked that browser to a lead
    capture_lead(stack)
    before = stored_events(stack)

    # When the browser sends the same beacon again
    response = invoke(stack, batch(early))

    # Then it is accepted and nothing more is stored (not under the lead either)
    assert body_of(response) == {"accepted": 1, "rejected": []}
    assert stored_events(stack) == before


# ---------------------------------------------------------------- partly or wholly refused


def test_a_mixed_batch_keeps_the_good_events_and_reports_the_bad_by_index(
    stack: AwsStack,
) -> None:
    response = invoke(stack, load_event("track_event", "mixed_batch"))

    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["accepted"] == 2
    (rejected,) = body["rejected"]
    assert rejected["index"] == 1
    fields = {error["field"].split(".")[0] for error in rejected["errors"]}
    assert fields == {"type", "url", "properties"}
    assert all(error["message"] for error in rejected["errors"])
    assert {e["event_id"] for e in stored_events(stack)} == {
        "aa11bb22cc33dd44ee55ff6600778899",
        "99887766554433221100ffeeddccbbaa",
    }


def test_a_batch_with_no_good_event_is_a_422_and_stores_nothing(stack: AwsStack) -> None:
    response = invoke(stack, batch({"type": "page_view"}, "page_view", None))

    assert response["statusCode"] == 422
    body = body_of(response)
    assert body["accepted"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1, 2]
    assert body["rejected"][0]["errors"] == [{"field": "visitor_id", "message": "is required"}]
    assert body["rejected"][1]["errors"][0]["field"] == "(event)"
    assert stored_events(stack) == []


@pytest.mark.parametrize(
    "body",
    [
        {"site_id": SITE_ID, "events": []},
        {"site_id": SITE_ID},
        {"events": [GOOD]},
        {"site_id": 42, "events": [GOOD]},
        {"site_id": SITE_ID, "events": {"0": GOOD}},
    ],
    ids=["no events", "events missing", "site missing", "site not text", "events not a list"],
)
def test_a_body_of_the_wrong_shape_is_a_422(stack: AwsStack, body: dict[str, Any]) -> None:
    response = invoke(stack, with_body(load_event("track_event", "page_view_beacon"), body))

    assert response["statusCode"] == 422
    assert body_of(response)["message"]
    assert body_of(response)["errors"]
    assert stored_events(stack) == []


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("malformed_json", 400),
        ("wrong_content_type", 415),
        ("unknown_site", 404),
        ("foreign_origin", 403),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_store_nothing(
    stack: AwsStack, case: str, status: int
) -> None:
    response = invoke(stack, load_event("track_event", case))

    assert response["statusCode"] == status
    assert body_of(response)["message"]
    assert "access-control-allow-origin" not in response["headers"]
    assert stored_events(stack) == []


def test_a_body_that_is_not_utf8_is_a_400(stack: AwsStack) -> None:
    event = load_event("track_event", "page_view_beacon")
    event["body"] = "eyJzaXRlX2lkIjog/w=="  # base64 of '{"site_id": ' and a 0xff byte
    event["isBase64Encoded"] = True

    response = invoke(stack, event)

    assert response["statusCode"] == 400
    assert stored_events(stack) == []


def test_a_batch_of_fifty_events_is_accepted(stack: AwsStack) -> None:
    response = invoke(stack, batch(*(dict(GOOD, id=f"event-{i:04d}-of-50") for i in range(50))))

    assert response["statusCode"] == 200
    assert body_of(response)["accepted"] == 50
    assert len(stored_events(stack)) == 50


def test_a_batch_of_fifty_one_events_is_a_413(stack: AwsStack) -> None:
    response = invoke(stack, batch(*(dict(GOOD, id=f"event-{i:04d}-of-51") for i in range(51))))

    assert response["statusCode"] == 413
    assert "50" in body_of(response)["message"]
    assert stored_events(stack) == []


def test_a_body_over_64_kib_is_a_413(stack: AwsStack) -> None:
    body = json.dumps({"site_id": SITE_ID, "events": [GOOD], "padding": "x" * (65 * 1024)})

    response = invoke(stack, with_body(load_event("track_event", "page_view_beacon"), body))

    assert response["statusCode"] == 413
    assert stored_events(stack) == []


def test_a_page_with_a_long_address_is_kept_cut_and_a_hostile_length_is_still_a_413(
    stack: AwsStack,
) -> None:
    # Given a page view of a page whose address is 10,000 characters long, campaign last
    url = f"{ORIGIN}/search?{'q=manufacturing&' * 625}utm_campaign=dec"
    long = dict(GOOD, id="the-long-address", url=url)
    # When the snippet's beacon arrives
    response = invoke(stack, batch(long))
    # Then the page view is stored, its address cut to 2,048 characters, its campaign kept
    assert (response["statusCode"], body_of(response)["rejected"]) == (200, [])
    (stored,) = stored_events(stack)
    assert stored["properties"]["url"] == url[:2048]
    assert stored["properties"]["utm"] == {"campaign": "dec"}
    # But an address of a megabyte is a body no page sends: refused whole, nothing stored
    hostile = dict(GOOD, id="the-huge-address", url=f"{ORIGIN}/{'a' * 1024 * 1024}")
    assert invoke(stack, batch(hostile))["statusCode"] == 413
    assert [e["event_id"] for e in stored_events(stack)] == ["the-long-address"]


# Every field of an event, with what a hostile or broken page might put in it. Each value makes
# its event invalid; the error names the field.
HOSTILE: dict[str, list[Any]] = {
    "type": ["<script>alert(1)</script>", "page\x00view", "x" * 10_000, {"nested": "object"}],
    "visitor_id": ["<img src=x onerror=alert(1)>", "v_1234\x07567", "v" * 10_000, [VISITOR]],
    "id": ["<b>evt_12345678</b>", "evt_1234\x1b5678", "e" * 10_000, {"$ne": None}],
    "occurred_at": [
        "<script>alert(1)</script>",
        "2026-11-22T09:00:00\x00Z",
        "2" * 10_000,
        {"$gt": ""},
        "2026-11-22T09:00:00",  # no time zone
    ],
    "url": [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "//evil.example.net/",
        {"href": ORIGIN},
    ],
    "title": ["\x1b[31mred\x1b[0m", "Title\x00", "t" * 10_000, {"text": "nested"}],
    "referrer": ["javascript:alert(1)", "vbscript:msgbox(1)", "r" * 10_000, [ORIGIN]],
    "screen": ["<svg onload=alert(1)>", "1920x1080\x00", "9" * 10_000, {"w": 1920}],
    "language": ["<script>", "ja\x00JP", "j" * 10_000, ["ja"]],
    "properties": [
        {"plan": {"nested": {"deeper": 1}}},
        {"plans": ["basic", "pro"]},
        {"<script>": "x"},
        {"note": "x" * 10_000},
        {"note": "line\x00break"},
        {f"p{i}": i for i in range(21)},
        {"k" * 10_000: 1},
        "not an object",
    ],
    "__proto__": [{"polluted": True}],
}


@pytest.mark.parametrize("field", list(HOSTILE))
def test_hostile_values_are_rejected_per_event(stack: AwsStack, field: str) -> None:
    # Given one good event, then one event per hostile value of this field
    hostile = [{**GOOD, "id": f"hostile-{i:04d}", field: v} for i, v in enumerate(HOSTILE[field])]

    response = invoke(stack, batch(dict(GOOD, id="the-good-event"), *hostile))

    # Then the good event is kept and each hostile one is reported, naming the field
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == list(range(1, len(hostile) + 1))
    for rejected in body["rejected"]:
        assert {e["field"].split(".")[0] for e in rejected["errors"]} == {field}, rejected
    assert [e["event_id"] for e in stored_events(stack)] == ["the-good-event"]


def test_values_that_are_not_events_are_rejected_per_event(stack: AwsStack) -> None:
    response = invoke(stack, batch(GOOD, "page_view", 42, None, [GOOD], True))

    body = body_of(response)
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5]
    assert all(r["errors"][0]["field"] == "(event)" for r in body["rejected"])
    assert len(stored_events(stack)) == 1


def test_markup_in_a_title_is_stored_as_inert_text(stack: AwsStack) -> None:
    # Markup is just text to Tsunagu: stored as typed, escaped wherever it is shown.
    title = "<script>alert(1)</script> & 'quotes'"

    response = invoke(stack, batch(dict(GOOD, title=title)))

    assert body_of(response) == {"accepted": 1, "rejected": []}
    (event,) = stored_events(stack)
    assert event["properties"]["title"] == title


@pytest.mark.parametrize("field", ["url", "referrer"])
@pytest.mark.parametrize(
    "value",
    [f"{ORIGIN}/a\r\nSet-Cookie: x=1", f"{ORIGIN}/a\x00b", f"{ORIGIN}/\x1b[2J"],
    ids=["crlf", "nul", "escape"],
)
def test_control_characters_in_urls_are_rejected(stack: AwsStack, field: str, value: str) -> None:
    response = invoke(stack, batch(dict(GOOD, id="the-good-event"), dict(GOOD, **{field: value})))

    body = body_of(response)
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1]
    assert [e["event_id"] for e in stored_events(stack)] == ["the-good-event"]


@pytest.mark.parametrize("number", ["1e400", "1e125", "1e-131", "-1e-200", "5e-324"])
def test_a_number_dynamodb_cannot_store_is_rejected_not_a_500(stack: AwsStack, number: str) -> None:
    # Too large, or too small in magnitude (DynamoDB stores 1e-130 to under 1e126): the
    # store would refuse the whole write part-way through the batch
    body = (
        '{"site_id": "example-corp", "events": ['
        '{"type": "page_view", "visitor_id": "v_3b7e1d2c9a4f6e80", "id": "the-good-event"},'
        '{"type": "page_view", "visitor_id": "v_3b7e1d2c9a4f6e80", "properties": {"n": '
        + number
        + "}}]}"
    )

    response = invoke(stack, with_body(load_event("track_event", "page_view_beacon"), body))

    assert response["statusCode"] == 200, response
    rejected = body_of(response)["rejected"]
    assert [(r["index"], "number out of range" in json.dumps(r)) for r in rejected] == [(1, True)]
    assert [e["event_id"] for e in stored_events(stack)] == ["the-good-event"]


# ---------------------------------------------------------------- CORS preflight


def test_the_preflight_allows_a_registered_origin(stack: AwsStack) -> None:
    response = invoke(stack, load_event("track_event", "preflight"))

    assert response["statusCode"] == 204
    assert response["headers"]["access-control-allow-origin"] == ORIGIN
    assert response["headers"]["vary"] == "origin"
    assert "POST" in response["headers"]["access-control-allow-methods"]
    assert response["headers"]["access-control-allow-headers"] == "content-type"
    assert response["body"] == ""


@pytest.mark.parametrize(
    "change",
    ["foreign origin", "no origin", "no site", "unknown site"],
)
def test_the_preflight_refuses_anything_else(stack: AwsStack, change: str) -> None:
    event = load_event("track_event", "preflight")
    if change == "foreign origin":
        event = with_headers(event, origin="https://evil.example.net")
    elif change == "no origin":
        del event["headers"]["origin"]
    elif change == "no site":
        del event["queryStringParameters"]
        event["rawQueryString"] = ""
    else:
        event["queryStringParameters"]["site"] = "no-such-site"

    response = invoke(stack, event)

    assert response["statusCode"] == 403
    assert "access-control-allow-origin" not in response["headers"]
    assert stored_events(stack) == []


# ---------------------------------------------------------------- the snippet


def test_the_snippet_is_small_cacheable_javascript(aws: AwsStack) -> None:
    response = aws.function("serve_snippet").invoke(load_event("serve_snippet", "snippet"))

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("application/javascript")
    assert response["headers"]["x-content-type-options"] == "nosniff"
    assert "max-age=" in response["headers"]["cache-control"]
    assert "sendBeacon" in response["body"]
    assert "/t/events" in response["body"]
    assert len(gzip.compress(response["body"].encode("utf-8"))) < 2048
