"""The events API Gateway sends the admin API's function, for tests that call it directly."""

from __future__ import annotations

import json
from typing import Any

from tsunagu.commands.access import Role


def event(
    method: str,
    path: str,
    *,
    role: Role | None = Role.ADMIN,
    email: str = "marketer@example.com",
    body: Any = None,
    query: dict[str, str] | None = None,
    source_ip: str = "198.51.100.7",
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """What API Gateway passes after the JWT authorizer: claims as strings, a list as ``[a]``."""
    claims = {"sub": f"user-{email}", "email": email, "email_verified": "true", "token_use": "id"}
    if role is not None:
        claims["cognito:groups"] = f"[{role.value}]"
    result: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": source_ip},
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
        },
        "isBase64Encoded": False,
    }
    if raw_body is not None:
        result["body"] = raw_body
    elif body is not None:
        result["body"] = json.dumps(body)
    if query:
        result["queryStringParameters"] = query
    return result
