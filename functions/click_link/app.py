"""GET /c/{token} — a tracked mail link: record the click, then 302 to the real destination.

The destination comes only from the signed token. A forged, altered or unknown token gets a
plain page and no redirect: no open redirect.
"""

from __future__ import annotations

from typing import Any

from tsunagu import services
from tsunagu.api.requests import HttpRequest
from tsunagu.api.responses import Response, error_response, header_uri
from tsunagu.errors import TsunaguError
from tsunagu.observability import HTTP_API, metrics, observed
from tsunagu.settings import get_settings
from tsunagu.tracking.mail_activity import LinkRequest, follow_link


@observed(correlation_id_path=HTTP_API)
def handler(event: dict[str, Any], context: Any) -> Response:
    settings = get_settings()
    try:
        request = HttpRequest.from_http_api_event(event)
        outcome = follow_link(
            LinkRequest(
                request.path_parameters.get("token", ""),
                request.method,
                request.headers,
                request.source_ip,
            ),
            signer=services.token_signer(settings),
            store=services.tracking_repository(settings),
            clock=services.clock(settings),
        )
    except TsunaguError as error:
        metrics.add_metric(name="InvalidLinkToken", unit="Count", value=1)
        return error_response(
            error, as_html=True, headers={"cache-control": "no-store"}, title="Link not valid"
        )
    automated = outcome.judgement.automated
    metrics.add_metric(name="AutomatedClick" if automated else "HumanClick", unit="Count", value=1)
    return {
        "statusCode": 302,
        "headers": {
            "location": header_uri(outcome.destination),
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
        },
        "body": "",
    }
