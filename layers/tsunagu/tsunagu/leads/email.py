"""E-mail addresses as people type them, made into one canonical form.

Japanese users often type an address with the IME still in full-width mode
(``ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ``); NFKC folds those to ASCII before anything else looks at it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from tsunagu.leads.model import email_identity

# Characters NFKC leaves alone that still arrive from copy and paste.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
MAX_ADDRESS_LENGTH = 254


class InvalidEmail(ValueError):
    """The text is not an address Tsunagu can store and send to."""


@dataclass(frozen=True)
class EmailAddress:
    address: str
    """As stored and used for sending: local part as typed, domain lower-cased (and punycode)."""

    @property
    def identity_key(self) -> str:
        """What makes two addresses the same person.

        RFC 5321 lets a local part be case-sensitive, but no mail provider a B2B lead uses treats
        it so, and people type ``Taro.Yamada@`` one day and ``taro.yamada@`` the next. Matching
        case-insensitively keeps one person one lead; the address is still sent to as typed.
        """
        return self.address.casefold()

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


def _as_typed(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).translate(_INVISIBLE).strip()


def normalise_email(raw: str) -> EmailAddress:
    text = _as_typed(raw)
    if not text:
        raise InvalidEmail("an e-mail address is required")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidEmail(f"an e-mail address has at most {MAX_ADDRESS_LENGTH} characters")
    # Imported on first use, not at the top: email_validator compiles large regular expressions
    # at import (about 19 ms), which functions that load this module but check no address would
    # pay for nothing. capture_form's first submission pays it instead of its import (README,
    # Deploying to AWS).
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from None
    # ascii_email carries an internationalised domain as punycode, which SES accepts.
    local_part, domain = (result.ascii_email or result.normalized).rsplit("@", 1)
    return EmailAddress(f"{local_part}@{domain.lower()}")


def normalise_domain(raw: str) -> str:
    """A domain typed on its own (an exclusion, a filter's ``domain=``) as ``normalise_email``
    stores an address's: the validator's own domain check (IDNA 2008 with UTS 46, which keeps
    ``ß`` and ``ς``: ``straße`` is ``xn--strae-oqa``, not ``strasse``), punycode, lower case -
    so it compares equal to the leads' addresses. InvalidEmail when no address could have it."""
    text = _as_typed(raw)
    if not text:
        raise InvalidEmail("a domain is required")
    from email_validator import EmailNotValidError
    from email_validator.syntax import validate_email_domain_name

    try:
        # What validate_email runs on the part after the @, with its defaults
        return validate_email_domain_name(text)["ascii_domain"].lower()
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from None


def pasted_domain(raw: str) -> str:
    """A domain as people paste it - as DNS writes it (``rival.example.jp.``) or from an address
    (``@rival.example.jp``) - as ``normalise_domain`` stores it: one final dot and a leading
    ``@`` are not part of the domain, and kept they would make a value no address holds.
    InvalidEmail when no address could have it."""
    return normalise_domain(
        unicodedata.normalize("NFKC", raw).strip().removeprefix("@").removesuffix(".")
    )


def stored_address_identity(address: str) -> str:
    """The identity of an address normalised already (a stored lead's, an import plan's row):
    checking it again would give the same address, at the validator's cost, for every row of a
    100,000-row list."""
    return email_identity(EmailAddress(address).identity_key)


def normalised_or_none(value: str | None) -> str | None:
    """A pydantic field validator for an optional address: normalised, or a ValueError that
    says what is wrong with it."""
    if value is None:
        return None
    try:
        return normalise_email(value).address
    except InvalidEmail as error:
        raise ValueError(str(error)) from None
