"""Reading an API Gateway HTTP API (payload format 2.0) event into a plain request."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from tsunagu.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from tsunagu.forms import RawValue

JSON = "application/json"
TEXT = "text/plain"
FORM_URLENCODED = "application/x-www-form-urlencoded"
MAX_FIELD_NAME = 64


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    path_parameters: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    """Lower-cased names; repeated headers joined with commas, as API Gateway does."""
    body: bytes = b""
    source_ip: str | None = None

    @classmethod
    def from_http_api_event(cls, event: dict[str, Any]) -> HttpRequest:
        # A part given as null is read as absent: API Gateway leaves out what it has not, but
        # a test harness or another invoker may send null, and that is no reason for a 500
        http = (event.get("requestContext") or {}).get("http") or {}
        raw_body = event.get("body") or ""
        if not isinstance(raw_body, str):
            raise MalformedRequest("the request body must be text")
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw_body, validate=True)
            # binascii.Error (a ValueError) for a character outside base64, a plain ValueError
            # for one outside ASCII
            except ValueError:
                raise MalformedRequest("the request body is not valid base64") from None
        else:
            body = raw_body.encode("utf-8", "surrogatepass")
        return cls(
            method=http.get("method", "GET").upper(),
            path=http.get("path") or event.get("rawPath", "/"),
            path_parameters=dict(event.get("pathParameters") or {}),
            query=dict(event.get("queryStringParameters") or {}),
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            body=body,
            source_ip=http.get("sourceIp"),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    def accepts_html(self) -> bool:
        """A browser's own form post (not a script asking for JSON)."""
        accept = self.header("accept") or ""
        return "text/html" in accept and JSON not in accept


def read_form_fields(request: HttpRequest, max_bytes: int) -> dict[str, RawValue]:
    """The submitted fields, from JSON or a plain HTML form post; refuses anything else."""
    if len(request.body) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    media_type = request.media_type
    if media_type not in (JSON, FORM_URLENCODED):
        raise UnsupportedMediaType(
            f"send the form as {JSON} or {FORM_URLENCODED}, not {media_type or 'no content type'}"
        )
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest(
            'the body is not UTF-8; add accept-charset="UTF-8" to the <form> tag'
        ) from None
    if media_type == JSON:
        return _json_fields(text)
    return _urlencoded_fields(text)


def read_json_object(
    request: HttpRequest, max_bytes: int, media_types: tuple[str, ...] = (JSON,)
) -> dict[str, Any]:
    """A JSON object body. ``text/plain`` may be allowed for beacons, which browsers send
    without a CORS preflight only as text."""
    if len(request.body) > max_bytes:
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    if request.media_type not in media_types:
        raise UnsupportedMediaType(
            f"send {' or '.join(media_types)}, not {request.media_type or 'no content type'}"
        )
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not UTF-8") from None
    return _json_object(text)


def _json_fields(text: str) -> dict[str, RawValue]:
    value = load_json_object(text, parse_float=_finite_float)
    _check_names(value)
    return value


def _finite_float(text: str) -> float:
    """A form value is stored as text: 1e309 would be stored as "inf"."""
    number = float(text)
    if not math.isfinite(number):
        raise MalformedRequest(f"the body is not valid JSON: {text[:40]} is out of range")
    return number


def _json_object(text: str) -> dict[str, Any]:
    return load_json_object(text)


def load_json_object(text: str, parse_float: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """A JSON object whose every name and string is text: JSON may escape a lone surrogate
    (``"\\udc80"``), which no UTF-8 store, hash or mail header can hold."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=parse_float)
    except json.JSONDecodeError as error:
        raise MalformedRequest(f"the body is not valid JSON: {error.msg} at {error.pos}") from None
    except (ValueError, RecursionError):  # a 5000-digit number; arrays nested 30000 deep
        raise MalformedRequest("the body is not JSON Tsunagu can read") from None
    if not isinstance(value, dict):
        raise MalformedRequest("the body must be a JSON object")
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedRequest(
            "the body escapes a lone surrogate (\\ud800-\\udfff), which is not text"
        ) from None
    return value


def _reject_constant(name: str) -> None:
    raise MalformedRequest(f"the body is not valid JSON: {name} is not a JSON value")


def _urlencoded_fields(text: str) -> dict[str, RawValue]:
    try:
        # errors="strict": a percent-encoded byte that is not UTF-8 (a Shift_JIS page's form)
        # would otherwise be kept as U+FFFD, the name or company lost without a word
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=200, errors="strict"
        )
    except UnicodeDecodeError:
        raise MalformedRequest(
            'a field is not UTF-8; add accept-charset="UTF-8" to the <form> tag'
        ) from None
    except ValueError as error:
        raise MalformedRequest(f"the form body cannot be read: {error}") from None
    fields: dict[str, RawValue] = {}
    for name, value in pairs:
        # A repeated name keeps its last value: the usual hidden "off" + checkbox "on" pattern.
        fields[name] = value
    _check_names(fields)
    return fields


def _check_names(fields: dict[str, Any]) -> None:
    for name in fields:
        if not name or len(name) > MAX_FIELD_NAME:
            raise MalformedRequest(f"field names must have 1 to {MAX_FIELD_NAME} characters")


_ONE_CLICK_PART = re.compile(rb'name="List-Unsubscribe"\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n')


def read_unsubscribe_form(request: HttpRequest, max_bytes: int = 8 * 1024) -> dict[str, list[str]]:
    """A form post to the unsubscribe link. RFC 8058 lets a mail client send the one-click
    POST as multipart as well as urlencoded; it is read as ``List-Unsubscribe=One-Click``."""
    if len(request.body) > max_bytes:
        raise MalformedRequest("the form is too large")
    if request.media_type == "multipart/form-data":
        if _ONE_CLICK_PART.search(request.body):
            return {"List-Unsubscribe": ["One-Click"]}
        raise UnsupportedMediaType("send application/x-www-form-urlencoded")
    if request.media_type not in ("application/x-www-form-urlencoded", ""):
        raise UnsupportedMediaType("send application/x-www-form-urlencoded")
    try:
        # errors="strict": a percent-encoded byte that is not UTF-8 would be read as U+FFFD, and
        # a box whose name is then no topic's would count as unticked - an opt-out
        return parse_qs(
            request.body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=50,
            errors="strict",
        )
    except UnicodeDecodeError:
        raise MalformedRequest("the form cannot be read: a field is not UTF-8") from None
    except ValueError:
        raise MalformedRequest("the form cannot be read") from None
