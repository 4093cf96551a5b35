"""GET /o/{token}.gif — the open pixel. Always the 1x1 GIF; records only for a valid token."""

from __future__ import annotations

import base64
from typing import Any

from tsunagu import services
from tsunagu.api.requests import HttpRequest
from tsunagu.api.responses import Response
from tsunagu.observability import HTTP_API, logger, metrics, observed
from tsunagu.settings import get_settings
from tsunagu.tracking.mail_activity import LinkRequest, record_open

# The smallest transparent GIF (43 bytes).
PIXEL = base64.b64encode(
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
).decode()


@observed(correlation_id_path=HTTP_API)
def handler(event: dict[str, Any], context: Any) -> Response:
    try:
        settings = get_settings()
        request = HttpRequest.from_http_api_event(event)
        token = request.path_parameters.get("token", "").removesuffix(".gif")
        judgement = record_open(
            LinkRequest(token, request.method, request.headers, request.source_ip),
            signer=services.token_signer(settings),
            store=services.tracking_repository(settings),
            clock=services.clock(settings),
        )
        if judgement is not None:
            metrics.add_metric(
                name="AutomatedOpen" if judgement.automated else "HumanOpen", unit="Count", value=1
            )
    except Exception:
        # A mail must never show a broken image because recording failed; the error is logged
        # and alarmed on, and the open is lost rather than the reader's experience.
        logger.exception("open not recorded")
        metrics.add_metric(name="OpenNotRecorded", unit="Count", value=1)
    return {
        "statusCode": 200,
        "headers": {
            "content-type": "image/gif",
            "cache-control": "no-store, max-age=0",
        },
        "body": PIXEL,
        "isBase64Encoded": True,
    }
