"""The console on the local runtime: ``/console`` serves the built app (console/dist), as
CloudFront serves it from S3 in AWS, with ``/console/config.json`` telling it where the admin
API and the sign-in are; ``/_local/cognito`` is the sign-in endpoint the browser calls.

In AWS the browser calls Cognito's own endpoint (``cognito-idp.<region>.amazonaws.com``). Here
Cognito is moto, on another port: ``/_local/cognito`` passes the calls a sign-in makes
(InitiateAuth, RespondToAuthChallenge) and those a signed-in user makes for their own two-step
sign-in (GetUser, AssociateSoftwareToken, VerifySoftwareToken, SetUserMFAPreference: each
authorised by the user's own access token or sign-in session, as in AWS) to it - and nothing
else, so the browser reaches no other part of the local AWS through it.
"""

from __future__ import annotations

import json
import mimetypes
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from tsunagu_local.template import TemplateError

LocalPage = Callable[[Request], Response]

PREFIX = "/console"
SIGN_IN_CALLS = frozenset(
    {
        # A sign-in with the password, and a renewal with the refresh token
        "AWSCognitoIdentityProviderService.InitiateAuth",
        "AWSCognitoIdentityProviderService.RespondToAuthChallenge",
        # A user's own TOTP: set up (at sign-in, or later from the console's settings), shown,
        # turned on and off
        "AWSCognitoIdentityProviderService.GetUser",
        "AWSCognitoIdentityProviderService.AssociateSoftwareToken",
        "AWSCognitoIdentityProviderService.VerifySoftwareToken",
        "AWSCognitoIdentityProviderService.SetUserMFAPreference",
    }
)


Headers = dict[str, str]
HeadersFor = Callable[[str], Headers]
"""The headers a response for a path under /console gets."""


def distribution_headers(resources: Mapping[str, Any], connect_src: str) -> HeadersFor:
    """The headers CloudFront sends with each path of the console in AWS, read from the
    template's distribution (each cache behaviour's path pattern, first match, else the default
    behaviour) and its response headers policies: one source, so the local console runs under
    the policies the deployed one does. Only connect-src differs: ``connect_src`` names what the
    browser calls here (the API's own origin, and moto for a large list's upload)."""
    distributions = [
        props["DistributionConfig"]
        for props in _properties_of(resources, "AWS::CloudFront::Distribution")
    ]
    if len(distributions) != 1:
        raise TemplateError("the console needs the template's one CloudFront distribution")
    (config,) = distributions
    default = _policy_headers(resources, config["DefaultCacheBehavior"], connect_src)
    patterned = [
        (behaviour["PathPattern"], _policy_headers(resources, behaviour, connect_src))
        for behaviour in config.get("CacheBehaviors", [])
    ]

    def headers_for(path: str) -> Headers:
        # CloudFront's patterns: case-sensitive, "*" any characters ("/" too), "?" one.
        matched = (headers for pattern, headers in patterned if fnmatchcase(path, pattern))
        return next(matched, default)

    return headers_for


def _properties_of(resources: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in resources.values() if r["Type"] == kind]


def _policy_headers(
    resources: Mapping[str, Any], behaviour: Mapping[str, Any], connect_src: str
) -> Headers:
    """A cache behaviour's response headers policy's security headers, as sent here: no HSTS
    (this runtime speaks plain HTTP, where browsers ignore it)."""
    reference = behaviour.get("ResponseHeadersPolicyId")
    if not (isinstance(reference, dict) and reference.get("Ref") in resources):
        raise TemplateError(f"a console behaviour's headers policy is not a Ref: {reference!r}")
    policy = resources[reference["Ref"]]["Properties"]["ResponseHeadersPolicyConfig"]
    config = policy["SecurityHeadersConfig"]
    headers: Headers = {}
    if "ContentSecurityPolicy" in config:
        written = config["ContentSecurityPolicy"]["ContentSecurityPolicy"]
        headers["content-security-policy"] = _local_policy(written, connect_src)
    if "ContentTypeOptions" in config:
        headers["x-content-type-options"] = "nosniff"
    if "FrameOptions" in config:
        headers["x-frame-options"] = config["FrameOptions"]["FrameOption"]
    if "ReferrerPolicy" in config:
        headers["referrer-policy"] = config["ReferrerPolicy"]["ReferrerPolicy"]
    return headers


def _local_policy(written: Any, connect_src: str) -> str:
    """The template's CSP (a string, or a !Sub of one) with connect-src as this runtime needs;
    whatever else the template substitutes would be an AWS value with no local meaning."""
    if isinstance(written, dict) and "Fn::Sub" in written:
        written = written["Fn::Sub"]
        written = written[0] if isinstance(written, list) else written
    if not isinstance(written, str):
        raise TemplateError(f"the console's CSP is not a string or a !Sub of one: {written!r}")
    directives = [" ".join(part.split()) for part in written.split(";") if part.strip()]
    local = [
        f"connect-src {connect_src}" if directive.split()[0] == "connect-src" else directive
        for directive in directives
    ]
    policy = "; ".join(local)
    if "${" in policy:
        raise TemplateError(f"the console's CSP substitutes outside connect-src: {policy}")
    return policy


MISSING_BUILD = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Console not built</title>"
    "<h1>The console is not built</h1><p>Run <code>make up</code> (it builds the console with "
    "npm), or <code>make console</code>.</p></html>"
)


def console_page(dist: Path, headers_for: HeadersFor) -> LocalPage:
    """Files of the built console; the app itself for ``/console`` and ``/console/``, each with
    the headers CloudFront would send (``distribution_headers``)."""
    root = dist.resolve()

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
            headers={**headers_for(request.path), "cache-control": caching},
        )

    return serve


def config_page(api_url: str, client_id: str, region: str) -> LocalPage:
    body = json.dumps(
        {
            "api_url": api_url,
            # No custom domain here: the website's code names the local API too
            "public_url": api_url,
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
