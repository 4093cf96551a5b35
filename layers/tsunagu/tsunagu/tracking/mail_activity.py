"""Mail opens and clicks, from signed tokens, judged and stored with their evidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.errors import NotFound
from tsunagu.ids import new_id
from tsunagu.leads.model import LeadEvent
from tsunagu.tracking.judgement import (
    BURST_WINDOW_SECONDS,
    REPEAT_WINDOW_SECONDS,
    Judgement,
    Signals,
    judge,
    prefetch_header,
)
from tsunagu.tracking.tokens import InvalidToken, TokenKind, TokenSigner, TrackingToken

MAIL_OPENED = "mail_opened"
LINK_CLICKED = "link_clicked"


@dataclass(frozen=True)
class LinkRequest:
    token: str
    method: str
    headers: Mapping[str, str]
    """Lower-case names."""
    source_ip: str | None


@dataclass(frozen=True)
class ClickOutcome:
    destination: str
    judgement: Judgement


class MailActivityStore(Protocol):
    def recent_clicks(self, lead_id: str, message_id: str, since: str) -> list[LeadEvent]: ...

    def put_event(self, event: LeadEvent) -> None: ...

    def record_burst(
        self, events: Sequence[LeadEvent], *, later_links: int = 0, later_repeats: int = 0
    ) -> None:
        """Add to earlier clicks' evidence that ``later_links`` other links (or
        ``later_repeats`` clicks of the same link) followed within the burst window, and store
        them as judged again."""
        ...


def _signals(
    kind: str,
    token: TrackingToken,
    request: LinkRequest,
    clock: Clock,
    others: int = 0,
    repeats: int = 0,
) -> Signals:
    return Signals(
        kind=kind,
        method=request.method,
        user_agent=request.headers.get("user-agent", ""),
        ip=request.source_ip,
        seconds_since_sent=round(clock.now().timestamp() - token.sent_at, 3),
        prefetch=prefetch_header(request.headers),
        honeypot=token.kind is TokenKind.HONEYPOT,
        other_links_clicked_just_before=others,
        same_link_clicked_just_before=repeats,
    )


def _event(
    kind: str, token: TrackingToken, signals: Signals, judgement: Judgement, at: str
) -> LeadEvent:
    properties: dict[str, object] = {
        "message_id": token.message_id,
        "automated": judgement.automated,
        "reasons": judgement.reasons,
        "signals": signals.as_dict(),
    }
    if token.link_id is not None:
        properties["link_id"] = token.link_id
    if token.url is not None:
        properties["url"] = token.url
    return LeadEvent(
        event_id=new_id("evt", parse_instant(at)),
        type=kind,
        occurred_at=at,
        lead_id=token.lead_id,
        properties=properties,
    )


def follow_link(
    request: LinkRequest, *, signer: TokenSigner, store: MailActivityStore, clock: Clock
) -> ClickOutcome:
    """Record a click and say where to send the person. An invalid token redirects nowhere."""
    try:
        token = signer.verify(request.token)
    except InvalidToken:
        raise NotFound("this link is not valid (it may have been altered)") from None
    if token.kind is TokenKind.OPEN or token.url is None:
        raise NotFound("this link is not valid")
    now = clock.now()
    since = isoformat(now - timedelta(seconds=BURST_WINDOW_SECONDS))
    repeat_since = isoformat(now - timedelta(seconds=REPEAT_WINDOW_SECONDS))
    recent = store.recent_clicks(token.lead_id, token.message_id, since)
    earlier = [e for e in recent if e.properties.get("link_id") != token.link_id]
    repeated = [
        e
        for e in recent
        if e.properties.get("link_id") == token.link_id and e.occurred_at >= repeat_since
    ]
    other_links = {e.properties.get("link_id") for e in earlier}
    signals = _signals("click", token, request, clock, len(other_links), len(repeated))
    judgement = judge(signals)
    store.put_event(_event(LINK_CLICKED, token, signals, judgement, isoformat(now)))
    if "link_burst" in judgement.reasons:
        # The first clicks of a burst looked human when they came; with the burst seen, they
        # are not. Nothing has acted on them yet: they are held until the window has passed.
        if earlier:
            store.record_burst(earlier, later_links=1)
        if repeated:
            store.record_burst(repeated, later_repeats=1)
    return ClickOutcome(token.url, judgement)


def record_open(
    request: LinkRequest, *, signer: TokenSigner, store: MailActivityStore, clock: Clock
) -> Judgement | None:
    """Record an open for a valid open token; anything else records nothing (the pixel is
    served either way)."""
    try:
        token = signer.verify(request.token)
    except InvalidToken:
        return None
    if token.kind is not TokenKind.OPEN:
        return None
    signals = _signals("open", token, request, clock)
    judgement = judge(signals)
    store.put_event(_event(MAIL_OPENED, token, signals, judgement, isoformat(clock.now())))
    return judgement
