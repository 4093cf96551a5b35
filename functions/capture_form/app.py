"""POST /forms/{form_id}/submissions — a web form's submission becomes a lead.

Also answers the CORS preflight (OPTIONS) for forms posted with fetch from a registered site.
"""

from __future__ import annotations

from tsunagu import HandlerImports

with HandlerImports(__name__):  # README, Deploying to AWS
    from typing import Any

    from tsunagu import services
    from tsunagu.api.requests import FORM_URLENCODED, HttpRequest, read_form_fields
    from tsunagu.api.responses import (
        Response,
        error_response,
        html_response,
        json_response,
        preflight,
        redirect,
    )
    from tsunagu.errors import TsunaguError
    from tsunagu.leads.capture import CaptureResult, RequestContext, capture_submission, open_form
    from tsunagu.observability import HTTP_API, logger, metrics, observed
    from tsunagu.settings import get_settings

THANK_YOU_PAGE = (
    "<!doctype html><html lang=ja><meta charset=utf-8>"
    "<title>ありがとうございました / Thank you</title>"
    "<h1>ありがとうございました / Thank you</h1>"
    "<p>ご入力いただいた内容を受け付けました。<br>Your details have been received.</p>"
)


@observed(correlation_id_path=HTTP_API)
def handler(event: dict[str, Any], context: Any) -> Response:
    settings = get_settings()
    store = services.lead_repository(settings)
    cors: dict[str, str] = {}
    browser_post = False
    try:
        request = HttpRequest.from_http_api_event(event)
        browser_post = request.media_type == FORM_URLENCODED and request.accepts_html()
        origin = request.header("origin")
        form = open_form(request.path_parameters.get("form_id", ""), origin, store=store)
        if origin is not None:
            cors = {"access-control-allow-origin": origin, "vary": "origin"}
        if request.method == "OPTIONS":
            return preflight(origin) if origin else {"statusCode": 204, "body": ""}
        result = capture_submission(
            form,
            read_form_fields(request, settings.max_form_body_bytes),
            RequestContext(
                origin=origin,
                source_ip=request.source_ip,
                user_agent=request.header("user-agent"),
                referrer=request.header("referer"),
            ),
            store=store,
            clock=services.clock(settings),
            limits=settings.submission_limits,
        )
    except TsunaguError as error:
        metrics.add_metric(name="SubmissionRejected", unit="Count", value=1)
        logger.info("submission refused", extra={"reason": error.message})
        return error_response(error, as_html=browser_post, headers=cors)
    return _accepted(result, browser_post=browser_post, cors=cors)


def _accepted(result: CaptureResult, *, browser_post: bool, cors: dict[str, str]) -> Response:
    outcome = "LeadCreated" if result.created else "LeadUpdated"
    metrics.add_metric(name=outcome if result.stored else "HoneypotFilled", unit="Count", value=1)
    if browser_post:
        if result.thank_you_url:
            return redirect(result.thank_you_url, cors)
        return html_response(201, THANK_YOU_PAGE, cors)
    body: dict[str, Any] = {"lead_id": result.lead_id}
    if result.ignored_fields:
        body["ignored_fields"] = result.ignored_fields
    headers = {**cors, "idempotent-replayed": "true"} if result.replayed else cors
    # 201 whether the address was a lead or not: the public form tells no caller who is one
    return json_response(201, body, headers)
