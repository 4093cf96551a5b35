"""What a browser did before the form that linked it to a lead (tsunagu.leads.history): how far
back a link claims, and what the claimed history does in route_events and journeys' waits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tsunagu.clock import FixedClock, parse_instant
from tsunagu.journeys.lifecycle import Occurrence
from tsunagu.journeys.waits import EventMatch, JourneyWait, catch_up, register_wait
from tsunagu.leads.history import (
    LINKED_AT,
    AnonymousEvent,
    VisitorLink,
    claimable,
    history_since,
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
