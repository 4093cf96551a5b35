"""Render time per mail for a typical ~30 KB HTML newsletter, against a bare Jinja2 render.

Goal: rendering one mail (render_mail, with click URLs signed by a real TokenSigner, as send_mail
does) takes at most 1.5 times a bare ``jinja2.Environment(autoescape=True)`` render of the same
template with the same context. Both templates are compiled once, before anything is timed.

Every variant is timed once per round, interleaved, so that drift (CPU frequency, other load)
affects all alike; the figure is the median over the rounds. Correctness is asserted, never time.
"""

from __future__ import annotations

import gc
import html as html_lib
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import jinja2

from tests.benchmarks._newsletter import JOURNEY, SUBJECT, newsletter_html
from tests.support.bench_report import BenchReport
from tsunagu.mail import render as render_module
from tsunagu.mail.render import RenderedMail, TrackingUrls, html_to_text, render_mail
from tsunagu.mail.templates import MailTemplate
from tsunagu.tracking.tokens import TokenKind, TokenSigner, TrackingToken

TITLE = "send_email render time per mail (~30 KB HTML newsletter) vs bare Jinja2"
GOAL = 1.5
ROUNDS = 200
WARM_UP = 10
BASE = "https://api.example.com"
MESSAGE_ID = "msg_01JD2Y7Q3M8X5K4N6P9R0S1T2V"
LEAD_ID = "lead_01JD2Y7Q3M8X5K4N6P9R0S1T2W"
SENT_AT = 1_795_338_000
LEAD = {"email": "hanako.sato@example.jp", "name": "佐藤 花子", "company": "Example KK"}
_HREF = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])(https?://[^"'\s>]+)\1""", re.IGNORECASE)


def signed_urls(signer: TokenSigner, topic: str) -> TrackingUrls:
    """The TrackingUrls send_mail builds for one message: three tokens signed up front, one
    more per distinct link when render_mail asks for it."""

    def token(kind: TokenKind, url: str | None = None, link_id: str | None = None) -> str:
        return signer.sign(TrackingToken(kind, MESSAGE_ID, LEAD_ID, SENT_AT, url, link_id, topic))

    return TrackingUrls(
        click=lambda link_id, url: f"{BASE}/c/{token(TokenKind.CLICK, url, link_id)}",
        open_pixel=f"{BASE}/o/{token(TokenKind.OPEN)}.gif",
        honeypot=f"{BASE}/c/{token(TokenKind.HONEYPOT, BASE + '/', 'honeypot')}",
        unsubscribe=f"{BASE}/u/{token(TokenKind.UNSUBSCRIBE)}",
    )


TRIVIAL_URLS = TrackingUrls(
    click=lambda link_id, url: f"{BASE}/c/{link_id}",
    open_pixel=f"{BASE}/o/pixel.gif",
    honeypot=f"{BASE}/c/honeypot",
    unsubscribe=f"{BASE}/u/unsubscribe",
)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def test_render_time_per_mail(bench_report: BenchReport) -> None:
    source = newsletter_html()
    template = MailTemplate(
        template_id="newsletter-2026-11",
        version=1,
        name="Newsletter, November 2026",
        subject=SUBJECT,
        html=source,
        from_address="news@example.com",
        from_name="Example ニュース",
    )
    signer = TokenSigner({"k1": b"0123456789abcdef0123456789abcdef"}, "k1")
    # The context render_mail builds (template.defaults is empty).
    unsubscribe_url = signed_urls(signer, template.topic).unsubscribe
    context = {"lead": dict(LEAD), "owner": {}, "journey": JOURNEY, "unsubscribe_url": ""}

    bare = jinja2.Environment(autoescape=True).from_string(source)  # compiled once, like ours

    def bare_render() -> Any:
        return bare.render({**context, "unsubscribe_url": unsubscribe_url})

    def ours_signed() -> RenderedMail:
        # As send_mail does per mail: sign the three fixed tokens, then render.
        urls = signed_urls(signer, template.topic)
        return render_mail(template, lead=LEAD, owner={}, journey=JOURNEY, urls=urls)

    def ours_trivial() -> RenderedMail:
        return render_mail(template, lead=LEAD, owner={}, journey=JOURNEY, urls=TRIVIAL_URLS)

    def sandboxed_only() -> str:  # render_mail's Jinja2 step alone (the subject aside)
        return render_module._render(
            source, {**context, "unsubscribe_url": unsubscribe_url}, autoescape=True
        )

    # ---- correctness, before anything is timed (this also compiles our templates once)
    bare_html = bare_render()
    assert sandboxed_only() == bare_html  # the sandbox renders the same document
    destinations = list(
        dict.fromkeys(
            url
            for url in (html_lib.unescape(m.group(2)) for m in _HREF.finditer(bare_html))
            if url != unsubscribe_url
        )
    )
    mail = ours_signed()
    assert [url for _, url in mail.links] == destinations
    clicks = [html_lib.unescape(m.group(2)) for m in _HREF.finditer(mail.html)]
    checked = 0
    for url in clicks:
        kind, _, token_text = url.removeprefix(BASE + "/").partition("/")
        if kind != "c" or url == signed_urls(signer, template.topic).honeypot:
            continue
        token = signer.verify(token_text)
        assert (token.link_id, token.url) in mail.links
        checked += 1
    assert checked >= len(destinations)  # every tracked anchor carries a valid signed token
    assert unsubscribe_url in mail.html
    assert "佐藤 花子 様" in mail.html and "佐藤 花子 様" in mail.subject
    assert all(item["url"] in destinations for item in JOURNEY["recommendations"])
    assert "ご担当者" not in mail.html  # lead.name was used, not the default
    assert mail.text and unsubscribe_url in mail.text
    trivial = ours_trivial()
    assert [url for _, url in trivial.links] == destinations
    # The text part comes from the template's HTML; its links are tracked links too.
    assert "/c/" in mail.text
    assert not [url for url in destinations if f"({url})" in mail.text]

    def sign_only() -> list[str]:  # the tokens one mail signs: three fixed, one per link
        urls = signed_urls(signer, template.topic)
        return [urls.click(link_id, url) for link_id, url in mail.links]

    def text_only() -> str:  # the text template, made once per template version (cached)
        return html_to_text(source)

    variants: dict[str, Callable[[], Any]] = {
        "bare": bare_render,
        "signed": ours_signed,
        "trivial": ours_trivial,
        "sandboxed": sandboxed_only,
        "text": text_only,
        "sign": sign_only,
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(WARM_UP):
        for run in variants.values():
            run()
    gc.collect()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for name, run in variants.items():
            before = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started

    ms = {name: median_ms(values) for name, values in samples.items()}
    ratio = ms["signed"] / ms["bare"]
    verdict = "met" if ratio <= GOAL else "NOT MET"
    rendered_bytes = len(mail.html.encode())
    added_kb = (rendered_bytes - len(trivial.html.encode())) / 1024
    rest = ms["signed"] - ms["sandboxed"] - ms["sign"]

    def row(label: str, value: float) -> str:
        return f"  {label:<70} {value:>9.3f} {value / ms['bare']:>7.2f}"

    lines = [
        f"Template: {len(source.encode()):,} bytes of HTML source (UTF-8), {len(destinations)} "
        f"distinct tracked links in {checked} anchors, a {{% for %}}",
        f"over {len(JOURNEY['recommendations'])} journey recommendations, "
        "{{ unsubscribe_url }} in the footer, no text part (made from the HTML once per version).",
        f"Rendered (y): HTML {rendered_bytes:,} bytes (bare Jinja2: {len(bare_html.encode()):,}),"
        f" text part {len(mail.text.encode()):,} bytes,",
        f"subject {mail.subject!r}.",
        f"Medians of {ROUNDS} interleaved rounds ({WARM_UP} warm-up rounds first), "
        f"{elapsed:.1f} s in all.",
        "",
        f"  {'per mail':<70} {'median ms':>9} {'x bare':>7}",
        row("(x) bare Jinja2 render (Environment(autoescape=True), compiled once)", ms["bare"]),
        row("(y) render_mail, click URLs signed by a real TokenSigner", ms["signed"]),
        "        (includes signing the 3 fixed tokens first, as send_mail does)",
        "",
        f"  render_mail / bare Jinja2: {ratio:.2f}   (goal <= {GOAL}: {verdict})",
        "",
        "  for information:",
        row("render_mail, trivial click URLs (no signing)", ms["trivial"]),
        "  the parts of (y), each timed alone in the same rounds:",
        row("  sandboxed Jinja2 render of the HTML", ms["sandboxed"]),
        row(f"  signing {3 + len(mail.links)} tokens (3 fixed + 1 per distinct link)", ms["sign"]),
        row("  the rest (subject, text part, link rewriting, ...), by difference", rest),
        row("  not per mail: the text template from the HTML, once per version", ms["text"]),
        "",
        f"  a signed click URL has {statistics.median(len(url) for url in clicks):.0f} characters "
        f"(median); they make the HTML {added_kb:.1f} KB larger",
        "  than with trivial click URLs",
    ]
    bench_report.add(TITLE, *lines)
