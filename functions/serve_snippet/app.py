"""GET /t.js — the tracking snippet a site adds with one tag:

<script async src="https://<api>/t.js" data-site="<site_id>"></script>
"""

from __future__ import annotations

from typing import Any

from tsunagu.api.responses import Response
from tsunagu.observability import observed
from tsunagu.tracking.snippet import snippet_source


@observed()
def handler(event: dict[str, Any], context: Any) -> Response:
    return {
        "statusCode": 200,
        "headers": {
            "content-type": "application/javascript; charset=utf-8",
            "cache-control": "public, max-age=3600",
            "x-content-type-options": "nosniff",
        },
        "body": snippet_source(),
    }
