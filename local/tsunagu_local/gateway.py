"""The template's HttpApi routes served on 127.0.0.1 as API Gateway HTTP API (payload 2.0).

Routes come from the translated AWS::ApiGatewayV2::Api's OpenAPI body, so a route added to the
template is served here with no change to this file.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from tsunagu.clock import Clock, SystemClock
from tsunagu_local.jwt_authorizer import JwtAuthorizer, Unauthorized
from tsunagu_local.lambdas import FunctionError, FunctionRegistry
from tsunagu_local.template import Stack

log = logging.getLogger("tsunagu.local.api")

# API Gateway's own limit on a request payload.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_INTEGRATION_TARGET = re.compile(r"\$\{(\w+)\.Arn\}")
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|x-www-form-urlencoded)|.*\+(json|xml))$"
)
LocalPage = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    """Upper-case HTTP method, or ANY."""
    path: str
    function_logical_id: str
    pattern: re.Pattern[str]
    literal_segments: int
    authorizer: JwtAuthorizer | None = None
    """The route's JWT authorizer: no token, no call."""

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def _compile(path: str) -> tuple[re.Pattern[str], int]:
    regex, literals = "", 0
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            regex += f"/(?P<{segment[1:-2]}>.+)"
        elif segment.startswith("{") and segment.endswith("}"):
            regex += f"/(?P<{segment[1:-1]}>[^/]+)"
        else:
            regex += "/" + re.escape(segment)
            literals += 1
    return re.compile(f"^{regex or '/'}$"), literals


def routes_from(stack: Stack, authorizers: dict[str, JwtAuthorizer] | None = None) -> list[Route]:
    """The routes, each with its authorizer (``authorizers`` by security scheme name)."""
    routes: list[Route] = []
    for api in stack.of_type("AWS::ApiGatewayV2::Api").values():
        for path, operations in api["Properties"].get("Body", {}).get("paths", {}).items():
            for method, operation in operations.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                uri = integration.get("uri", {})
                uri_text = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)
                target = _INTEGRATION_TARGET.search(str(uri_text))
                if target is None:
                    continue
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                pattern, literals = _compile(path)
                schemes = [name for entry in operation.get("security", []) for name in entry]
                authorizer = next(
                    (authorizers[n] for n in schemes if authorizers and n in authorizers), None
                )
                if schemes and authorizer is None:
                    raise ValueError(f"{verb} {path}: no authorizer {schemes} here")
                routes.append(Route(verb, path, target.group(1), pattern, literals, authorizer))
    # API Gateway picks the most specific route: more literal segments first, ANY last.
    return sorted(routes, key=lambda r: (-r.literal_segments, r.method == "ANY", r.path))


class HttpApiGateway:
    def __init__(
        self,
        routes: list[Route],
        functions: FunctionRegistry,
        local_pages: dict[str, LocalPage] | None = None,
        clock: Clock | None = None,
        local_folders: dict[str, LocalPage] | None = None,
    ) -> None:
        self.routes = routes
        self.functions = functions
        self.clock = clock or SystemClock()
        # The same dict the runtime fills after start-up (an empty dict is falsy: no `or {}`).
        self.local_pages = local_pages if local_pages is not None else {}
        # Pages under a path (``/console`` serves ``/console/assets/...`` too).
        self.local_folders = local_folders if local_folders is not None else {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        page = self.local_pages.get(request.path)
        if page is not None:
            return page(request)
        for folder, folder_page in self.local_folders.items():
            if request.path == folder or request.path.startswith(folder + "/"):
                return folder_page(request)
        if (request.content_length or 0) > MAX_PAYLOAD_BYTES:
            return _json(413, {"message": "Request Entity Too Large"})
        matched = self._match(request.method, request.path)
        if matched is None:
            return _json(404, {"message": "Not Found"})
        route, path_parameters = matched
        event = self._event(request, route, path_parameters)
        if route.authorizer is not None:
            try:
                claims = route.authorizer.claims(event["headers"])
            except Unauthorized as refusal:
                answer = _json(401, {"message": "Unauthorized"})
                if str(refusal):
                    answer.headers["www-authenticate"] = f"Bearer {refusal}"
                return answer
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        try:
            result = self.functions.get(route.function_logical_id).invoke(event)
        except FunctionError:
            return _json(500, {"message": "Internal Server Error"})
        return _response(result)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method in (method.upper(), "ANY"):
                return route, found.groupdict()
        return None

    def _event(self, request: Request, route: Route, path_parameters: dict[str, str]) -> Any:
        body = request.get_data(cache=False)
        media_type = (request.mimetype or "").lower()
        is_text = not media_type or bool(_TEXT_TYPES.match(media_type))
        try:
            text_body = body.decode("utf-8") if is_text else None
        except UnicodeDecodeError:
            text_body = None
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            if key == "cookie":
                continue
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        query: dict[str, str] = {}
        for name, values in request.args.lists():
            query[name] = ",".join(values)
        cookies = [c.strip() for c in request.headers.get("cookie", "").split(";") if c.strip()]
        now = self.clock.now().astimezone(UTC)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode("latin-1"),
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": request.host,
                "domainPrefix": request.host.split(".")[0],
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                    "sourceIp": request.remote_addr or "127.0.0.1",
                    "userAgent": request.headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex,
                "routeKey": route.route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": text_body is None and bool(body),
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if path_parameters:
            event["pathParameters"] = path_parameters
        if body:
            event["body"] = text_body if text_body is not None else base64.b64encode(body).decode()
        return event


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _response(result: Any) -> Response:
    """Map a handler's result back the way API Gateway does for payload format 2.0."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # No statusCode: API Gateway infers a 200 JSON response from whatever was returned.
        text = result if isinstance(result, str) else json.dumps(result)
        return Response(text, status=200, content_type="application/json")
    headers = Headers()
    for name, value in (result.get("headers") or {}).items():
        headers.add(name, str(value))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        headers.add("set-cookie", cookie)
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return Response(data, status=int(result["statusCode"]), headers=headers)
