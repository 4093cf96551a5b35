"""What a browser did before the form that linked it to a lead: claimed for that lead, once.

DESIGN: "The anonymous visitor becomes the known lead when they submit a form, and their earlier
history comes with them." The snippet stores a browser's events under its visitor id
(``visitor#<id>``) until a form names that visitor, and under the lead from then on. When a
capture links a visitor to a lead, the visitor's anonymous events are claimed for the lead in
the capture's own transaction: per event, a claim record that no other lead's capture can make
again, and a copy of the event under the lead (the same event id and time), marked with the
instant it was linked (``linked_at``). The copies reach the events stream like any of the
lead's events, so everything that reads a lead's events - scoring in route_events, segments'
``did=``, the timeline, the export - reads one and the same set. The visitor's own items stay
as they were stored (the analytics rows take the lead's, the newest per event).

Who gets what:

- Only events no lead has claimed yet: a shared browser (a trade-show booth's tablet) gives the
  pages read before the first person's form to that person, not to everyone who submits a form
  on it later.
- When the visitor was linked to another lead before, only what happened after that link: what
  the browser did before it was the other person's (events stored before claims existed, or in
  the instant between a capture's read and its commit, are claimed by nobody).
- At most ``HISTORY_EVENTS`` events, the newest, of the last ``HISTORY_DAYS`` days: the claim
  is part of the capture's one transaction (DynamoDB takes 100 items, two per event), and a
  crawler or a kiosk with thousands of anonymous page views must not make a form slow or fail.
  Older or further events stay the visitor's and are not shown on the lead's timeline.

What claimed history does, and does not, do - it happened before anyone knew who it was, and
reaches the lead only now (tsunagu.routing):

- It scores, once (the award is keyed by the event, as every award is), and moves the lead's
  last activity only forward.
- It enters no journey and ends none: a trigger ("visited the pricing page: enter") or a goal
  reacts to what the lead does now, and a visit hours or weeks old would start a second
  journey in the same minute as the form's own (the form_submitted event enters the journeys
  triggered by forms). A marketer who wants "new leads who read the pricing page" asks it of a
  segment (``did=page_view/7d``) or a score threshold, which do see it.
- It resumes no journey's wait: every wait of a lead is registered after its events were
  stored, and "did they do X" asks about what comes after the wait began.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from tsunagu.clock import isoformat, parse_instant
from tsunagu.leads.model import LeadEvent

HISTORY_DAYS = 90
"""How far back a link claims the visitor's events."""
HISTORY_EVENTS = 40
"""How many of the visitor's events (the newest) a link claims at most: two items each in the
capture's transaction, which leaves room for the rest of the capture (about a dozen items)."""
LINKED_AT = "linked_at"
"""The property that marks a lead's copy of an event claimed from its visitor: the instant the
form linked the visitor to the lead."""


@dataclass(frozen=True)
class VisitorLink:
    """Which lead a visitor id points at now, and since when (its latest form)."""

    lead_id: str
    linked_at: str


@dataclass(frozen=True)
class AnonymousEvent:
    """An event stored under a visitor, and the lead that claimed it (None: nobody yet)."""

    event: LeadEvent
    claimed_by: str | None = None


class HistoryStore(Protocol):
    def visitor_link(self, visitor_id: str) -> VisitorLink | None:
        """The lead the visitor id points at, read strongly consistent."""
        ...

    def anonymous_events(self, visitor_id: str, since: str, limit: int) -> list[AnonymousEvent]:
        """The newest ``limit`` events stored under the visitor at ``since`` or later, oldest
        first, each with the lead that claimed it."""
        ...


def history_since(link: VisitorLink | None, lead_id: str | None, now: datetime) -> datetime:
    """The earliest instant a link of the visitor to ``lead_id`` (None: a lead not stored yet)
    claims from: ``HISTORY_DAYS`` ago, or the visitor's link to another lead, if later."""
    since = now - timedelta(days=HISTORY_DAYS)
    if link is not None and link.lead_id != lead_id:
        since = max(since, parse_instant(link.linked_at))
    return since


def read_history(
    store: HistoryStore, visitor_id: str, lead_id: str | None, now: datetime
) -> list[AnonymousEvent]:
    """What a capture linking ``visitor_id`` to ``lead_id`` may claim from (claimed ones
    included, so that the plan knows what is taken)."""
    since = history_since(store.visitor_link(visitor_id), lead_id, now)
    return store.anonymous_events(visitor_id, isoformat(since), HISTORY_EVENTS)


def claimable(
    history: Sequence[AnonymousEvent], lead_id: str, linked_at: str, room: int
) -> list[LeadEvent]:
    """The lead's copies of the events no lead has claimed (one this lead claimed before - a
    retried capture - has its copy already), the newest ``room`` of them, oldest first."""
    free = [a.event for a in history if a.claimed_by is None]
    kept = free[-room:] if room > 0 else []
    # The same event (id, kind, time, visitor), now the lead's: its key under the lead is the
    # one a beacon repeated after the link would have, which tracking.browser never stores.
    return [
        replace(event, lead_id=lead_id, properties={**event.properties, LINKED_AT: linked_at})
        for event in kept
    ]


def is_claimed_history(properties: Mapping[str, Any]) -> bool:
    """Whether an event of a lead is one its visitor did before the link (see above)."""
    return bool(properties.get(LINKED_AT))


DIRECT = "direct"
"""Where a submission came from when nothing says: no campaign, no other site referring."""


def _host(url: object) -> str | None:
    try:
        return urlsplit(str(url)).hostname if url else None
    except ValueError:
        return None


def own_hosts(allowed_origins: Collection[str], origin: str | None) -> frozenset[str]:
    """The hosts of the site a form sits on: its allowed origins', and the post's Origin's."""
    hosts = (_host(o) for o in (*allowed_origins, origin))
    return frozenset(h for h in hosts if h)


def came_from(
    history: Sequence[AnonymousEvent],
    lead_id: str,
    referrer: str | None,
    own_hosts: Collection[str],
) -> str:
    """Where the person who submits a form came from, for the form report's split by source:
    the campaign of their visitor's earliest page view that names one (its ``utm_source``, else
    a referring site's host), else the form post's own Referer, else ``direct``.

    The post's Referer is the page the form sits on (browsers cut it to its origin for a post
    to another host), and a page view referred by another page of the site is the visitor
    moving around: a host in ``own_hosts`` (the form's allowed origins, the post's Origin) or
    the page's own host is never a source. Only the history the capture may claim counts (none
    claimed by another lead: a shared browser's earlier visitor came from elsewhere)."""
    for anonymous in history:
        event = anonymous.event
        if event.type != "page_view" or anonymous.claimed_by not in (None, lead_id):
            continue
        utm = event.properties.get("utm")
        if isinstance(utm, Mapping) and utm.get("source"):
            return str(utm["source"])[:100]
        host = _host(event.properties.get("referrer"))
        if host and host not in own_hosts and host != _host(event.properties.get("url")):
            return host
    host = _host(referrer)
    return host if host and host not in own_hosts else DIRECT
