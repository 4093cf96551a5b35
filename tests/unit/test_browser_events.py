"""Browser events: per-event validation, identity, privacy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from tsunagu.analytics.rows import event_row
from tsunagu.clock import FixedClock
from tsunagu.errors import NotFound, OriginNotAllowed, ValidationFailed
from tsunagu.leads.model import LeadEvent
from tsunagu.signed_requests import VerifiedRequest
from tsunagu.tracking.browser import (
    MAX_URL_LENGTH,
    BrowserContext,
    BrowserEvent,
    EventRefused,
    ingest_browser_events,
    truncate_ip,
)
from tsunagu.tracking.judgement import rejudge
from tsunagu.tracking.sites import SiteDefinition
from tsunagu.tracking.stored_sites import StoredSite

# As the tracking function reads it: saved through SiteDefinition, read back without pydantic.
SITE = StoredSite.from_definition(
    SiteDefinition(
        site_id="corp", name="Corp", allowed_origins=["https://WWW.example.com/"]
    ).model_dump(mode="json")
)
CONTEXT = BrowserContext("https://www.example.com", "198.51.100.77", "Mozilla/5.0 (X11)")


class MemoryTracking:
    def __init__(self, leads: dict[str, str] | None = None) -> None:
        self.leads = leads or {}
        self.stored: list[LeadEvent] = []
        self.claims: set[str] = set()
        self.signed_posts: set[tuple[str, str]] = set()
        self.site = SITE

    def site_and_visitors(
        self, site_id: str, visitor_ids: Sequence[str]
    ) -> tuple[StoredSite | None, dict[str, str]]:
        known = {v: self.leads[v] for v in visitor_ids if v in self.leads}
        return (self.site if site_id == self.site.site_id else None), known

    def put_events(self, events: Sequence[LeadEvent]) -> None:
        keys = {(e.subject, e.storage_key) for e in events}
        self.stored = [e for e in self.stored if (e.subject, e.storage_key) not in keys]
        self.stored.extend(events)  # a put replaces an item with the same key, as DynamoDB's

    def stored_for_visitors(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        anonymous = {(e.visitor_id, e.storage_key) for e in self.stored if e.lead_id is None}
        return {key for key in keys if key in anonymous}

    def claim_signed_post(self, site_id: str, request: VerifiedRequest) -> bool:
        if (site_id, request.replay_key) in self.signed_posts:
            return False
        self.signed_posts.add((site_id, request.replay_key))
        return True

    def put_event_once(self, event: LeadEvent, claim: str) -> bool:
        if claim in self.claims:
            return False
        self.claims.add(claim)
        self.put_events([event])
        return True


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))


def page_view(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "page_view",
        "visitor_id": "v_0123456789abcdef",
        "id": "e_0000000000000001",
        "occurred_at": "2026-12-04T08:59:58.120Z",
        "url": "https://www.example.com/pricing?utm_source=newsletter&utm_campaign=dec",
        "title": "Pricing",
        "referrer": "https://www.example.com/",
        "screen": "1920x1080",
        "language": "ja-JP",
    }
    event.update(changes)
    return event


def ingest(store: MemoryTracking, clock: FixedClock, events: list[Any], **context: Any):  # type: ignore[no-untyped-def]
    ctx = BrowserContext(**{**CONTEXT.__dict__, **context})
    return ingest_browser_events("corp", events, ctx, store=store, clock=clock)


def test_a_page_view_is_stored_with_utm_and_a_truncated_ip(clock: FixedClock) -> None:
    store = MemoryTracking()
    result = ingest(store, clock, [page_view()])
    assert result.accepted == 1 and result.rejected == []
    (event,) = store.stored
    assert event.subject == "visitor#v_0123456789abcdef"
    assert event.properties["utm"] == {"source": "newsletter", "campaign": "dec"}
    assert event.properties["path"] == "/pricing"
    assert event.properties["ip"] == "198.51.100.0"
    assert event.occurred_at == "2026-12-04T08:59:58.120Z"


def test_a_page_with_a_long_address_keeps_its_page_view_cut_with_its_campaign(
    clock: FixedClock,
) -> None:
    # Given a page view of a real page whose address is long (a search with all its filters),
    # its campaign after the filters, and from a referrer as long
    filters = "&".join(f"filter{i}=industry-manufacturing-{i:03d}" for i in range(60))
    url = f"https://www.example.com/case-studies?{filters}&utm_source=google&utm_campaign=dec"
    referrer = f"https://search.example.jp/search?q=x{'%E8%A3%BD' * 700}"
    assert len(url) > MAX_URL_LENGTH and len(referrer) > MAX_URL_LENGTH
    store = MemoryTracking()
    # When the snippet sends it
    result = ingest(store, clock, [page_view(url=url, referrer=referrer)])
    # Then the visit is kept, not refused whole and lost, with its campaign read from the
    # whole address and the addresses cut to what is kept, no escape cut in half
    assert (result.accepted, result.rejected) == (1, [])
    (stored,) = store.stored
    assert stored.properties["utm"] == {"source": "google", "campaign": "dec"}
    assert stored.properties["url"] == url[:MAX_URL_LENGTH]
    assert stored.properties["path"] == "/case-studies"
    kept = stored.properties["referrer"]
    assert kept == referrer[: MAX_URL_LENGTH - 2]  # "%A" would be left at 2,048
    assert re.search(r"%[0-9A-F]{2}$", kept)


def test_a_known_visitors_events_go_to_the_lead(clock: FixedClock) -> None:
    store = MemoryTracking({"v_0123456789abcdef": "lead_1"})
    ingest(store, clock, [page_view()])
    assert store.stored[0].subject == "lead#lead_1"


def test_bad_events_are_reported_by_index_and_good_ones_kept(clock: FixedClock) -> None:
    store = MemoryTracking()
    batch = [
        page_view(),
        page_view(type="Page View"),
        "not an object",
        page_view(url="javascript:alert(1)"),
        page_view(title="a\x00b"),
        page_view(properties={"nested": {"a": 1}}),
        page_view(properties={"x": "y" * 501}),
        page_view(extra_field=1),
        page_view(id="e_0000000000000002"),
    ]
    result = ingest(store, clock, batch)
    assert result.accepted == 2
    assert [r["index"] for r in result.rejected] == [1, 2, 3, 4, 5, 6, 7]
    assert len(store.stored) == 2


@pytest.mark.parametrize(
    "kind",
    [
        "form_submitted",
        "mail_opened",
        "link_clicked",
        "lead_imported",
        "stage_changed",
        "deal_changed",
    ],
)
def test_a_site_cannot_send_what_only_tsunagu_records(clock: FixedClock, kind: str) -> None:
    # A browser claiming an import would enter the journeys that welcome imported leads, and
    # count a lead in the funnel; one claiming a deal (the CRM's signed word) would put a won
    # deal's revenue in the reports and meet journeys' goals.
    store = MemoryTracking()
    result = ingest(store, clock, [page_view(type=kind)])
    assert result.accepted == 0
    assert "recorded by Tsunagu itself" in str(result.rejected[0])
    assert store.stored == []


@pytest.mark.parametrize(
    "occurred_at",
    [
        0,
        1795338040,
        "1795338040",
        "2026-12-04 08:59:58Z",
        "0001-01-01T00:00:00+09:00",
        "9999-12-31T23:59:59-01:00",
        "1999-12-31T00:00Z",
    ],
    ids=[
        "zero",
        "a unix time",
        "a unix time as text",
        "a space for the T",
        "year 1 east of UTC",
        "year 9999 west of UTC",
        "before 2000",
    ],
)
def test_a_client_time_that_is_not_a_date_time_text_of_this_era_rejects_the_event(
    clock: FixedClock, occurred_at: object
) -> None:
    # Found by make proof's api run: year 1 at +09:00 answered 500 (UTC conversion overflow),
    # and a number was read as seconds since 1970.
    store = MemoryTracking()
    result = ingest(store, clock, [page_view(occurred_at=occurred_at), page_view()])
    assert result.accepted == 1
    [rejected] = result.rejected
    assert rejected["index"] == 0
    assert [e["field"] for e in rejected["errors"]] == ["occurred_at"]
    assert len(store.stored) == 1


def test_an_unbelievable_client_clock_is_replaced(clock: FixedClock) -> None:
    store = MemoryTracking()
    ingest(store, clock, [page_view(occurred_at="2030-01-01T00:00:00Z")])
    assert store.stored[0].occurred_at == "2026-12-04T09:00:00.000Z"
    assert store.stored[0].properties["client_time"] == "2030-01-01T00:00:00.000Z"


@pytest.mark.parametrize("client_time", ["2030-01-01T00:00:00Z", "2026-12-01T09:00:00Z", None])
def test_an_event_whose_clock_is_not_believed_is_stored_once_however_often_it_comes(
    clock: FixedClock, client_time: str | None
) -> None:
    # Given an event whose own time is not used (years fast, three days slow, or none): it is
    # kept at the server's time, which differs for each copy
    store = MemoryTracking()
    event = page_view(occurred_at=client_time)

    # When it comes twice in one batch, and again a minute later, and after its visitor
    # became a lead
    first = ingest(store, clock, [event, event])
    clock.advance(minutes=1)
    again = ingest(store, clock, [event])
    store.leads["v_0123456789abcdef"] = "lead_01JDEXAMPLE0000000000000001"
    clock.advance(minutes=1)
    linked = ingest(store, clock, [event])

    # Then each answer accepts it, and one copy is stored, at the first arrival's time
    assert (first.accepted, again.accepted, linked.accepted) == (1, 1, 1)
    [stored] = store.stored
    assert stored.occurred_at == "2026-12-04T09:00:00.000Z"
    # And another browser's event that happens to carry the same id is its own
    other = ingest(store, clock, [page_view(occurred_at=client_time, visitor_id="v_other0001")])
    assert other.accepted == 1 and len(store.stored) == 2


def test_site_and_origin_are_checked(clock: FixedClock) -> None:
    store = MemoryTracking()
    with pytest.raises(OriginNotAllowed):
        ingest(store, clock, [page_view()], origin="https://evil.example.net")
    with pytest.raises(NotFound):
        ingest_browser_events("other", [page_view()], CONTEXT, store=store, clock=clock)
    with pytest.raises(ValidationFailed):
        ingest(store, clock, [])
    assert store.stored == []


def test_ip_truncation() -> None:
    assert truncate_ip("203.0.113.77") == "203.0.113.0"
    assert truncate_ip("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::"
    assert truncate_ip("not an ip") is None


def test_a_beacon_repeated_after_the_visitor_became_a_lead_is_stored_once(
    clock: FixedClock,
) -> None:
    # Given a visitor's page view, stored while the visitor was anonymous
    store = MemoryTracking()
    assert ingest(store, clock, [page_view()]).accepted == 1
    [first] = store.stored
    assert first.subject == "visitor#v_0123456789abcdef"

    # When the form links the visitor to a lead and the browser sends the same beacon again
    # (with a page view it had not sent yet)
    store.leads["v_0123456789abcdef"] = "lead_01JDEXAMPLE0000000000000001"
    again = ingest(store, clock, [page_view(), page_view(id="e_0000000000000002")])

    # Then both are accepted, the repeat is not stored a second time under the lead (the
    # lead's timeline already joins its visitor's events), and the new one goes to the lead
    assert again.accepted == 2
    assert [(e.subject, e.event_id) for e in store.stored] == [
        ("visitor#v_0123456789abcdef", "e_0000000000000001"),
        ("lead#lead_01JDEXAMPLE0000000000000001", "e_0000000000000002"),
    ]


def test_an_event_is_read_trimmed_with_every_field_the_api_document_names() -> None:
    event = BrowserEvent.read(
        page_view(
            type=" page_view ",
            occurred_at="2026-12-04t08:59:58.123456789z",  # RFC 3339 allows both cases
            url="",
            properties={" plan ": " pro ", "seats": 12, "ratio": 0.5, "trial": True, "x": None},
        )
    )
    assert event.type == "page_view"
    assert event.occurred_at == datetime(2026, 12, 4, 8, 59, 58, 123456, tzinfo=UTC)
    assert event.url is None  # an empty URL is no URL
    assert event.properties == {"plan": "pro", "seats": 12, "ratio": 0.5, "trial": True, "x": None}


def test_every_problem_of_an_event_is_named_by_its_field() -> None:
    with pytest.raises(EventRefused) as refused:
        BrowserEvent.read(
            {
                "visitor_id": 12345678,
                "id": "short",
                "occurred_at": "2026-02-30T10:00:00Z",
                "title": "t" * 301,
                "screen": "wide",
                "properties": {"ok": 1, "bad key!": 1, "deep": [1], "huge": 1e300},
                "colour": "blue",
            }
        )
    assert [(e["field"], e["message"]) for e in refused.value.errors] == [
        ("type", "is required"),
        ("visitor_id", "must be text"),
        ("id", "must match ^[A-Za-z0-9_-]{8,64}$"),
        ("occurred_at", "is not a date-time on the calendar (day is out of range for month)"),
        ("title", "has at most 300 characters"),
        ("screen", "must match ^\\d{1,5}x\\d{1,5}$"),
        ("properties", "property name 'bad key!' must be 1-40 letters, digits or _"),
        ("properties.deep", "must be text, a number, true, false or null"),
        ("properties.huge", "number out of range"),
        ("colour", "is not a field of an event"),
    ]


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ([1, 2], "must be a JSON object"),
        (None, "must be a JSON object"),  # as the API document says: not nullable
        ({f"k{i}": i for i in range(21)}, "has at most 20 properties"),
    ],
)
def test_properties_are_one_small_flat_object(properties: object, message: str) -> None:
    with pytest.raises(EventRefused) as refused:
        BrowserEvent.read(page_view(properties=properties))
    assert refused.value.errors == [{"field": "properties", "message": message}]


def test_a_stored_site_reads_every_field_a_site_definition_saves() -> None:
    # The tracking function reads sites without pydantic (tsunagu.tracking.stored_sites): a
    # field added to SiteDefinition and not to StoredSite would be lost on that path. (The
    # signing keys are kept beside the definition, not in it: saving settings keeps them.)
    assert {f.name for f in fields(StoredSite)} == {*SiteDefinition.model_fields, "signing_keys"}
    definition = SiteDefinition(
        site_id="corp", name="Corp", allowed_origins=["https://a.example.com"], truncate_ip=False
    )
    assert StoredSite.from_definition(definition.model_dump(mode="json")) == StoredSite(
        site_id="corp", name="Corp", allowed_origins=("https://a.example.com",), truncate_ip=False
    )


def test_text_is_trimmed_of_white_space_only_and_control_characters_are_refused() -> None:
    # str.strip() would also take U+001C..U+001F off the ends: hidden, not refused.
    assert BrowserEvent.read(page_view(title="\u3000Pricing\xa0")).title == "Pricing"
    for changes in ({"title": "hi \x1c"}, {"type": "\x1fpage_view"}):
        with pytest.raises(EventRefused):
            BrowserEvent.read(page_view(**changes))
    with pytest.raises(EventRefused) as refused:
        BrowserEvent.read(page_view(properties={"note": "\x1f"}))
    assert refused.value.errors == [
        {"field": "properties.note", "message": "contains control characters"}
    ]


def test_an_event_that_keeps_its_browsers_time_records_when_it_was_received(
    clock: FixedClock,
) -> None:
    # A journey's wait counts what arrived after the lead entered (tsunagu.journeys.waits).
    store = MemoryTracking()
    ingest(store, clock, [page_view(), page_view(id="e_0000000000000002", occurred_at=None)])
    kept, stamped = store.stored
    assert kept.occurred_at == "2026-12-04T08:59:58.120Z"
    assert kept.properties["received_at"] == "2026-12-04T09:00:00.000Z"
    assert stamped.occurred_at == "2026-12-04T09:00:00.001Z"
    assert "received_at" not in stamped.properties  # its time is the server's


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "prefetch"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", None),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/131.0.0.0", None),
        ("curl/8.5.0", None),
        ("python-requests/2.32.3", None),
        (None, None),
        (CHROME, "sec-purpose: prefetch"),
    ],
)
def test_a_batch_a_machine_sent_is_kept_judged_automated_with_its_signals(
    clock: FixedClock, user_agent: str | None, prefetch: str | None
) -> None:
    store = MemoryTracking({"v_0123456789abcdef": "lead_1"})
    result = ingest(
        store,
        clock,
        [page_view(), page_view(id="e_0000000000000002", type="pdf_download")],
        user_agent=user_agent,
        prefetch=prefetch,
    )
    assert result.accepted == 2
    for event in store.stored:
        assert event.properties["automated"] is True
        reasons = event.properties["reasons"]
        assert reasons == (["prefetch_header"] if prefetch else ["scanner_user_agent"])
        signals = event.properties["signals"]
        assert signals["kind"] == "browser" and signals["user_agent"] == (user_agent or "")
        assert rejudge(signals).reasons == reasons  # kept so that it can be judged again


def test_a_post_without_origin_is_no_persons_whatever_its_user_agent(clock: FixedClock) -> None:
    # A browser always sends Origin on a POST; without it, nothing proves whose the post is (a
    # server, or a script naming someone's visitor id): kept, judged a machine's
    store = MemoryTracking({"v_0123456789abcdef": "lead_1"})
    ingest(store, clock, [page_view(type="seminar_registered")], origin=None, user_agent=CHROME)
    ingest(store, clock, [page_view(type="seminar_registered", id="e_0000000000000002")],
           origin=None, user_agent="python-requests/2.32.3")  # fmt: skip
    faked, script = store.stored
    assert faked.properties["automated"] is True
    assert faked.properties["reasons"] == ["no_origin"]
    assert faked.properties["signals"]["without_origin"] is True
    assert set(script.properties["reasons"]) == {"scanner_user_agent", "no_origin"}


def test_a_persons_page_view_says_it_is_not_automated_and_carries_nothing_more(
    clock: FixedClock,
) -> None:
    # Given a person's page view (a desktop browser, from the site's origin)
    store = MemoryTracking()
    ingest(store, clock, [page_view()], user_agent=CHROME)
    (event,) = store.stored
    # Then it is judged not automated, as a person's click is (so that the analytics' query
    # `automated = false` finds it), with no reasons or signals to keep
    assert event.properties["automated"] is False
    assert not {"reasons", "signals"} & set(event.properties)
    row = event_row(
        {"event_id": event.event_id, "occurred_at": event.occurred_at, "type": event.type,
         "visitor_id": event.visitor_id, "properties": event.properties},
        change="insert", sequence_number="1",
    )  # fmt: skip
    assert row["automated"] is False
