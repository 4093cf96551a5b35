"""The console on the local runtime: ``/console`` serves the built app (console/dist), as
CloudFront serves it from S3 in AWS, with ``/console/config.json`` telling it where the admin
API and the sign-in are; ``/_local/cognito`` is the sign-in endpoint the browser calls.

In AWS the browser calls Cognito's own endpoint (``cognito-idp.<region>.amazonaws.com``). Here
Cognito is moto, on another port: ``/_local/cognito`` passes the two calls a sign-in makes
(InitiateAuth, RespondToAuthChallenge) to it - and nothing else, so the browser reaches no
other part of the local AWS through it.
"""

from __future__ import annotations

import json
import mimetypes
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from werkzeug.wrappers import Request, Response

LocalPage = Callable[[Request], Response]

PREFIX = "/console"
SIGN_IN_CALLS = frozenset(
    {
        "AWSCognitoIdentityProviderService.InitiateAuth",
        "AWSCognitoIdentityProviderService.RespondToAuthChallenge",
    }
)


def security_headers(storage_origin: str = "") -> dict[str, str]:
    """As the CloudFront response headers policy sets them in AWS (template.yaml). The console
    may connect to its own origin and to the storage a large list is uploaded to through a
    pre-signed URL: S3's bucket host in AWS, the runtime's moto server here."""
    connect = f"'self' {storage_origin}".strip()
    return {
        "content-security-policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; frame-src 'self'; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'; object-src 'none'"
        ),
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "x-frame-options": "DENY",
    }


SECURITY_HEADERS = security_headers()
MISSING_BUILD = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Console not built</title>"
    "<h1>The console is not built</h1><p>Run <code>make up</code> (it builds the console with "
    "npm), or <code>make console</code>.</p></html>"
)


def console_page(dist: Path, storage_origin: str = "") -> LocalPage:
    """Files of the built console; the app itself for ``/console`` and ``/console/``."""
    root = dist.resolve()
    headers = security_headers(storage_origin)

    def serve(request: Request) -> Response:
        relative = request.path.removeprefix(PREFIX).lstrip("/") or "index.html"
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            if not (root / "index.html").is_file():
                return Response(MISSING_BUILD, 503, content_type="text/html; charset=utf-8")
            return Response("Not Found", 404, content_type="text/plain")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "text/javascript"):
            kind += "; charset=utf-8"
        # Hashed assets never change; the app's page and config always may.
        immutable = "/assets/" in request.path
        caching = "public, max-age=31536000, immutable" if immutable else "no-cache"
        return Response(
            target.read_bytes(),
            content_type=kind,
            headers={**headers, "cache-control": caching},
        )

    return serve


def config_page(api_url: str, client_id: str, region: str) -> LocalPage:
    body = json.dumps(
        {
            "api_url": api_url,
            "cognito_url": f"{api_url}/_local/cognito",
            "client_id": client_id,
            "region": region,
        }
    )

    def serve(_: Request) -> Response:
        headers = {"cache-control": "no-cache"}
        return Response(body, content_type="application/json", headers=headers)

    return serve


def cognito_page(moto_url: str, region: str) -> LocalPage:
    """The browser's sign-in calls, passed to moto's Cognito as the region's endpoint."""

    def serve(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        if request.method != "POST" or target not in SIGN_IN_CALLS:
            body = json.dumps({"__type": "InvalidAction", "message": "only sign-in calls here"})
            return Response(body, 400, content_type="application/x-amz-json-1.1")
        forwarded = urllib.request.Request(  # noqa: S310 (moto's http://127.0.0.1 URL)
            moto_url,
            data=request.get_data(),
            method="POST",
            headers={
                "content-type": "application/x-amz-json-1.1",
                "x-amz-target": target,
                # moto tells the service and region from the credential scope (it does not
                # check the signature); an unsigned call would go to us-east-1.
                "authorization": (
                    f"AWS4-HMAC-SHA256 Credential=local/20260101/{region}/cognito-idp/"
                    "aws4_request, SignedHeaders=host, Signature=0"
                ),
            },
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=30) as answer:  # noqa: S310 (127.0.0.1)
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        return Response(payload, status, content_type="application/x-amz-json-1.1")

    return serve
