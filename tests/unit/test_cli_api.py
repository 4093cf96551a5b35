"""`tsunagu api`: a token goes only to https or to this machine's own runtime, and what the user
types is checked before anything is sent."""

from __future__ import annotations

import pytest

from tsunagu.cli_api import ApiCliError, _body, _checked, _pair


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://abc123.execute-api.ap-northeast-1.amazonaws.com/", "https://abc123.execute-api.ap-northeast-1.amazonaws.com"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("http://localhost:3000/", "http://localhost:3000"),
    ],
)  # fmt: skip
def test_the_token_goes_to_https_or_this_machine(url: str, expected: str) -> None:
    assert _checked(url) == expected


@pytest.mark.parametrize(
    "url",
    ["http://api.example.com", "file:///etc/passwd", "ftp://127.0.0.1/", "http://127.0.0.2.example.com"],
)  # fmt: skip
def test_any_other_address_is_refused(url: str) -> None:
    with pytest.raises(ApiCliError, match="neither https nor this machine's"):
        _checked(url)


def test_a_query_pair_and_a_body_are_checked_before_sending() -> None:
    assert _pair("stage=mql") == ("stage", "mql")
    assert _pair("q=a=b") == ("q", "a=b")
    with pytest.raises(ApiCliError, match="NAME=VALUE"):
        _pair("stage")
    assert _body('{"stage": "sql"}') == b'{"stage": "sql"}'
    assert _body(None) is None
    with pytest.raises(ApiCliError, match="not JSON"):
        _body("{stage: sql}")
