"""/u/{token} — the personal unsubscribe link in every mail.

POST with ``List-Unsubscribe=One-Click`` (RFC 8058, sent by mail providers): unsubscribe at once.
GET: the preference page, which changes nothing (scanners follow GETs). POST from that page:
apply the person's choices.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs

from tsunagu import services
from tsunagu.api.requests import HttpRequest
from tsunagu.api.responses import Response, error_response, html_response
from tsunagu.errors import MalformedRequest, TsunaguError, UnsupportedMediaType
from tsunagu.mail.preferences import (
    PreferenceContext,
    Preferences,
    confirm_subscription,
    preferences,
    unsubscribe_one_click,
    update_preferences,
)
from tsunagu.observability import HTTP_API, metrics, observed
from tsunagu.settings import get_settings

MAX_BODY = 8 * 1024
ONE_CLICK_PART = re.compile(rb'name="List-Unsubscribe"\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n')
NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


@observed(correlation_id_path=HTTP_API)
def handler(event: dict[str, Any], context: Any) -> Response:
    settings = get_settings()
    store = services.mail_repository(settings)
    signer = services.token_signer(settings)
    clock = services.clock(settings)
    try:
        request = HttpRequest.from_http_api_event(event)
        token = request.path_parameters.get("token", "")
        who = PreferenceContext(request.source_ip, request.header("user-agent"))
        if request.method == "GET":
            current = preferences(token, signer=signer, store=store)
            confirming = request.query.get("confirm") == "1" and bool(current.pending)
            page = _confirm_page(current) if confirming else _page(current)
            return html_response(200, page, NO_STORE)
        form = _form(request)
        if form.get("confirm") == ["1"]:
            confirmed = confirm_subscription(token, who, signer=signer, store=store, clock=clock)
            metrics.add_metric(name="DoubleOptInConfirmed", unit="Count", value=1)
            return html_response(200, _confirmed(confirmed), NO_STORE)
        if form.get("List-Unsubscribe") == ["One-Click"]:
            unsubscribe_one_click(token, who, signer=signer, store=store, clock=clock)
            metrics.add_metric(name="OneClickUnsubscribe", unit="Count", value=1)
            return html_response(200, _done(), NO_STORE)
        chosen = {name.removeprefix("topic:"): True for name in form if name.startswith("topic:")}
        current = preferences(token, signer=signer, store=store)
        subscribed = {topic: chosen.get(topic, False) for topic in current.topics}
        updated = update_preferences(
            token,
            subscribed,
            "unsubscribe_all" in form,
            who,
            signer=signer,
            store=store,
            clock=clock,
        )
        return html_response(200, _page(updated, saved=True), NO_STORE)
    except TsunaguError as error:
        return error_response(error, as_html=True, headers=NO_STORE, title="Link not valid")


def _form(request: HttpRequest) -> dict[str, list[str]]:
    if len(request.body) > MAX_BODY:
        raise MalformedRequest("the form is too large")
    if request.media_type == "multipart/form-data":
        # RFC 8058 lets a mail client send the one-click POST as multipart as well.
        if ONE_CLICK_PART.search(request.body):
            return {"List-Unsubscribe": ["One-Click"]}
        raise UnsupportedMediaType("send application/x-www-form-urlencoded")
    if request.media_type not in ("application/x-www-form-urlencoded", ""):
        raise UnsupportedMediaType("send application/x-www-form-urlencoded")
    try:
        return parse_qs(request.body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise MalformedRequest("the form cannot be read") from None


_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:.5rem 0}button{margin-top:1rem;padding:.5rem 1.2rem}</style>"
)


def _page(prefs: Preferences, saved: bool = False) -> str:
    boxes = "".join(
        f"<label><input type=checkbox name='topic:{html.escape(topic)}'"
        f"{' checked' if on else ''}> {html.escape(topic)}</label>"
        for topic, on in sorted(prefs.topics.items())
    )
    everything = " checked" if prefs.unsubscribed_from_all else ""
    note = "<p><b>Saved. / 保存しました。</b></p>" if saved else ""
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>配信設定 / Mail preferences</title>{_STYLE}"
        f"<h1>配信設定 / Mail preferences</h1>{note}"
        f"<p>{html.escape(prefs.masked_email)}</p><form method=post>{boxes}"
        f"<label><input type=checkbox name=unsubscribe_all{everything}> "
        "すべての配信を停止する / Unsubscribe from all</label>"
        "<button type=submit>保存 / Save</button></form>"
    )


def _done() -> str:
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8><title>配信停止 / Unsubscribed</title>"
        f"{_STYLE}<h1>配信を停止しました / You are unsubscribed</h1>"
    )


def _confirm_page(prefs: Preferences) -> str:
    # A button, not the link itself: mail scanners follow links, and must not subscribe anyone.
    topics = ", ".join(html.escape(t) for t in prefs.pending)
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>登録の確認 / Confirm</title>{_STYLE}"
        "<h1>登録の確認 / Confirm your subscription</h1>"
        f"<p>{html.escape(prefs.masked_email)}: {topics}</p>"
        "<form method=post><input type=hidden name=confirm value=1>"
        "<button type=submit>登録を確定する / Confirm</button></form>"
    )


def _confirmed(topics: list[str]) -> str:
    listed = ", ".join(html.escape(t) for t in topics) or "-"
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>登録完了 / Confirmed</title>{_STYLE}"
        f"<h1>登録しました / Confirmed</h1><p>{listed}</p>"
    )
