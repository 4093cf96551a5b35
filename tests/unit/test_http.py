"""Reading HTTP API events and mapping domain errors to responses."""

from __future__ import annotations

import base64
import json

import pytest

from tsunagu.api.requests import HttpRequest, read_form_fields
from tsunagu.api.responses import (
    CODE_BY_ERROR,
    JAPANESE_BY_CODE,
    error_response,
    header_uri,
    redirect,
    status_for,
)
from tsunagu.errors import (
    ConcurrentUpdate,
    FieldError,
    MalformedRequest,
    MissingSegment,
    NotFound,
    PayloadTooLarge,
    TsunaguError,
    UnsupportedMediaType,
    ValidationFailed,
)


def request(body: bytes, content_type: str | None) -> HttpRequest:
    headers = {"content-type": content_type} if content_type else {}
    return HttpRequest(method="POST", path="/forms/x/submissions", headers=headers, body=body)


def test_event_is_read_with_base64_body_and_lower_case_headers() -> None:
    event = {
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "isBase64Encoded": True,
        "body": base64.b64encode(b"email=a%40example.com").decode(),
        "pathParameters": {"form_id": "demo"},
        "requestContext": {"http": {"method": "POST", "path": "/f", "sourceIp": "192.0.2.1"}},
    }
    parsed = HttpRequest.from_http_api_event(event)
    assert parsed.body == b"email=a%40example.com"
    assert parsed.header("content-type") == "application/x-www-form-urlencoded"
    assert parsed.source_ip == "192.0.2.1"
    assert read_form_fields(parsed, 1024) == {"email": "a@example.com"}


def test_broken_base64_is_a_malformed_request() -> None:
    with pytest.raises(MalformedRequest):
        HttpRequest.from_http_api_event({"isBase64Encoded": True, "body": "***"})


@pytest.mark.parametrize(
    "body", ["ｅｍａｉｌ", "email=\u00e9"], ids=["full-width", "latin-1 letter"]
)
def test_base64_with_a_character_outside_ascii_is_a_malformed_request(body: str) -> None:
    with pytest.raises(MalformedRequest, match="not valid base64"):
        HttpRequest.from_http_api_event({"isBase64Encoded": True, "body": body})


def test_a_body_that_is_not_text_is_a_malformed_request() -> None:
    with pytest.raises(MalformedRequest, match="must be text"):
        HttpRequest.from_http_api_event({"body": {"email": "a@example.com"}})


def test_parts_given_as_null_are_read_as_absent() -> None:
    event = {
        "requestContext": None,
        "headers": None,
        "pathParameters": None,
        "queryStringParameters": None,
        "body": None,
        "rawPath": "/forms/demo/submissions",
    }
    parsed = HttpRequest.from_http_api_event(event)
    assert (parsed.method, parsed.path, parsed.source_ip) == (
        "GET",
        "/forms/demo/submissions",
        None,
    )
    assert (parsed.headers, parsed.path_parameters, parsed.body) == ({}, {}, b"")
    context = HttpRequest.from_http_api_event({"requestContext": {"http": None}})
    assert context.method == "GET"


def test_json_and_urlencoded_bodies() -> None:
    assert read_form_fields(request(b'{"email": "a@example.com"}', "application/json"), 1024) == {
        "email": "a@example.com"
    }
    fields = read_form_fields(
        request(
            b"consent=off&consent=on&name=%E5%A4%AA%E9%83%8E",
            "application/x-www-form-urlencoded; charset=UTF-8",
        ),
        1024,
    )
    assert fields == {"consent": "on", "name": "太郎"}


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"x" * 2048, "application/json", PayloadTooLarge),
        (b"email=a", "text/plain", UnsupportedMediaType),
        (b"email=a", None, UnsupportedMediaType),
        (b"--boundary", "multipart/form-data; boundary=boundary", UnsupportedMediaType),
        (b'{"email": ', "application/json", MalformedRequest),
        (b'["a@example.com"]', "application/json", MalformedRequest),
        (b'{"email": NaN}', "application/json", MalformedRequest),
        ("email=山田".encode("shift_jis"), "application/x-www-form-urlencoded", MalformedRequest),
        (json.dumps({"x" * 65: 1}).encode(), "application/json", MalformedRequest),
        # An escaped lone surrogate is valid JSON and not text: it must not reach the domain
        # (it crashed the request hash with a 500).
        (b'{"email": "a@example.com", "name": "\\udc80"}', "application/json", MalformedRequest),
        (b'{"email": "a@example.com", "\\ud800": "x"}', "application/json", MalformedRequest),
    ],
)
def test_unreadable_bodies_are_refused(body: bytes, content_type: str | None, error: type) -> None:
    with pytest.raises(error):
        read_form_fields(request(body, content_type), 1024)


def test_errors_map_to_statuses_in_one_place() -> None:
    assert status_for(NotFound("x")) == 404
    failed = ValidationFailed([FieldError("email", "is required")])
    response = error_response(failed)
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["errors"] == [{"field": "email", "message": "is required"}]


def test_a_field_problem_with_a_code_gives_it_and_its_params_beside_the_words() -> None:
    # Given one problem with a code (a client says it in its user's language) and one without
    coded = FieldError("encoding", "not cp932", "not_in_encoding", {"encoding": "cp932"})
    failed = ValidationFailed([coded, FieldError("email", "is required")])

    problems = json.loads(error_response(failed)["body"])["errors"]

    # Then the coded one carries both; the other reads as every problem always has
    assert problems == [
        {
            "field": "encoding",
            "message": "not cp932",
            "code": "not_in_encoding",
            "params": {"encoding": "cp932"},
        },
        {"field": "email", "message": "is required"},
    ]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("no lead with the address a@example.jp"), "not_found"),
        (MissingSegment("warm"), "missing_segment"),
        (ConcurrentUpdate("segment 'warm' is at version 3 now: reload it"), "concurrent_update"),
        (ValidationFailed([FieldError("filter", "'x' is not NAME=VALUE")]), "validation_failed"),
    ],
)
def test_an_error_says_its_kind_as_a_code_beside_its_words(error: TsunaguError, code: str) -> None:
    # Given a refusal whose words are English (the console shows them in Japanese too)
    # When it becomes a response
    body = json.loads(error_response(error)["body"])
    # Then its kind comes as a code that stays when the words change, and the words once each
    assert body["code"] == code
    assert body["message"] == error.message


def test_html_errors_escape_what_the_user_sent() -> None:
    failed = ValidationFailed([FieldError("<b>name</b>", "<script>alert(1)</script>")])
    page = error_response(failed, as_html=True)["body"]
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_a_link_on_an_idn_host_is_put_in_a_header_in_idna() -> None:
    assert header_uri("https://例え.jp/パス?q=1") == "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=1"
    # A capital letter in the host, a port and user info are kept where they were
    assert header_uri("https://Bücher.example:8443/") == "https://xn--bcher-kva.example:8443/"
    assert header_uri("https://u@Bücher.example/") == "https://u@xn--bcher-kva.example/"
    assert header_uri("https://www.example.com/a?b=c#d") == "https://www.example.com/a?b=c#d"


def test_every_error_code_is_said_in_japanese_on_an_html_page() -> None:
    # A plain form post reads the page: each kind of refusal has its Japanese words
    assert set(JAPANESE_BY_CODE) == {*CODE_BY_ERROR.values(), "refused"}
    page = error_response(NotFound("there is no form with id 'x'"), as_html=True)["body"]
    assert JAPANESE_BY_CODE["not_found"] in page and "there is no form" in page


def test_a_redirect_to_a_thank_you_page_beyond_ascii_is_an_ascii_header() -> None:
    response = redirect("https://www.example.jp/お礼/?from=資料請求")
    assert response["headers"]["location"] == (
        "https://www.example.jp/%E3%81%8A%E7%A4%BC/?from=%E8%B3%87%E6%96%99%E8%AB%8B%E6%B1%82"
    )
