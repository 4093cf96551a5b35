"""E-mail normalisation: what people type becomes one canonical address."""

from __future__ import annotations

import pytest

from tsunagu.leads.email import (
    InvalidEmail,
    normalise_domain,
    normalise_email,
    stored_address_identity,
)
from tsunagu.leads.model import email_identity


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("taro@example.jp", "taro@example.jp"),
        ("  taro@example.jp\t", "taro@example.jp"),
        # A Japanese IME left in full-width mode.
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
        ("Taro.Yamada@EXAMPLE.JP", "Taro.Yamada@example.jp"),
        # An ideographic space and a zero-width space pasted from a document.
        ("\u3000taro@example.jp\u200b", "taro@example.jp"),
    ],
)
def test_typed_addresses_become_canonical(typed: str, stored: str) -> None:
    assert normalise_email(typed).address == stored


def test_identity_ignores_case_of_the_local_part() -> None:
    # Given the same person typing their address twice with different capitals
    first = normalise_email("Taro.Yamada@example.jp")
    second = normalise_email("taro.yamada@EXAMPLE.jp")
    # Then both are the same identity, while each keeps its sendable form
    assert first.identity_key == second.identity_key
    assert first.address != second.address


def test_internationalised_domain_is_stored_as_punycode() -> None:
    assert normalise_email("info@例え.jp").address == "info@xn--r8jz45g.jp"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "not-an-address",
        "two@@example.com",
        "no-domain@",
        "@example.com",
        "spaces in@example.com",
        "<script>@example.com",
        "a@" + "b" * 250 + ".com",
        "太郎@example.jp",  # a non-ASCII local part cannot be sent without SMTPUTF8
    ],
)
def test_invalid_addresses_are_refused(typed: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(typed)


@pytest.mark.parametrize(
    "typed",
    [
        "Taro.Yamada@EXAMPLE.JP",
        "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ",
        "info@例え.jp",
        "\u3000Sato@Example.com\u200b",
    ],
)
def test_a_stored_address_has_the_identity_its_typed_form_had(typed: str) -> None:
    # The import plans once per row and looks the address up again by its stored form
    stored = normalise_email(typed)
    assert stored_address_identity(stored.address) == email_identity(stored.identity_key)
    assert stored_address_identity(stored.address) == stored_address_identity(
        normalise_email(stored.address).address
    )


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("straße.example.com", "xn--strae-oqa.example.com"),  # not strasse (IDNA 2003)
        ("ελλάς.example.com", "xn--hxarsa0b.example.com"),  # the final sigma kept
        ("日本.example.jp", "xn--wgv71a.example.jp"),
        ("ＥＸＡＭＰＬＥ．ＪＰ", "example.jp"),
        ("Bücher.Example.COM", "xn--bcher-kva.example.com"),
        ("xn--wgv71a.example.jp", "xn--wgv71a.example.jp"),
    ],
)
def test_a_domain_typed_alone_is_stored_as_an_address_s_domain_is(typed: str, stored: str) -> None:
    assert normalise_domain(typed) == stored
    assert normalise_email(f"info@{typed}").domain == stored


@pytest.mark.parametrize("typed", ["", "localhost", "not a domain", "exam\x85ple.jp", "a@b.jp"])
def test_what_no_address_could_have_as_its_domain_is_refused(typed: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_domain(typed)
