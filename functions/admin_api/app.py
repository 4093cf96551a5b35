"""ANY /admin/{proxy+} — the admin API (tsunagu.api.admin): the console's and the CLI's way in
with a signed-in user's token. API Gateway's JWT authorizer has verified the token."""

from __future__ import annotations

from typing import Any

from tsunagu.api import admin
from tsunagu.api.responses import Response
from tsunagu.observability import HTTP_API, observed
from tsunagu.settings import get_settings


@observed(correlation_id_path=HTTP_API)
def handler(event: dict[str, Any], context: Any) -> Response:
    return admin.handle(event, get_settings())
