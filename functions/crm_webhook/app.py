"""POST /crm/leads — a CRM (SFA) reports a lead's status, owner, deal and its own record id;
POST /crm/deals — it reports a deal (amount, stage, won or lost, close date) and its leads.

The body is signed: ``x-tsunagu-timestamp`` (Unix seconds) and ``x-tsunagu-signature``
(``v1=<hex HMAC-SHA256 of "<timestamp>." + body>``, the key in the CRM secret). A bad or stale
signature is 401, a replayed request or one from a CRM record other than the lead's own 409, a
malformed body 400/415/422, an unknown lead 404 - and none of them changes anything. Which side
wins each field is the configured merge policy; what the policy kept is returned as conflicts,
never dropped silently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tsunagu import services
from tsunagu.api.requests import HttpRequest
from tsunagu.api.responses import Response, error_response, json_response
from tsunagu.errors import PayloadTooLarge, TsunaguError, UnsupportedMediaType
from tsunagu.observability import HTTP_API, logger, metrics, observed
from tsunagu.qualification.crm import parse_crm_update, verify_signature
from tsunagu.qualification.crm_sync import apply_crm_update
from tsunagu.qualification.deals import apply_crm_deal, parse_crm_deal
from tsunagu.settings import get_settings

MAX_BODY_BYTES = 16 * 1024


@observed(correlation_id_path=HTTP_API)
def handler(event: dict[str, Any], context: Any) -> Response:
    settings = get_settings()
    try:
        request = HttpRequest.from_http_api_event(event)
        if len(request.body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
        if request.media_type != "application/json":
            raise UnsupportedMediaType("send the update as application/json")
        clock = services.clock(settings)
        verified = verify_signature(
            services.crm_signing_key(settings),
            request.header("x-tsunagu-timestamp") or "",
            request.body,
            request.header("x-tsunagu-signature") or "",
            # Real time, not the domain's clock: the CRM signs on its own clock, and a local
            # runtime running simulated time must not refuse (or admit) requests by it.
            datetime.now(UTC),
        )
        body: dict[str, Any]
        if request.path.endswith("/deals"):
            deal = apply_crm_deal(
                parse_crm_deal(request.body),
                verified,
                store=services.crm_repository(settings),
                now=clock.now(),
            )
            body = deal.as_body()
        else:
            update = apply_crm_update(
                parse_crm_update(request.body),
                verified,
                policy=services.qualification_repository(settings).config().crm_merge,
                store=services.crm_repository(settings),
                now=clock.now(),
            )
            body = update.as_body()
    except TsunaguError as error:
        metrics.add_metric(name="CrmUpdateRejected", unit="Count", value=1)
        logger.info("CRM update refused", extra={"reason": error.message})
        return error_response(error)
    metrics.add_metric(name="CrmUpdateApplied", unit="Count", value=1)
    logger.info("CRM update applied", extra=body)
    return json_response(200, body)
