"""Global exclusions (除外管理, seed 002): addresses and domains no marketing mail goes to
whatever they consented to - competitors, customers under contract that sales talks to, the
company's own staff. Every marketing send checks them at send time, as it checks suppression,
and a skipped send says ``excluded``. Transactional mail (a confirmation the person asked for)
is not marketing and still goes.

A domain excludes its subdomains too (``example.co.jp`` excludes ``mail.example.co.jp``).
Entries are kept in one list per account, each with the list it belongs to and why.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.leads.email import InvalidEmail, normalise_email

MAX_ENTRIES = 2_000
"""What one list item holds comfortably (DynamoDB's item limit is 400 KB)."""
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LIST = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class Exclusion:
    value: str
    """An address (``rival@example.com``) or a domain (``example.co.jp``), normalised."""
    kind: Literal["address", "domain"]
    list: str
    """Which list: ``competitors``, ``customers``, ``staff``, or any name people use."""
    note: str | None
    by: str
    at: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def exclusion_entry(text: str, list_name: str, note: str | None, by: str, at: str) -> Exclusion:
    """An entry from what a person typed: an address, or a domain (with or without ``@``);
    ValidationFailed naming ``value`` or ``list`` otherwise."""
    if not _LIST.match(list_name):
        raise ValidationFailed(
            [FieldError("list", f"{list_name!r}: lower-case letters, e.g. competitors")]
        )
    cleaned = unicodedata.normalize("NFKC", text).strip().casefold().removeprefix("@")
    if "@" in cleaned:
        try:
            return Exclusion(
                normalise_email(cleaned).address.casefold(), "address", list_name, note, by, at
            )
        except InvalidEmail as error:
            raise ValidationFailed([FieldError("value", f"{text!r}: {error}")]) from None
    try:
        domain = cleaned.encode("idna").decode("ascii") if not cleaned.isascii() else cleaned
    except UnicodeError:  # a character no domain can hold (U+0085, a lone surrogate)
        domain = ""
    if not _DOMAIN.match(domain):
        raise ValidationFailed(
            [FieldError("value", f"{text!r} is neither an address nor a domain")]
        )
    return Exclusion(domain, "domain", list_name, note, by, at)


@dataclass(frozen=True)
class ExclusionList:
    entries: tuple[Exclusion, ...] = ()
    version: int = 0
    """Bumped by every change: a change made on a list read earlier is refused."""

    def excluding(self, address: str) -> Exclusion | None:
        """The entry that excludes ``address`` (its own, else its domain's or a parent's)."""
        address = address.casefold()
        domain = address.rsplit("@", 1)[-1]
        for entry in self.entries:
            if entry.kind == "address" and entry.value == address:
                return entry
            if entry.kind == "domain" and (
                domain == entry.value or domain.endswith("." + entry.value)
            ):
                return entry
        return None

    def excluding_entry(self, value: str) -> Exclusion | None:
        """The entry for exactly this address or domain, if there is one."""
        return next((e for e in self.entries if e.value == value), None)

    def with_entry(self, entry: Exclusion) -> ExclusionList:
        kept = tuple(e for e in self.entries if e.value != entry.value)
        if len(kept) >= MAX_ENTRIES:
            raise ValidationFailed(
                [FieldError("value", f"the list holds at most {MAX_ENTRIES} entries")]
            )
        return ExclusionList((*kept, entry), self.version + 1)

    def without(self, value: str) -> tuple[ExclusionList, Exclusion | None]:
        value = unicodedata.normalize("NFKC", value).strip().casefold().removeprefix("@")
        gone = next((e for e in self.entries if e.value == value), None)
        if gone is None:
            return self, None
        return ExclusionList(
            tuple(e for e in self.entries if e is not gone), self.version + 1
        ), gone
