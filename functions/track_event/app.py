"""POST /t/events — batches of page views and custom events from the tracking snippet.

Beacons arrive as text/plain (no CORS preflight); JSON clients may preflight with
``OPTIONS /t/events?site=<site_id>``. A site's own server signs its posts with the site's
secret (``x-tsunagu-timestamp``, ``x-tsunagu-signature``: tsunagu.tracking.server_posts); a
wrong or stale signature is 401, a replayed one 409, and nothing of either is stored.
"""

from __future__ import annotations

from tsunagu import HandlerImports

with HandlerImports(__name__):  # README, Deploying to AWS
    from typing import Any

    from tsunagu import services
    from tsunagu.api.requests import JSON, TEXT, HttpRequest, read_json_object
    from tsunagu.api.responses import Response, error_response, json_response, preflight
    from tsunagu.errors import (
        FieldError,
        OriginNotAllowed,
        PayloadTooLarge,
        TsunaguError,
        ValidationFailed,
    )
    from tsunagu.observability import HTTP_API, logger, metrics, observed
    from tsunagu.settings import get_settings
    from tsunagu.signed_requests import SIGNATURE_HEADER, TIMESTAMP_HEADER
    from tsunagu.tracking.browser import MAX_EVENTS, BrowserContext, ingest_browser_events
    from tsunagu.tracking.judgement import prefetch_header
    from tsunagu.tracking.server_posts import SignedPost
    from tsunagu.tracking.stored_sites import is_site_id

MAX_BODY_BYTES = 64 * 1024


@observed(correlation_id_path=HTTP_API)
def handler(event: dict[str, Any], context: Any) -> Response:
    settings = get_settings()
    store = services.tracking_repository(settings)
    cors: dict[str, str] = {}
    try:
        request = HttpRequest.from_http_api_event(event)
        origin = request.header("origin")
        if request.method == "OPTIONS":
            return _preflight(request.query.get("site", ""), origin, store)
        body = read_json_object(request, MAX_BODY_BYTES, (JSON, TEXT))
        events = body.get("events")
        site_id = body.get("site_id")
        if not isinstance(site_id, str) or not isinstance(events, list):
            raise ValidationFailed(
                [FieldError("(body)", 'send {"site_id": "...", "events": [...]}')]
            )
        if len(events) > MAX_EVENTS:
            raise PayloadTooLarge(f"a batch has at most {MAX_EVENTS} events")
        timestamp, signature = request.header(TIMESTAMP_HEADER), request.header(SIGNATURE_HEADER)
        # Either header is an offer of proof: checked, never ignored when the other is missing.
        signed = (
            SignedPost(timestamp or "", signature or "", request.body)
            if timestamp is not None or signature is not None
            else None
        )
        result = ingest_browser_events(
            site_id,
            events,
            BrowserContext(
                origin,
                request.source_ip,
                request.header("user-agent"),
                prefetch_header(request.headers),
                signed,
            ),
            store=store,
            clock=services.clock(settings),
            site_signing_key=lambda: services.site_signing_key(settings),
        )
        if origin is not None:
            cors = {"access-control-allow-origin": origin, "vary": "origin"}
    except TsunaguError as error:
        logger.info("events refused", extra={"reason": error.message})
        return error_response(error)
    metrics.add_metric(name="BrowserEventsAccepted", unit="Count", value=result.accepted)
    if result.rejected:
        metrics.add_metric(name="BrowserEventsRejected", unit="Count", value=len(result.rejected))
    status = 200 if result.accepted else 422
    return json_response(status, {"accepted": result.accepted, "rejected": result.rejected}, cors)


def _preflight(site_id: str, origin: str | None, store: Any) -> Response:
    site = store.site(site_id) if is_site_id(site_id) else None
    if site is None or origin is None or not site.allows_origin(origin):
        return error_response(OriginNotAllowed("this origin is not registered for the site"))
    return preflight(origin)
