"""The tracking snippet in a real headless Chromium against the local runtime.

A visitor browses the demo site with UTM links, then fills the demo form: the lead's timeline
shows the anonymous page views before the submission. Global Privacy Control and
``data-consent="required"`` keep the snippet silent, with no cookie.

The browser is Debian's ``chromium`` driven by Playwright (never a browser Playwright downloads):
``make test`` installs it, and without it these tests fail with what to install. They never skip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from playwright.sync_api import (
    BrowserContext,
    Page,
    Route,
)

from tests.e2e.conftest import RunningTsunagu
from tests.support.browser import Chromium, chromium_path
from tsunagu.clock import isoformat
from tsunagu.event_kinds import SYSTEM_EVENT_KINDS

BEACON_WAIT = 10.0
"""How long to wait for a beacon: the snippet flushes after about 1 s or on pagehide."""
QUIET_PERIOD = 2.5
"""How long a snippet that must stay silent is watched (twice its 1 s flush timer, and more)."""
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


class Beacons:
    """Every batch the pages of a browser context send to the snippet's endpoint, seen through
    a route that lets each request through unchanged: a sendBeacon body (a Blob) is not in
    Playwright's plain request events, but a routed request carries it. Beacons sent on
    pagehide are not seen at all (they leave from a page that is already gone)."""

    def __init__(self, context: BrowserContext, api_url: str) -> None:
        self.sent: list[dict[str, Any]] = []
        context.route(f"{api_url}/t/events", self._seen)

    def _seen(self, route: Route) -> None:
        if route.request.method == "POST":
            self.sent.append(json.loads(route.request.post_data_buffer or b"{}"))
        route.continue_()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.sent for event in batch.get("events", [])]


def as_a_crawler(context: BrowserContext, api_url: str) -> None:
    """The snippet's beacons leave with Googlebot's user agent (it renders pages and runs their
    scripts). Set on the route: only beacons sent while the page is open pass through it."""

    def as_googlebot(route: Route) -> None:
        route.continue_(headers={**route.request.headers, "user-agent": GOOGLEBOT})

    context.route(f"{api_url}/t/events", as_googlebot)


def eventually[T](page: Page, check: Callable[[], T | None], timeout: float = BEACON_WAIT) -> T:
    """Poll until `check` returns something truthy; return it. Waits through the page, not with
    time.sleep: Playwright's sync API delivers its events (requests seen) only while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout} s")
        page.wait_for_timeout(200)


def visitor_cookie(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == "tsu_vid"), None)


def wait_for_snippet(page: Page) -> None:
    """t.js is loaded async: wait until it has run (it defines window.tsunagu, even under GPC)."""
    page.wait_for_function("typeof window.tsunagu === 'function'")


def stored_events(
    tsunagu: RunningTsunagu, marker: str, kind: str | None = None
) -> list[dict[str, Any]]:
    """Events in the runtime's events table whose URL carries `marker` (anonymous or not), only
    those of type `kind` when given: what Tsunagu writes itself (a score, a mail) may land too."""
    state = json.loads((tsunagu.workdir / ".tsunagu" / "runtime.json").read_text())
    environment = state["environment"]
    client = boto3.client(
        "dynamodb",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        region_name=environment["AWS_REGION"],
    )
    pages = client.get_paginator("scan").paginate(TableName=environment["TSUNAGU_EVENTS_TABLE"])
    items = [item for page in pages for item in page["Items"] if marker in json.dumps(item)]
    return [item for item in items if kind is None or item["type"]["S"] == kind]


def timeline(tsunagu: RunningTsunagu, email: str) -> list[dict[str, Any]]:
    shown = tsunagu.cli("leads", "timeline", email, "--json")
    assert shown.returncode == 0, shown.stderr
    events: list[dict[str, Any]] = json.loads(shown.stdout)
    return events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The events of one type, in their order: scoring, mail and the like add events of their
    own to a lead's history, at their own pace, so tests count the kinds they are about."""
    return [e for e in events if e["type"] == kind]


def browse_then_ask_for_the_paper(
    tsunagu: RunningTsunagu, context: BrowserContext, email: str
) -> tuple[Page, str, str]:
    """A visitor arrives from a newsletter, comes back from an ad, then fills the demo form.
    Returns the page, the visitor id (the tsu_vid cookie) and the instant just before the click
    on "send", as stored timestamps are written (UTC, milliseconds)."""
    api = tsunagu.api_url
    page = context.new_page()
    page.goto(f"{api}/_local/demo/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=dec")
    wait_for_snippet(page)
    visitor_id = eventually(page, lambda: visitor_cookie(context))
    page.goto(f"{api}/_local/demo/case-study?utm_source=ads&utm_campaign=winter")
    wait_for_snippet(page)
    page.goto(f"{api}/_local/demo")
    wait_for_snippet(page)
    # The snippet adds the visitor id to the form: that is what joins the history to the lead.
    stitched = page.locator("#demo-form input[name=visitor_id]")
    eventually(page, lambda: stitched.count() == 1 and stitched.input_value() == visitor_id)
    page.fill("#email", email)
    page.fill("#name", "Hana Sato")
    page.fill("#company", "Example KK")
    page.check("#consent")
    clicked_at = isoformat(datetime.now(UTC))
    with page.expect_navigation(url=f"{api}/_local/thanks"):
        page.click("#demo-form button[type=submit]")
    assert page.locator("h1").inner_text() == "Thank you"
    return page, visitor_id, clicked_at


def full_history(tsunagu: RunningTsunagu, page: Page, email: str) -> list[dict[str, Any]]:
    """The lead's timeline once the three page views (beacons sent on pagehide or after about
    a second) and the form submission have all landed."""

    def complete() -> list[dict[str, Any]] | None:
        events = timeline(tsunagu, email)
        views, submitted = of_type(events, "page_view"), of_type(events, "form_submitted")
        return events if len(views) >= 3 and submitted else None

    return eventually(page, complete)


# ------------------------------------------------------------------ the anonymous visitor
def test_browsing_history_comes_with_the_lead(tsunagu: RunningTsunagu, chromium: Chromium) -> None:
    context = chromium.new_context()
    # Given a visitor who browsed two pages with UTM links, anonymously
    # When they submit the demo form
    email = "hana.sato@example.com"
    page, visitor_id, _ = browse_then_ask_for_the_paper(tsunagu, context, email)

    # Then the lead's timeline has the three visits (each once), with their campaigns, and the
    # one submission (whatever Tsunagu recorded itself besides - a score, a mail - is not counted)
    events = full_history(tsunagu, page, email)
    views = of_type(events, "page_view")
    assert len(views) == 3, [e["type"] for e in events]
    assert len(of_type(events, "form_submitted")) == 1, [e["type"] for e in events]
    pricing, case_study, demo = views
    assert pricing["path"] == "/_local/demo/pricing"
    assert pricing["utm"] == {"source": "newsletter", "medium": "email", "campaign": "dec"}
    assert pricing["site_id"] == "demo"
    assert pricing["title"] == "Pricing"
    assert case_study["path"] == "/_local/demo/case-study"
    assert case_study["utm"] == {"source": "ads", "campaign": "winter"}
    assert demo["path"] == "/_local/demo"
    assert "utm" not in demo
    assert not any(view.get("automated") for view in views)  # a person's browser
    (submitted,) = of_type(events, "form_submitted")
    assert submitted["form_id"] == "demo"
    assert submitted["fields"]["company"] == "Example KK"
    assert submitted["consent_given"] is True

    # And the visitor is the lead's: what the cookie did is the lead's history
    shown = tsunagu.cli("leads", "get", email)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["visitor_ids"] == [visitor_id]


def test_the_visits_come_before_the_form_on_the_timeline(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    context = chromium.new_context()
    # Given a visitor who browsed two pages, then submitted the form (promptly, as tests do)
    email = "kaito.ito@example.com"
    page, _, clicked_at = browse_then_ask_for_the_paper(tsunagu, context, email)

    # When the timeline is read
    events = full_history(tsunagu, page, email)

    # Then the page views come first, and the submission is stamped after the click, not before
    # (what Tsunagu recorded itself - the welcome mail, the score - is left out)
    events = [e for e in events if e["type"] not in SYSTEM_EVENT_KINDS]
    kinds = [e["type"] for e in events]
    assert kinds == ["page_view", "page_view", "page_view", "form_submitted"], events
    assert events[-1]["at"] >= clicked_at, (events[-1]["at"], clicked_at)


def test_a_crawlers_page_views_are_kept_judged_a_machines(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a crawler that renders the page and runs the snippet
    context = chromium.new_context()
    as_a_crawler(context, tsunagu.api_url)
    marker = "crawler-9d2b"
    page = context.new_page()
    # When it opens a page of the site (and stays while the snippet sends its page view)
    page.goto(f"{tsunagu.api_url}/_local/demo/pricing?utm_campaign={marker}")
    wait_for_snippet(page)
    # Then the page view is stored, judged automated by its user agent
    [view] = eventually(page, lambda: stored_events(tsunagu, marker, "page_view"))
    properties = view["properties"]["M"]
    assert properties["automated"] == {"BOOL": True}
    assert properties["reasons"] == {"L": [{"S": "scanner_user_agent"}]}
    assert properties["user_agent"] == {"S": GOOGLEBOT}


def test_a_page_with_a_long_address_has_its_page_view_with_its_campaign(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a search page whose address is long (every filter in it), its campaign last
    context = chromium.new_context()
    beacons = Beacons(context, tsunagu.api_url)
    marker = "long-address-7c3e"
    filters = "&".join(f"filter{i}=industry-manufacturing-{i:03d}" for i in range(80))
    page = context.new_page()
    # When a person opens it
    page.goto(f"{tsunagu.api_url}/_local/demo/pricing?{filters}&utm_campaign={marker}")
    wait_for_snippet(page)
    # Then the snippet sends the address cut to what the endpoint keeps, campaign first
    [sent] = eventually(page, lambda: beacons.events)
    assert len(sent["url"]) <= 2048 and f"?utm_campaign={marker}&filter0=" in sent["url"]
    # And the page view is stored, with its campaign
    [view] = eventually(page, lambda: stored_events(tsunagu, marker, "page_view"))
    properties = view["properties"]["M"]
    assert properties["utm"] == {"M": {"campaign": {"S": marker}}}
    assert properties["path"] == {"S": "/_local/demo/pricing"}


PRERENDERING = """
window.__tsunaguPrerendering = true;
Object.defineProperty(Document.prototype, 'prerendering',
  {get: () => window.__tsunaguPrerendering, configurable: true});
"""


def test_a_prerendered_page_counts_its_view_once_the_person_opens_it(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    # Given a page the browser prerenders (the address bar guessed it) before anyone sees it
    context = chromium.new_context()
    context.add_init_script(PRERENDERING)
    beacons = Beacons(context, tsunagu.api_url)
    page = context.new_page()
    page.goto(f"{tsunagu.api_url}/_local/demo/pricing?utm_campaign=prerendered-4e1a")
    wait_for_snippet(page)
    page.wait_for_timeout(QUIET_PERIOD * 1000)
    # Then nothing is sent while it is only prerendered
    assert beacons.sent == []
    # When the person opens it (Chrome activates the page and says so)
    page.evaluate(
        "window.__tsunaguPrerendering = false;"
        " document.dispatchEvent(new Event('prerenderingchange'))"
    )
    # Then its page view goes, once
    eventually(page, lambda: beacons.events)
    assert [e["type"] for e in beacons.events] == ["page_view"]


# ------------------------------------------------------------------ privacy
def test_global_privacy_control_sends_nothing_and_sets_no_cookie(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    context = chromium.new_context()
    # Given a browser that sends the Global Privacy Control signal (Chromium has no switch for it)
    context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl',"
        " {get: () => true, configurable: true});"
    )
    api = tsunagu.api_url
    beacons = Beacons(context, api)
    marker = "gpc-on-7f3a"
    page = context.new_page()

    # When the visitor browses the site and triggers a custom event
    page.goto(f"{api}/_local/demo/pricing?utm_source=ads&utm_campaign={marker}")
    wait_for_snippet(page)
    assert page.evaluate("navigator.globalPrivacyControl") is True
    page.evaluate("tsunagu('track', 'pdf_download', {file: 'brochure.pdf'})")
    page.wait_for_timeout(QUIET_PERIOD * 1000)
    page.goto(f"{api}/_local/demo?utm_campaign={marker}")  # pagehide would flush
    wait_for_snippet(page)
    page.wait_for_timeout(QUIET_PERIOD * 1000)

    # Then nothing left the browser, no cookie was set, the form was not stitched
    assert beacons.sent == []  # what the page sent while open (not on pagehide: see stored)
    assert visitor_cookie(context) is None
    assert page.locator("#demo-form input[name=visitor_id]").count() == 0
    # and nothing was stored (this also covers beacons sent on pagehide, which Playwright
    # does not report: they leave from a page that is already gone)
    assert stored_events(tsunagu, marker) == []


CONSENT_PAGE = """<!doctype html><html lang=en><meta charset=utf-8><title>Consent banner</title>
<script async src="{api}/t.js" data-site="demo" data-consent="required"></script>
<body><h1>Webinar: lead scoring in practice</h1>
<div id=banner>We use cookies. <button id=accept onclick="tsunagu('consent', true)">Accept</button>
</div>
<form id=signup method=post action="{api}/forms/demo/submissions">
<input id=email name=email type=email required><button type=submit>Sign up</button></form>
</body></html>"""


def test_consent_required_holds_the_page_view_until_consent(
    tsunagu: RunningTsunagu, chromium: Chromium
) -> None:
    context = chromium.new_context()
    # Given a page under a cookie-consent banner, served from the demo site's registered origin
    api = tsunagu.api_url
    marker = "consent-hold-5c1e"
    page_url = f"{api}/_local/consent-banner?utm_source=partner&utm_campaign={marker}"
    context.route(
        f"{api}/_local/consent-banner*",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html; charset=utf-8",
            body=CONSENT_PAGE.format(api=api),
        ),
    )
    beacons = Beacons(context, api)
    page = context.new_page()

    # When the visitor reads the page without answering the banner
    page.goto(page_url)
    wait_for_snippet(page)
    page.evaluate("tsunagu('track', 'video_view', {video: 'intro'})")
    page.wait_for_timeout(QUIET_PERIOD * 1000)

    # Then no cookie is set, nothing is sent, and the form carries no visitor id
    assert visitor_cookie(context) is None
    assert beacons.sent == []
    assert stored_events(tsunagu, marker) == []
    assert page.locator("#signup input[name=visitor_id]").count() == 0

    # When they accept
    page.click("#accept")

    # Then the cookie is set and the held page view (and the held custom event) arrive
    visitor_id = eventually(page, lambda: visitor_cookie(context))
    eventually(page, lambda: beacons.events)
    assert [e["type"] for e in beacons.events] == ["page_view", "video_view"]
    assert {e["visitor_id"] for e in beacons.events} == {visitor_id}

    def both_stored() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        views = stored_events(tsunagu, marker, "page_view")
        videos = stored_events(tsunagu, marker, "video_view")
        return (views, videos) if views and videos else None

    stored_views, stored_videos = eventually(page, both_stored)
    assert len(stored_views) == 1 and len(stored_videos) == 1, (stored_views, stored_videos)
    assert {e["visitor_id"]["S"] for e in [*stored_views, *stored_videos]} == {visitor_id}
    assert page.locator("#signup input[name=visitor_id]").input_value() == visitor_id

    # And once they sign up, the held page view is on the lead's timeline
    email = "aoi.mori@example.com"
    page.fill("#email", email)
    with page.expect_navigation(url=f"{api}/_local/thanks"):
        page.click("#signup button[type=submit]")

    kinds = ("page_view", "video_view", "form_submitted")

    def signed_up() -> list[dict[str, Any]] | None:
        events = timeline(tsunagu, email)
        return events if all(of_type(events, kind) for kind in kinds) else None

    # (each once: what Tsunagu recorded itself besides - a score, a mail - is not counted)
    events = eventually(page, signed_up)
    assert [len(of_type(events, kind)) for kind in kinds] == [1, 1, 1], [e["type"] for e in events]
    (view,), (video,) = of_type(events, "page_view"), of_type(events, "video_view")
    assert view["url"] == page_url
    assert view["utm"] == {"source": "partner", "campaign": marker}
    assert view["at"] < video["at"]


# ------------------------------------------------------------------ the browser itself
def test_a_missing_browser_fails_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception, match="sudo apt-get install chromium"):
        chromium_path()
