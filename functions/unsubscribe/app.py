"""/u/{token} — the personal unsubscribe link in every mail.

POST with ``List-Unsubscribe=One-Click`` (RFC 8058, sent by mail providers): unsubscribe at once.
GET: the preference page, which changes nothing (scanners follow GETs). POST from that page:
apply the person's choices.
"""

from __future__ import annotations

from typing import Any

from tsunagu import services
from tsunagu.api.requests import HttpRequest, read_unsubscribe_form
from tsunagu.api.responses import Response, error_response, html_response, status_for
from tsunagu.errors import NotFound, TsunaguError
from tsunagu.mail.pages import (
    confirm_page,
    confirmed_page,
    link_not_valid_page,
    preference_page,
    unsubscribed_page,
)
from tsunagu.mail.preferences import (
    OneClickUnsubscribe,
    PreferenceContext,
    SubscriptionConfirmation,
    confirm_subscription,
    preferences,
    read_unsubscribe_link_post,
    unsubscribe_one_click,
    update_preferences,
)
from tsunagu.observability import HTTP_API, metrics, observed
from tsunagu.settings import get_settings

NO_STORE = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    # A tokened page that changes consent with one press must not be framed by another site
    # (clickjacking); the pages need no script, only their inline style and a form posting here.
    "x-frame-options": "DENY",
    "content-security-policy": (
        "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    ),
}


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
            page = confirm_page(current) if confirming else preference_page(current)
            return html_response(200, page, NO_STORE)
        posted = read_unsubscribe_link_post(read_unsubscribe_form(request))
        if isinstance(posted, SubscriptionConfirmation):
            confirmed = confirm_subscription(token, who, signer=signer, store=store, clock=clock)
            metrics.add_metric(name="DoubleOptInConfirmed", unit="Count", value=1)
            return html_response(200, confirmed_page(confirmed), NO_STORE)
        if isinstance(posted, OneClickUnsubscribe):
            unsubscribe_one_click(token, who, signer=signer, store=store, clock=clock)
            metrics.add_metric(name="OneClickUnsubscribe", unit="Count", value=1)
            return html_response(200, unsubscribed_page(), NO_STORE)
        current = preferences(token, signer=signer, store=store)
        subscribed = {topic: topic in posted.ticked_topics for topic in current.topics}
        updated = update_preferences(
            token,
            subscribed,
            posted.unsubscribe_all,
            who,
            signer=signer,
            store=store,
            clock=clock,
            shown=posted.shown,
        )
        if updated.changed_meanwhile:
            # Nothing saved: the page again, with the settings as they are now
            return html_response(409, preference_page(updated), NO_STORE)
        return html_response(200, preference_page(updated, saved=True), NO_STORE)
    except NotFound as error:
        # In the person's language too, saying what still works (not the generic error page)
        return html_response(status_for(error), link_not_valid_page(), NO_STORE)
    except TsunaguError as error:
        title = "Nothing was changed / 変更されていません"
        return error_response(error, as_html=True, headers=NO_STORE, title=title)
