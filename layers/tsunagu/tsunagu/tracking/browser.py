"""Events from the tracking snippet: validated one by one, stored in one batch.

A bad event is reported back by its index and the good ones in the same batch are kept: one
broken custom event must not lose the page views around it.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tsunagu.client_values import ClientInstant
from tsunagu.clock import Clock, isoformat
from tsunagu.errors import FieldError, NotFound, OriginNotAllowed, ValidationFailed
from tsunagu.event_kinds import SERVER_EVENT_KINDS
from tsunagu.ids import new_ulid
from tsunagu.leads.model import LeadEvent
from tsunagu.tracking.sites import SiteDefinition, is_site_id

MAX_EVENTS = 50
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# A client clock further off than this is not believed; the server's time is used instead.
_PAST_SKEW = timedelta(hours=24)
_FUTURE_SKEW = timedelta(minutes=5)

PropertyValue = str | int | float | bool | None
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


class BrowserEvent(BaseModel):
    """One event as the snippet sends it (see docs/openapi.yaml, TrackedEvent)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", str_strip_whitespace=True)

    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    visitor_id: str = Field(pattern=CLIENT_ID_PATTERN)
    id: str | None = Field(default=None, pattern=CLIENT_ID_PATTERN)
    """Client-made id: a beacon sent twice stores one event."""
    occurred_at: ClientInstant | None = None
    url: str | None = Field(default=None, max_length=2048)
    title: str | None = Field(default=None, max_length=300)
    referrer: str | None = Field(default=None, max_length=2048)
    screen: str | None = Field(default=None, pattern=r"^\d{1,5}x\d{1,5}$")
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=20)

    _url = field_validator("url")(_http_url)

    @field_validator("type")
    @classmethod
    def _not_reserved(cls, kind: str) -> str:
        if kind in SERVER_EVENT_KINDS:
            raise ValueError(f"{kind!r} is recorded by Tsunagu itself, not sent by sites")
        return kind

    _referrer = field_validator("referrer")(_referrer)
    _text = field_validator("title")(_no_control_characters)

    @field_validator("properties")
    @classmethod
    def _small_flat_properties(cls, values: dict[str, PropertyValue]) -> dict[str, PropertyValue]:
        for key, value in values.items():
            if not (1 <= len(key) <= 40) or not key.replace("_", "").isalnum() or not key.isascii():
                raise ValueError(f"property name {key[:40]!r} must be 1-40 letters, digits or _")
            if isinstance(value, str):
                if len(value) > 500:
                    raise ValueError(f"property {key!r} is longer than 500 characters")
                _no_control_characters(value)
            else:
                _storable_number(value)
        return values


@dataclass(frozen=True)
class BrowserContext:
    origin: str | None
    source_ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """``{"index": i, "errors": [{"field", "message"}]}`` for each event refused."""


class TrackingStore(Protocol):
    def site_and_visitors(
        self, site_id: str, visitor_ids: Sequence[str]
    ) -> tuple[SiteDefinition | None, dict[str, str]]:
        """The site's definition and, for each visitor already known, its lead id."""
        ...

    def put_events(self, events: Sequence[LeadEvent]) -> None: ...

    def stored_for_visitors(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (visitor id, storage key) pairs already hold an event stored while
        the visitor was anonymous."""
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


def _errors(error: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(event)", "message": e["msg"]}
        for e in error.errors(include_url=False, include_input=False)
    ]


def ingest_browser_events(
    site_id: str,
    raw_events: Sequence[Any],
    context: BrowserContext,
    *,
    store: TrackingStore,
    clock: Clock,
) -> IngestResult:
    if not raw_events:
        raise ValidationFailed([FieldError("events", "send at least one event")])
    accepted: list[tuple[int, BrowserEvent]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        try:
            if not isinstance(raw, Mapping):
                raise ValueError("an event must be a JSON object")
            accepted.append((index, BrowserEvent.model_validate(raw)))
        except ValidationError as error:
            rejected.append({"index": index, "errors": _errors(error)})
        except ValueError as error:
            rejected.append(
                {"index": index, "errors": [{"field": "(event)", "message": str(error)}]}
            )

    if not is_site_id(site_id):
        raise NotFound(f"there is no site with id {site_id[:64]!r}")
    visitors = sorted({event.visitor_id for _, event in accepted})
    site, leads_by_visitor = store.site_and_visitors(site_id, visitors)
    if site is None:
        raise NotFound(f"there is no site with id {site_id!r}")
    if context.origin is not None and not site.allows_origin(context.origin):
        raise OriginNotAllowed(f"this site does not accept events from {context.origin}")
    if not accepted:
        return IngestResult(0, rejected)

    received = clock.now()
    ip = truncate_ip(context.source_ip) if site.truncate_ip else context.source_ip
    stored: dict[tuple[str, str], LeadEvent] = {}
    with_client_ids: list[LeadEvent] = []
    for index, event in accepted:
        lead_event = _to_event(event, index, site, received, ip, context, leads_by_visitor)
        # The same event twice in one batch (a retried beacon merged into the next) is one
        # event; DynamoDB refuses a batch that writes one key twice.
        key = (lead_event.subject, lead_event.storage_key)
        if key not in stored and event.id is not None:
            with_client_ids.append(lead_event)
        stored.setdefault(key, lead_event)
    accepted_count = len(stored)  # a repeat is accepted, and stored once
    for visitor_id, storage_key in _stored_before_the_link(with_client_ids, store):
        # A beacon repeated after the form linked its visitor to a lead: its first copy is
        # under the visitor (the lead's timeline joins it); a second under the lead would
        # be scored and routed again.
        del stored[(f"lead#{leads_by_visitor[visitor_id]}", storage_key)]
    store.put_events(list(stored.values()))
    return IngestResult(accepted_count, rejected)


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
    site: SiteDefinition,
    received: datetime,
    ip: str | None,
    context: BrowserContext,
    leads_by_visitor: Mapping[str, str],
) -> LeadEvent:
    occurred = event.occurred_at
    if occurred is None or not (received - _PAST_SKEW <= occurred <= received + _FUTURE_SKEW):
        # Keep a batch's order even when every event gets the same server time.
        occurred = received + timedelta(milliseconds=index)
    properties: dict[str, Any] = {
        "site_id": site.site_id,
        "url": event.url,
        "path": urlsplit(event.url).path if event.url else None,
        "title": event.title,
        "referrer": event.referrer,
        "utm": _utm(event.url),
        "screen": event.screen,
        "language": event.language,
        "properties": event.properties,
        "client_time": isoformat(event.occurred_at) if event.occurred_at else None,
        "ip": ip,
        "user_agent": (context.user_agent or "")[:400] or None,
    }
    return LeadEvent(
        event_id=event.id or new_ulid(received),
        type=event.type,
        occurred_at=isoformat(occurred),
        lead_id=leads_by_visitor.get(event.visitor_id),
        visitor_id=event.visitor_id,
        properties={k: v for k, v in properties.items() if v not in (None, {}, "")},
    )
