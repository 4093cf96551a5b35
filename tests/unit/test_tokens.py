"""Signed tracking tokens: no forgery, no tampering, no open redirect."""

from __future__ import annotations

import pytest

from tsunagu.tracking.tokens import InvalidToken, TokenKind, TokenSigner, TrackingToken

KEY = b"k" * 32
CLICK = TrackingToken(
    TokenKind.CLICK, "msg_1", "lead_1", 1_795_338_000, "https://www.example.com/pricing", "l1"
)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner({"k1": KEY}, "k1")


def test_a_signed_token_verifies_to_what_was_signed(signer: TokenSigner) -> None:
    assert signer.verify(signer.sign(CLICK)) == CLICK


def test_an_open_token_needs_no_destination(signer: TokenSigner) -> None:
    token = TrackingToken(TokenKind.OPEN, "msg_1", "lead_1", 1_795_338_000)
    assert signer.verify(signer.sign(token)) == token


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "//evil.example.net", "mailto:a@example.com", "/relative"]
)
def test_only_http_destinations_can_be_signed(signer: TokenSigner, url: str) -> None:
    with pytest.raises(ValueError):
        signer.sign(TrackingToken(TokenKind.CLICK, "m", "l", 0, url, "l1"))


def test_every_altered_character_is_detected(signer: TokenSigner) -> None:
    token = signer.sign(CLICK)
    for position in range(len(token)):
        if token[position] == ".":
            continue
        replacement = "A" if token[position] != "A" else "B"
        altered = token[:position] + replacement + token[position + 1 :]
        with pytest.raises(InvalidToken):
            signer.verify(altered)


def test_a_token_of_another_key_is_refused(signer: TokenSigner) -> None:
    other = TokenSigner({"k1": b"x" * 32}, "k1").sign(CLICK)
    with pytest.raises(InvalidToken):
        signer.verify(other)


def test_spliced_payloads_are_refused(signer: TokenSigner) -> None:
    # Given two genuine tokens for different leads, When one's payload gets the other's
    # signature, Then neither lead can be impersonated
    mine = signer.sign(CLICK).split(".")
    theirs = signer.sign(TrackingToken(TokenKind.CLICK, "msg_1", "lead_2", 0, CLICK.url, "l1"))
    spliced = ".".join([mine[0], theirs.split(".")[1], mine[2]])
    with pytest.raises(InvalidToken):
        signer.verify(spliced)


@pytest.mark.parametrize(
    "text", ["", "k1", "k1..", "nokey.abc.def", "k1.!!!.???", "x" * 5000, "k1.e30.AAAA"]
)
def test_garbage_is_refused(signer: TokenSigner, text: str) -> None:
    with pytest.raises(InvalidToken):
        signer.verify(text)


def test_rotation_keeps_old_links_working() -> None:
    old = TokenSigner({"k1": KEY}, "k1").sign(CLICK)
    rotated = TokenSigner({"k1": KEY, "k2": b"n" * 32}, "k2")
    assert rotated.verify(old) == CLICK
    assert rotated.sign(CLICK).startswith("k2.")


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenSigner({"k1": b"short"}, "k1")
