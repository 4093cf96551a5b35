"""What a browser did before the form that linked it to a lead (tsunagu.leads.history): how far
back a link claims, and what the claimed history does in route_events and journeys' waits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tsunagu.clock import FixedClock, parse_instant
from tsunagu.journeys.lifecycle import Occurrence
from tsunagu.journeys.waits import EventMatch, JourneyWait, catch_up, register_wait
from tsunagu.leads.history import (
    DIRECT,
    LINKED_AT,
    AnonymousEvent,
    VisitorLink,
    came_from,
    claimable,
    history_since,
    own_hosts,
)
from tsunagu.leads.model import LeadEvent
from tsunagu.routing import route_event

LEAD = "lead_01JDEXAMPLE0000000000000001"
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_a_link_claims_the_last_90_days_or_what_came_after_another_leads_link() -> None:
    # A new lead, or the lead the visitor already points at: the last 90 days
    assert history_since(None, None, NOW) == datetime(2026, 9, 5, 9, 0, tzinfo=UTC)
    own = VisitorLink(LEAD, "2026-12-01T00:00:00.000Z")
    assert history_since(own, LEAD, NOW) == datetime(2026, 9, 5, 9, 0, tzinfo=UTC)
    # A browser someone else's form linked before: only what came after that link
    other = VisitorLink("lead_other", "2026-12-01T00:00:00.000Z")
    assert history_since(other, LEAD, NOW) == parse_instant("2026-12-01T00:00:00.000Z")
    assert history_since(other, None, NOW) == parse_instant("2026-12-01T00:00:00.000Z")
    # ... unless that was longer ago than 90 days
    long_ago = VisitorLink("lead_other", "2026-01-01T00:00:00.000Z")
    assert history_since(long_ago, LEAD, NOW) == datetime(2026, 9, 5, 9, 0, tzinfo=UTC)


def test_only_free_events_are_claimed_the_newest_that_fit() -> None:
    def view(n: int, claimed_by: str | None = None) -> AnonymousEvent:
        at = f"2026-12-04T08:0{n}:00.000Z"
        return AnonymousEvent(LeadEvent(f"v{n}", "page_view", at, None, "v_1", {}), claimed_by)

    history = [view(1), view(2, "lead_other"), view(3, LEAD), view(4), view(5)]

    copies = claimable(history, LEAD, "2026-12-04T09:00:00.000Z", room=2)

    assert [(c.event_id, c.lead_id, c.subject) for c in copies] == [
        ("v4", LEAD, f"lead#{LEAD}"),
        ("v5", LEAD, f"lead#{LEAD}"),
    ]
    assert {c.properties[LINKED_AT] for c in copies} == {"2026-12-04T09:00:00.000Z"}
    assert claimable(history, LEAD, "2026-12-04T09:00:00.000Z", room=0) == []


# ---------------------------------------------------------------- where the visitor came from

SITE = frozenset({"www.example.jp"})
"""The form's own site: its allowed origins' hosts and the post's Origin's."""
OWN_PAGE = "https://www.example.jp/"


def page_view(
    url: str, referrer: str | None = None, claimed_by: str | None = None, n: int = 1
) -> AnonymousEvent:
    utm = {k[4:]: v for k, v in parse_qsl(urlsplit(url).query) if k.startswith("utm_")}
    properties = {"url": url, "referrer": referrer, "utm": utm}
    at = f"2026-12-04T08:0{n}:00.000Z"
    event = LeadEvent(f"v{n}", "page_view", at, None, "v_1", properties)
    return AnonymousEvent(event, claimed_by)


def test_a_visitor_came_from_its_landing_pages_campaign_not_from_the_form_on_the_site() -> None:
    # Given a visitor who landed from a search ad, then read another page of the site
    history = [
        page_view("https://www.example.jp/lp?utm_source=google", "https://www.google.com/", n=1),
        page_view("https://www.example.jp/pricing", "https://www.example.jp/lp", n=2),
    ]
    # When they submit the form on the site (the post's Referer: the site itself)
    # Then the submission came from the campaign, not the company's own site
    assert came_from(history, LEAD, OWN_PAGE, SITE) == "google"
    # And from the referring site when the landing page had no campaign
    search = [page_view("https://www.example.jp/blog/ma", "https://search.example.com/?q=ma")]
    assert came_from(search, LEAD, OWN_PAGE, SITE) == "search.example.com"


def test_the_own_site_is_never_a_source() -> None:
    # A visit begun on the site itself (internal navigation), or no history: not the own site
    internal = [page_view("https://www.example.jp/pricing", "https://www.example.jp/", n=1)]
    assert came_from(internal, LEAD, OWN_PAGE, SITE) == DIRECT
    assert came_from([], LEAD, OWN_PAGE, SITE) == DIRECT
    assert came_from([], LEAD, None, SITE) == DIRECT
    # A post referred from elsewhere (a form hosted on a partner's page) says where
    assert came_from([], LEAD, "https://partner.example.com/event", SITE) == "partner.example.com"


def test_a_shared_browsers_earlier_visitor_does_not_say_where_this_one_came_from() -> None:
    history = [
        page_view("https://www.example.jp/?utm_source=expo", None, claimed_by="lead_other", n=1),
        page_view("https://www.example.jp/?utm_source=newsletter", None, n=2),
    ]
    assert came_from(history, LEAD, OWN_PAGE, SITE) == "newsletter"


def test_the_own_sites_hosts_are_its_allowed_origins_and_the_posts_origin() -> None:
    hosts = own_hosts(
        ("https://www.example.jp", "https://example.jp:8443"), "https://lp.example.jp"
    )
    assert hosts == {"www.example.jp", "example.jp", "lp.example.jp"}
    assert own_hosts((), None) == frozenset()


# ---------------------------------------------------------------- in route_events


@dataclass
class Everything:
    """Every port route_event acts through, noting what was asked of it."""

    scored: list[str] = field(default_factory=list)
    entered: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    activity: list[str] = field(default_factory=list)

    def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool:
        self.activity.append(occurred_at)
        return True

    def resume_matching(
        self,
        lead_id: str,
        event_type: str,
        event_id: str,
        occurred_at: str,
        properties: Mapping[str, Any],
    ) -> int:
        self.resumed.append(event_id)
        return 1


@dataclass
class Scoring:
    seen: Everything

    def on_event(self, event: Occurrence, *, automated: bool) -> None:
        self.seen.scored.append(event.event_id)

    def on_stage_change(self, event: Occurrence) -> None:
        pass


@dataclass
class Journeys:
    seen: Everything

    def on_event(self, event: Occurrence, *, by_person: bool) -> None:
        self.seen.entered.append(event.event_id)


def route(**properties: Any) -> Everything:
    seen = Everything()
    image = {
        "subject": f"lead#{LEAD}",
        "sk": "2026-12-04T08:00:00.000Z#v1",
        "event_id": "v1",
        "type": "page_view",
        "occurred_at": "2026-12-04T08:00:00.000Z",
        "lead_id": LEAD,
        "visitor_id": "v_1",
        "properties": {"path": "/pricing", **properties},
    }
    route_event(image, store=seen, waits=seen, journeys=Journeys(seen), qualification=Scoring(seen))
    return seen


def test_claimed_history_scores_but_starts_no_journey_and_ends_no_wait() -> None:
    # The pricing page the browser read at 08:00, claimed by the form at 09:00
    seen = route(**{LINKED_AT: "2026-12-04T09:00:00.000Z"})

    assert seen.scored == ["v1"]
    assert seen.activity == ["2026-12-04T08:00:00.000Z"]  # only forward (the store's rule)
    # A "visited pricing" trigger or goal reacts to what the lead does now; a wait registered
    # after the form asks about what comes after it
    assert (seen.entered, seen.resumed) == ([], [])


def test_the_same_view_by_the_known_lead_does_everything() -> None:
    seen = route()

    assert (seen.scored, seen.entered, seen.resumed) == (["v1"], ["v1"], ["v1"])


# ---------------------------------------------------------------- journeys' waits


class Waits:
    def __init__(self) -> None:
        self.waits: dict[str, JourneyWait] = {}

    def register_wait(self, wait: JourneyWait) -> None:
        self.waits[wait.wait_id] = wait

    def waits_of(self, lead_id: str) -> list[JourneyWait]:
        return list(self.waits.values())

    def end_wait(self, wait: JourneyWait) -> None:
        self.waits.pop(wait.wait_id, None)


class Resumer:
    def __init__(self) -> None:
        self.resumed: list[Mapping[str, Any]] = []

    def resume(self, token: str, output: Mapping[str, Any]) -> bool:
        self.resumed.append(output)
        return True


def test_a_wait_catching_up_does_not_take_what_the_browser_did_before_the_form() -> None:
    # Given a lead in a journey since 08:00 whose phone read the pricing page at 08:30 while
    # anonymous, claimed by a form on that phone at 08:50; a wait for a pricing visit at 09:00
    store, resumer = Waits(), Resumer()
    wait = register_wait(
        LEAD, "exec:Wait for a visit", "token-1", EventMatch(type="page_view"), 86400,
        store=store, clock=FixedClock(NOW),
        entered_at=parse_instant("2026-12-04T08:00:00.000Z"),
    )  # fmt: skip
    claimed = LeadEvent("v1", "page_view", "2026-12-04T08:30:00.000Z", LEAD, "v_1",
                        {LINKED_AT: "2026-12-04T08:50:00.000Z"})  # fmt: skip

    # When the wait catches up on what the lead did since it entered
    ended = catch_up(wait, [claimed], store=store, resumer=resumer)

    # Then it waits on: the claimed view decides nothing, as in route_events
    assert ended is None and resumer.resumed == [] and list(store.waits.values()) == [wait]
