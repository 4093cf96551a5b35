"""Responses, and the one place where domain errors become HTTP statuses."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from tsunagu.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    Forbidden,
    IdempotencyConflict,
    MalformedRequest,
    MissingSegment,
    NotFound,
    OriginNotAllowed,
    PayloadTooLarge,
    TooManyRequests,
    TsunaguError,
    Unauthenticated,
    UnsupportedMediaType,
    UpstreamRefused,
    ValidationFailed,
)

STATUS_BY_ERROR: dict[type[TsunaguError], int] = {
    MalformedRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    OriginNotAllowed: 403,
    NotFound: 404,
    AlreadyExists: 409,
    IdempotencyConflict: 409,
    ConcurrentUpdate: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    ValidationFailed: 422,
    TooManyRequests: 429,
    UpstreamRefused: 502,
}

CODE_BY_ERROR: dict[type[TsunaguError], str] = {
    MalformedRequest: "malformed_request",
    Unauthenticated: "unauthenticated",
    Forbidden: "forbidden",
    OriginNotAllowed: "origin_not_allowed",
    NotFound: "not_found",
    MissingSegment: "missing_segment",
    AlreadyExists: "already_exists",
    IdempotencyConflict: "idempotency_conflict",
    ConcurrentUpdate: "concurrent_update",
    PayloadTooLarge: "payload_too_large",
    UnsupportedMediaType: "unsupported_media_type",
    ValidationFailed: "validation_failed",
    TooManyRequests: "too_many_requests",
    UpstreamRefused: "upstream_refused",
}
"""What kind of refusal an error is, as the body's ``code``: a name that stays when the words
change, so a client (the console) says it in the user's language; ``message`` stays the
detail in English. A status alone does not tell a name taken from a record changed meanwhile."""

JAPANESE_BY_CODE: dict[str, str] = {
    "malformed_request": "送信内容を読み取れませんでした。",
    "unauthenticated": "サインインが必要です。",
    "forbidden": "この操作は許可されていません。",
    "origin_not_allowed": "このサイトからは、このフォームを送信できません。",
    "not_found": "フォームまたはリンクが見つかりませんでした。",
    "missing_segment": "指定されたセグメントが見つかりませんでした。",
    "already_exists": "すでに登録されています。",
    "idempotency_conflict": "同じ送信 ID で、別の内容がすでに送信されています。",
    "concurrent_update": "同時に別の更新がありました。もう一度お試しください。",
    "payload_too_large": "送信内容が大きすぎます。",
    "unsupported_media_type": "この形式の送信は受け付けていません。",
    "validation_failed": "入力内容に誤りがあります。次の項目をご確認ください。",
    "too_many_requests": "送信が多すぎます。しばらく待ってから、もう一度お試しください。",
    "upstream_refused": "連携先のサービスが受け付けませんでした。",
    "refused": "受け付けられませんでした。",
}
"""The first words of an HTML error page, by the error's code: a plain form post (no script)
is answered with a page a person reads, and a Japanese team's visitor reads Japanese first (as
the unsubscribe pages, tsunagu.mail.pages); the English detail follows."""

FORM_ERROR_TITLE = "送信できませんでした / The form could not be sent"

Response = dict[str, Any]


def preflight(origin: str, methods: str = "POST, OPTIONS") -> Response:
    """A CORS preflight answer for an origin already checked against its registration."""
    return {
        "statusCode": 204,
        "headers": {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": methods,
            "access-control-allow-headers": "content-type",
            "access-control-max-age": "600",
            "vary": "origin",
        },
        "body": "",
    }


def status_for(error: TsunaguError) -> int:
    for error_type in type(error).__mro__:
        if error_type in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_type]
    return 400


def code_for(error: TsunaguError) -> str:
    """The error's kind (CODE_BY_ERROR), by its nearest listed class; "refused" for a domain
    error of its own kind (a 400)."""
    for error_type in type(error).__mro__:
        if error_type in CODE_BY_ERROR:
            return CODE_BY_ERROR[error_type]
    return "refused"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, ensure_ascii=False),
    }


def html_response(status: int, page: str, headers: dict[str, str] | None = None) -> Response:
    return {
        "statusCode": status,
        "headers": {"content-type": "text/html; charset=utf-8", **(headers or {})},
        "body": page,
    }


URI_CHARACTERS = "!#$%&'()*+,/:;=?@[]~"
"""What a URI keeps as it is beside letters and digits (RFC 3986's reserved and unreserved, and
``%`` so that what is escaped already is not escaped again)."""


def header_uri(iri: str) -> str:
    """A link as an HTTP header carries it: a header is ASCII, and a destination in a mail or a
    form's thank-you page may not be (``https://www.example.com/セミナー/?name=佐藤 花子``).
    The host in IDNA, the rest percent-encoded as UTF-8 - what a browser sends when it follows
    the same link itself."""
    parts = urlsplit(iri)
    host = parts.hostname or ""
    if host and not host.isascii():
        # Rebuilt from its parts: ``hostname`` is lowercased, so it may not be found as written
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = host.encode("idna").decode("ascii")
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        parts = parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc)
    return quote(urlunsplit(parts), safe=URI_CHARACTERS)


def redirect(location: str, headers: dict[str, str] | None = None) -> Response:
    return {
        "statusCode": 303,
        "headers": {"location": header_uri(location), **(headers or {})},
        "body": "",
    }


def error_body(error: TsunaguError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code_for(error), "message": error.message}
    if isinstance(error, TooManyRequests):
        body["retry_after_seconds"] = error.retry_after_seconds
    if isinstance(error, ValidationFailed):
        body["errors"] = [e.as_json() for e in error.errors]
    if error.revision is not None:
        body["revision"] = error.revision
    return body


def error_response(
    error: TsunaguError,
    *,
    as_html: bool = False,
    headers: dict[str, str] | None = None,
    title: str = FORM_ERROR_TITLE,
) -> Response:
    status = status_for(error)
    if isinstance(error, TooManyRequests):
        headers = {**(headers or {}), "retry-after": str(error.retry_after_seconds)}
    if not as_html:
        return json_response(status, error_body(error), headers)
    items = (
        "".join(
            f"<li><b>{html.escape(e.field)}</b>: {html.escape(e.message)}</li>"
            for e in error.errors
        )
        if isinstance(error, ValidationFailed)
        else f"<li>{html.escape(error.message)}</li>"
    )
    japanese = JAPANESE_BY_CODE[code_for(error)]
    page = (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(japanese)}</p><ul lang=en>{items}</ul>"
    )
    return html_response(status, page, headers)
