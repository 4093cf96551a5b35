"""Events from the tracking snippet: validated one by one, stored in one batch.

A bad event is reported back by its index and the good ones in the same batch are kept: one
broken custom event must not lose the page views around it. A batch a machine sent (a crawler
running the snippet, a script posting beacons) is kept too, judged automated as mail activity
is (tracking.judgement): it never scores, moves a lead's last activity, ends a journey's wait or
reaches a journey's goal. A batch the site's own server signed (tracking.server_posts) is the
site's word about its visitor, and is a person's.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from tsunagu.clock import Clock, client_instant, isoformat
from tsunagu.errors import FieldError, NotFound, OriginNotAllowed, ValidationFailed
from tsunagu.event_kinds import SERVER_EVENT_KINDS
from tsunagu.ids import new_ulid
from tsunagu.leads.model import LeadEvent
from tsunagu.signed_requests import ReplayedRequest, VerifiedRequest
from tsunagu.tracking.judgement import Judgement, Signals, judge
from tsunagu.tracking.server_posts import SignedPost, verify_server_post
from tsunagu.tracking.stored_sites import StoredSite, is_site_id

MAX_EVENTS = 50
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# A client clock further off than this is not believed; the server's time is used instead.
CLIENT_CLOCK_BEHIND = timedelta(hours=24)
_FUTURE_SKEW = timedelta(minutes=5)

PropertyValue = str | int | float | bool | None
MAX_URL_LENGTH = 2048
"""What is kept of a page's URL and its referrer: a longer one (a search with all its filters,
an ad click's tracking parameters) is cut to it, not refused - the page view is the visit, and
the campaign is read from the whole URL first. The request's own size limit (64 KB) is what
refuses a hostile length."""
_PARTIAL_ESCAPE = re.compile(r"%[0-9A-Fa-f]?$")
_REFERRER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s]+")


def _no_control_characters(value: str | None) -> str | None:
    if value is not None and any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("contains control characters")
    return value


def _http_url(value: str | None) -> str | None:
    _no_control_characters(value)  # urlsplit would silently drop CR, LF and TAB
    if value is not None and value != "":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
    return value or None


def _referrer(value: str | None) -> str | None:
    # Apps refer with their own schemes (android-app://com.google.android.gm/), so any
    # scheme://authority is kept; script and data pseudo-URLs are not referrers.
    _no_control_characters(value)
    if value and (
        not _REFERRER.match(value) or urlsplit(value).scheme in ("javascript", "data", "file")
    ):
        raise ValueError("must be a URL like https://www.example.com/ or android-app://...")
    return value or None


def clipped(url: str | None) -> str | None:
    """The URL cut to MAX_URL_LENGTH characters, without a percent-escape cut in half."""
    if url is None or len(url) <= MAX_URL_LENGTH:
        return url
    return _PARTIAL_ESCAPE.sub("", url[:MAX_URL_LENGTH])


def _storable_number(value: PropertyValue) -> PropertyValue:
    """DynamoDB numbers have 38 significant digits and a magnitude from 1e-130 to under 1e126;
    JSON allows more (and Python reads 1e400 as infinity, 1e-400 as zero)."""
    if isinstance(value, float) and (
        not math.isfinite(value) or abs(value) > 1e100 or 0 < abs(value) < 1e-100
    ):
        raise ValueError("number out of range")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**38:
        raise ValueError("number out of range")
    return value


class EventRefused(ValueError):
    """An event the snippet sent that cannot be stored: every problem, by field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class BrowserEvent:
    """One event as the snippet sends it (see docs/openapi.yaml, TrackedEvent).

    Read by ``read`` below, by hand rather than by a pydantic model: this is the tracking
    function's whole request, and that function imports no pydantic (about 50 ms of every cold
    start: README, Deploying to AWS)."""

    type: str
    visitor_id: str
    id: str | None = None
    """Client-made id: a beacon sent twice stores one event."""
    occurred_at: datetime | None = None
    url: str | None = None
    """As sent, whatever its length: stored cut (``clipped``), after its campaign is read."""
    title: str | None = None
    referrer: str | None = None
    screen: str | None = None
    language: str | None = None
    properties: dict[str, PropertyValue] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: object) -> BrowserEvent:
        """The event in ``raw`` (a JSON object as parsed), text trimmed of surrounding spaces;
        EventRefused with every field that is missing, unknown or not as the API document
        says."""
        if not isinstance(raw, Mapping):
            raise EventRefused([{"field": "(event)", "message": "an event must be a JSON object"}])
        event = _EventReader(raw)
        kind = event.text("type", pattern=_KIND, required=True)
        if kind in SERVER_EVENT_KINDS:
            event.refuse("type", f"{kind!r} is recorded by Tsunagu itself, not sent by sites")
        read = cls(
            type=kind or "",
            visitor_id=event.text("visitor_id", pattern=_CLIENT_ID, required=True) or "",
            id=event.text("id", pattern=_CLIENT_ID),
            occurred_at=event.instant("occurred_at"),
            url=event.text("url", check=_http_url),
            title=event.text("title", max_length=300, check=_no_control_characters),
            referrer=clipped(event.text("referrer", check=_referrer)),
            screen=event.text("screen", pattern=_SCREEN),
            language=event.text("language", pattern=_LANGUAGE),
            properties=event.properties("properties"),
        )
        for name in sorted(set(raw) - _EVENT_FIELDS, key=str):
            event.refuse(str(name), "is not a field of an event")
        if event.errors:
            raise EventRefused(event.errors)
        return read


WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode's White_Space, what is trimmed from text (str.strip() would also take the control
characters U+001C to U+001F, which must be refused, not hidden)."""
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
_SCREEN = re.compile(r"^\d{1,5}x\d{1,5}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
_EVENT_FIELDS = frozenset(f.name for f in fields(BrowserEvent))
MAX_PROPERTIES = 20


class _EventReader:
    """The fields of one event, read one by one; every problem is kept, by its field's name."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self.errors: list[dict[str, str]] = []

    def refuse(self, name: str, message: str) -> None:
        self.errors.append({"field": name, "message": message})

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        max_length: int | None = None,
        check: Callable[[str], str | None] | None = None,
    ) -> str | None:
        value = self._raw.get(name)
        if value is None:
            if required:
                self.refuse(name, "is required")
            return None
        if not isinstance(value, str):
            self.refuse(name, "must be text")
            return None
        value = value.strip(WHITE_SPACE)
        if pattern is not None and not pattern.fullmatch(value):
            self.refuse(name, f"must match {pattern.pattern}")
        elif max_length is not None and len(value) > max_length:
            self.refuse(name, f"has at most {max_length} characters")
        else:
            try:
                return check(value) if check is not None else value
            except ValueError as error:
                self.refuse(name, str(error))
        return None

    def instant(self, name: str) -> datetime | None:
        value = self._raw.get(name)
        try:
            return None if value is None else client_instant(value)
        except ValueError as error:
            self.refuse(name, str(error))
            return None

    def properties(self, name: str) -> dict[str, PropertyValue]:
        if name not in self._raw:
            return {}
        values = self._raw[name]
        if not isinstance(values, Mapping):  # null too: the API document does not allow it
            self.refuse(name, "must be a JSON object")
            return {}
        if len(values) > MAX_PROPERTIES:
            self.refuse(name, f"has at most {MAX_PROPERTIES} properties")
            return {}
        kept: dict[str, PropertyValue] = {}
        for key, value in values.items():
            key = key.strip(WHITE_SPACE) if isinstance(key, str) else ""
            if not (1 <= len(key) <= 40) or not key.replace("_", "").isalnum() or not key.isascii():
                self.refuse(name, f"property name {key[:40]!r} must be 1-40 letters, digits or _")
                continue
            try:
                kept[key] = _property_value(key, value)
            except ValueError as error:
                self.refuse(f"{name}.{key}", str(error))
        return kept


def _property_value(key: str, value: object) -> PropertyValue:
    if isinstance(value, str):
        value = value.strip(WHITE_SPACE)
        if len(value) > 500:
            raise ValueError(f"property {key!r} is longer than 500 characters")
        _no_control_characters(value)
        return value
    if value is None or isinstance(value, bool | int | float):
        return _storable_number(value)
    raise ValueError("must be text, a number, true, false or null")


@dataclass(frozen=True)
class BrowserContext:
    origin: str | None
    source_ip: str | None
    user_agent: str | None
    prefetch: str | None = None
    """The header that announced a prefetch, as ``name: value`` (judgement.prefetch_header)."""
    signed: SignedPost | None = None
    """The signature the request offers (a site's server), checked before anything is kept."""

    def judgement(self) -> tuple[Signals, Judgement]:
        """Whether a page's beacon came from a person's browser: a crawler that runs the
        snippet (Googlebot renders pages), a headless browser or a script posting as a page
        names itself in its user agent, and a post without ``Origin`` is no browser's at all
        (browsers send it on every POST): a script or a server, which nothing proves is the
        site's own. Every event of a request shares its answer."""
        # No address: the rule on addresses is mail opens', and the event keeps the address
        # as the site's setting says (cut to its network unless told otherwise).
        signals = Signals(
            kind="browser",
            method="POST",
            user_agent=self.user_agent or "",
            prefetch=self.prefetch,
            without_origin=True if self.origin is None else None,
        )
        return signals, judge(signals)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """``{"index": i, "errors": [{"field", "message"}]}`` for each event refused."""


class TrackingStore(Protocol):
    def site_and_visitors(
        self, site_id: str, visitor_ids: Sequence[str]
    ) -> tuple[StoredSite | None, dict[str, str]]:
        """The site's definition and, for each visitor already known, its lead id."""
        ...

    def put_events(self, events: Sequence[LeadEvent]) -> None: ...

    def put_event_once(self, event: LeadEvent, claim: str) -> bool:
        """Store ``event`` with a record of ``claim`` that must not be there yet, in one write;
        False (and nothing stored) when the claim was made before."""
        ...

    def stored_for_visitors(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (visitor id, storage key) pairs already hold an event stored while
        the visitor was anonymous."""
        ...

    def claim_signed_post(self, site_id: str, request: VerifiedRequest) -> bool:
        """Remember a signed request until its timestamp could not pass again; False when it
        was remembered before (a replay)."""
        ...


def truncate_ip(ip: str | None) -> str | None:
    """Cut an address to its network (/24 IPv4, /48 IPv6): enough for region, not a person."""
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _utm(url: str | None) -> dict[str, str]:
    if not url:
        return {}
    query = dict(parse_qsl(urlsplit(url).query))
    return {key[4:]: query[key][:200] for key in UTM_KEYS if query.get(key)}


def ingest_browser_events(
    site_id: str,
    raw_events: Sequence[Any],
    context: BrowserContext,
    *,
    store: TrackingStore,
    clock: Clock,
    site_signing_key: Callable[[], bytes] | None = None,
) -> IngestResult:
    """Store the good events of a batch. ``site_signing_key``: the key sites' signing secrets
    are derived from, read only when the request offers a signature."""
    if not raw_events:
        raise ValidationFailed([FieldError("events", "send at least one event")])
    accepted: list[tuple[int, BrowserEvent]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        try:
            accepted.append((index, BrowserEvent.read(raw)))
        except EventRefused as refused:
            rejected.append({"index": index, "errors": refused.errors})

    if not is_site_id(site_id):
        raise NotFound(f"there is no site with id {site_id[:64]!r}")
    visitors = sorted({event.visitor_id for _, event in accepted})
    site, leads_by_visitor = store.site_and_visitors(site_id, visitors)
    if site is None:
        raise NotFound(f"there is no site with id {site_id!r}")
    # A post without Origin has nothing to check here; it is judged a machine's (no_origin)
    if context.origin is not None and not site.allows_origin(context.origin):
        raise OriginNotAllowed(f"this site does not accept events from {context.origin}")
    verified: VerifiedRequest | None = None
    if context.signed is not None:
        # A signature offered is checked whatever else the request says: a wrong or stale one
        # is refused whole (401), never stored as an unsigned post.
        if site_signing_key is None:
            raise RuntimeError("a signed post needs the site signing key")
        # On the runtime's clock, which is the system's in AWS: locally, a test or a demo
        # signs on the instant the runtime shows.
        verified = verify_server_post(site, context.signed, site_signing_key, clock.now())
    if not accepted:
        return IngestResult(0, rejected)
    if verified is not None and not store.claim_signed_post(site.site_id, verified):
        raise ReplayedRequest("this signed request was already received; sign each post anew")

    received = clock.now()
    ip = truncate_ip(context.source_ip) if site.truncate_ip else context.source_ip
    # What was judged says so either way, as an open or a click does: a person's event is
    # ``automated: false`` (so that ``automated = false`` finds people's page views in the
    # analytics), a machine's keeps why and what it was judged on (so it can be judged again).
    automated: dict[str, Any]
    if verified is not None:
        # The site's own server, proven by its secret, says what its visitor did: a person's
        # event. The request's address and user agent are that server's, not the visitor's.
        automated = {"automated": False, "signed": True}
        ip = None
        context = replace(context, user_agent=None)
    else:
        signals, judgement = context.judgement()
        automated = (
            {"automated": True, "reasons": judgement.reasons, "signals": signals.as_dict()}
            if judgement.automated
            else {"automated": False}
        )
    stored: dict[tuple[str, str], LeadEvent] = {}
    with_client_ids: list[LeadEvent] = []
    on_server_time: list[LeadEvent] = []
    seen: set[tuple[str, str]] = set()
    for index, event in accepted:
        lead_event = _to_event(
            event, index, site, received, ip, context, leads_by_visitor, automated
        )
        # The same event twice in one batch (a retried beacon merged into the next) is one
        # event: by its client id when it has one (its key holds the server's time, different
        # for each copy, when its clock is not believed), else by its key (DynamoDB refuses a
        # batch that writes one key twice).
        key = (lead_event.subject, lead_event.storage_key)
        once = (event.visitor_id, event.id) if event.id is not None else key
        if once in seen:
            continue
        seen.add(once)
        if event.id is None:
            stored[key] = lead_event
        elif lead_event.occurred_at != _client_time(event):
            on_server_time.append(lead_event)
        else:
            stored[key] = lead_event
            with_client_ids.append(lead_event)
    accepted_count = len(seen)  # a repeat is accepted, and stored once
    for visitor_id, storage_key in _stored_before_the_link(with_client_ids, store):
        # A beacon repeated after the form linked its visitor to a lead: its first copy is
        # under the visitor (the lead's timeline joins it); a second under the lead would
        # be scored and routed again.
        del stored[(f"lead#{leads_by_visitor[visitor_id]}", storage_key)]
    store.put_events(list(stored.values()))
    for lead_event in on_server_time:
        # Kept under the server's time (its clock is not believed), so a repeat would have a
        # key of its own: it is stored with a claim on its client id instead, and a repeat
        # (another request's, after its visitor became a lead) stores nothing. Its time cannot
        # make the key instead: a clock years off would put the event in every "since" window
        # (or past its expiry). Events whose time is believed need no claim, their key is the
        # same for every copy; only a copy that arrives after the clock crossed the bound
        # (minutes later for one just over five minutes fast) is kept a second time, as a claim
        # on every event would cost each beacon a transaction.
        store.put_event_once(lead_event, _claim(site.site_id, lead_event))
    return IngestResult(accepted_count, rejected)


def _client_time(event: BrowserEvent) -> str | None:
    return isoformat(event.occurred_at) if event.occurred_at is not None else None


def _claim(site_id: str, event: LeadEvent) -> str:
    """What a copy of an event on the server's time claims: its client id, the browser's own
    (the visitor's) within the site."""
    return f"beacon:{site_id}:{event.visitor_id}:{event.event_id}"


def _stored_before_the_link(
    events: Sequence[LeadEvent], store: TrackingStore
) -> set[tuple[str, str]]:
    """Events with client ids, now for a lead, that were stored while their visitor was still
    anonymous. Only linked visitors' events are looked up: one read per such batch."""
    keys = [(e.visitor_id, e.storage_key) for e in events if e.lead_id and e.visitor_id]
    return store.stored_for_visitors(keys) if keys else set()


def _to_event(
    event: BrowserEvent,
    index: int,
    site: StoredSite,
    received: datetime,
    ip: str | None,
    context: BrowserContext,
    leads_by_visitor: Mapping[str, str],
    automated: Mapping[str, Any],
) -> LeadEvent:
    occurred = event.occurred_at
    believed = occurred is not None and (
        received - CLIENT_CLOCK_BEHIND <= occurred <= received + _FUTURE_SKEW
    )
    if occurred is None or not believed:
        # Keep a batch's order even when every event gets the same server time.
        occurred = received + timedelta(milliseconds=index)
        believed = False
    properties: dict[str, Any] = {
        "site_id": site.site_id,
        "url": clipped(event.url),
        "path": clipped(urlsplit(event.url).path) if event.url else None,
        "title": event.title,
        "referrer": event.referrer,
        "utm": _utm(event.url),
        "screen": event.screen,
        "language": event.language,
        "properties": event.properties,
        "client_time": isoformat(event.occurred_at) if event.occurred_at else None,
        # When the server had it, where the event keeps the client's time: a journey's wait
        # counts events from its entry by this (tsunagu.journeys.waits.catch_up).
        "received_at": isoformat(received) if believed else None,
        "ip": ip,
        "user_agent": (context.user_agent or "")[:400] or None,
        **automated,
    }
    return LeadEvent(
        event_id=event.id or new_ulid(received),
        type=event.type,
        occurred_at=isoformat(occurred),
        lead_id=leads_by_visitor.get(event.visitor_id),
        visitor_id=event.visitor_id,
        properties={k: v for k, v in properties.items() if v not in (None, {}, "")},
    )
