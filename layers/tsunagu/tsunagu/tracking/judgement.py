"""Telling people from machines in mail opens and clicks, and in the snippet's page views.

B2B mail passes through security gateways (Microsoft Defender for Office 365 Safe Links,
Mimecast, Proofpoint, Barracuda) that fetch every link and image seconds after delivery, and
Apple Mail Privacy Protection pre-fetches every image through Apple's proxies. Counting those as
people inflates opens and clicks, scores leads who never looked and sends them down the "clicked"
branch. Each rule below names a signal such traffic shows; an activity any rule fires on is
stored as automated with every reason that fired, never deleted: it can be audited and re-judged
from the signals kept with it.

Rules and their evidence:

- ``honeypot_link`` — every mail carries a link no person can see or click (hidden in markup).
  Scanners that follow every ``href`` follow it too.
- ``head_request`` — people's browsers GET a link; link checkers and some gateways send HEAD
  first to look at the redirect without downloading anything.
- ``prefetch_header`` — browsers and proxies that fetch ahead of a person say so:
  ``Purpose: prefetch``, ``Sec-Purpose: prefetch``, ``X-Moz: prefetch``, ``X-Purpose: preview``.
- ``scanner_user_agent`` — the fetcher names itself, or is plainly not a mail reader or browser:
  HTTP libraries (python-requests, Go-http-client, curl, Java, okhttp), headless browsers
  (HeadlessChrome, PhantomJS), crawlers (bot, spider, crawler), link-preview fetchers
  (BingPreview, Slackbot, facebookexternalhit) and the security products that identify
  themselves (Barracuda, Mimecast, Proofpoint, Trend Micro, Symantec, Forcepoint, Cisco, ...).
  Microsoft Defender Safe Links does not name itself; the timing rules catch it.
- ``too_soon_after_delivery`` — a click or open within ``SOON_AFTER_SEND_SECONDS`` of the mail
  being sent. Gateways scan on arrival; a person has not yet seen the mail.
- ``link_burst`` — ``BURST_LINKS`` or more different links of one mail clicked within
  ``BURST_WINDOW_SECONDS`` (in any order): scanners follow every visible link, a few seconds
  apart; a person clicks one and reads the page. Also one link clicked again within
  ``REPEAT_WINDOW_SECONDS``: a gateway's second fetch (HEAD then GET, a re-check), faster than
  a person comes back to the same link. The first click of a burst is re-judged when the later
  one arrives, and nothing acts on a click until the window has passed (tracking.settling).
- ``apple_privacy_proxy`` (opens only) — Apple Mail Privacy Protection fetches images from
  Apple's network (17.0.0.0/8) with a bare ``Mozilla/5.0`` user agent, whether or not the
  person ever opens the mail.

Google's image proxy (``GoogleImageProxy``) is *not* automated: Gmail fetches through it when a
person opens the mail.

The snippet's page views and custom events (kind ``browser``) are judged by the rules that need
no mail: ``scanner_user_agent`` (Googlebot and Bingbot render pages and run their scripts;
headless browsers and HTTP libraries post beacons) and ``prefetch_header``, and by one of their
own:

- ``no_origin`` (page views and custom events only) — a browser sends ``Origin`` on every POST;
  a post without it is a script or a server, and nothing proves whose: leaving the header out
  once made a curl beacon a person's page view, scored on whichever lead its visitor id named.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

SOON_AFTER_SEND_SECONDS = 10
BURST_WINDOW_SECONDS = 10.0
BURST_LINKS = 2
REPEAT_WINDOW_SECONDS = 1.0

_SCANNER_AGENTS = re.compile(
    r"python-requests|python-urllib|aiohttp|httpx|go-http-client|\bcurl/|\bwget/|\bjava/|"
    r"okhttp|apache-httpclient|libwww-perl|headlesschrome|phantomjs|\bbot\b|bot/|spider|"
    r"crawler|bingpreview|slackbot|facebookexternalhit|linkedinbot|twitterbot|"
    r"barracuda|mimecast|proofpoint|trend ?micro|symantec|forcepoint|cisco|sophos|"
    r"ironport|fireeye|zscaler|safelinks|urldefense|scanner",
    re.IGNORECASE,
)
_PREFETCH_HEADERS = {
    "purpose": "prefetch",
    "sec-purpose": "prefetch",
    "x-moz": "prefetch",
    "x-purpose": "preview",
}
_APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")


@dataclass(frozen=True)
class Signals:
    """What an open, a click or a batch of page views looked like: kept with the event so it
    can be re-judged (with a page view, only when it was judged automated: a person's keeps its
    user agent, and nothing more)."""

    kind: str
    """``open``, ``click`` or ``browser`` (a batch of page views and custom events)."""
    method: str
    user_agent: str
    ip: str | None = None
    seconds_since_sent: float | None = None
    """None for the snippet's events: no mail was sent."""
    prefetch: str | None = None
    """The header that announced a prefetch, as ``name: value``."""
    honeypot: bool = False
    other_links_clicked_just_before: int = 0
    """Different links of the same mail clicked within BURST_WINDOW_SECONDS before this one."""
    other_links_clicked_just_after: int = 0
    """The same, after this one: filled in when a later click reveals the burst, so that the
    first click of a burst is judged a machine's on re-judging too."""
    same_link_clicked_just_before: int = 0
    """Clicks of this same link within REPEAT_WINDOW_SECONDS before this one."""
    same_link_clicked_just_after: int = 0
    """The same, after this one (filled in as other_links_clicked_just_after is)."""
    without_origin: bool | None = None
    """True for a snippet's post that carried no ``Origin`` header (no browser leaves it
    out); None where it means nothing (opens and clicks), so their kept signals stay as they
    were."""

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Judgement:
    automated: bool
    reasons: list[str] = field(default_factory=list)


def prefetch_header(headers: Mapping[str, str]) -> str | None:
    for name, marker in _PREFETCH_HEADERS.items():
        value = headers.get(name)
        if value is not None and marker in value.lower():
            return f"{name}: {value}"
    return None


def _from_apple_network(ip: str | None) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip) in _APPLE_NETWORK
    except ValueError:
        return False


def judge(signals: Signals) -> Judgement:
    reasons: list[str] = []
    if signals.honeypot:
        reasons.append("honeypot_link")
    if signals.method.upper() == "HEAD":
        reasons.append("head_request")
    if signals.prefetch:
        reasons.append("prefetch_header")
    if signals.kind == "browser" and signals.without_origin:
        reasons.append("no_origin")
    if not signals.user_agent.strip() or _SCANNER_AGENTS.search(signals.user_agent):
        reasons.append("scanner_user_agent")
    if (
        signals.seconds_since_sent is not None
        and signals.seconds_since_sent < SOON_AFTER_SEND_SECONDS
    ):
        reasons.append("too_soon_after_delivery")
    others = signals.other_links_clicked_just_before + signals.other_links_clicked_just_after
    repeats = signals.same_link_clicked_just_before + signals.same_link_clicked_just_after
    if signals.kind == "click" and (others >= BURST_LINKS - 1 or repeats > 0):
        reasons.append("link_burst")
    if signals.kind == "open" and (
        _from_apple_network(signals.ip) or signals.user_agent.strip() == "Mozilla/5.0"
    ):
        reasons.append("apple_privacy_proxy")
    return Judgement(automated=bool(reasons), reasons=reasons)


def rejudge(stored_signals: Mapping[str, object]) -> Judgement:
    """Judge again from the signals kept with an event (after the rules changed)."""
    known = set(Signals.__dataclass_fields__)
    values = {k: v for k, v in stored_signals.items() if k in known}
    return judge(Signals(**values))  # type: ignore[arg-type]
