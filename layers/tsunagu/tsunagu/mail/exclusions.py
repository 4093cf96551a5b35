"""Global exclusions (除外管理, seed 002): addresses and domains no marketing mail goes to
whatever they consented to - competitors, customers under contract that sales talks to, the
company's own staff. Every marketing send checks them at send time, as it checks suppression,
and a skipped send says ``excluded``. Transactional mail (a confirmation the person asked for)
is not marketing and still goes.

A domain excludes its subdomains too (``example.co.jp`` excludes ``mail.example.co.jp``), so a
public suffix (``co.jp``, ``ne.jp``, ``com.au``: a registry's, under which every company has its
domain) is refused: typed instead of ``rival.co.jp``, it would stop marketing mail to most
Japanese B2B leads. Entries are kept in one list per account, each with the list it belongs to
and why.

The lists are one stored item (tsunagu.store.mail), and DynamoDB refuses an item over 400 KB.
What bounds them is therefore bytes, not a count: an entry that would take the stored text past
MAX_LIST_BYTES is refused saying so. With a note of a few words an entry takes under 200 bytes
(some 2,000 fit); a 500-character note in Japanese takes 1.5 KB more (some 220 such fit).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.leads.email import InvalidEmail, normalise_email, pasted_domain

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

MAX_LIST_BYTES = 350_000
"""The most the stored entries may take, as UTF-8 JSON: DynamoDB's item limit is 400 KB
(409,600 bytes, the item's key and version included), and this keeps well under it."""
MAX_NOTE = 500
"""Characters in a note: the admin API's limit, and the CLI's (tsunagu exclusions add --note)."""
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
    if note is not None and len(note) > MAX_NOTE:
        raise ValidationFailed(
            [FieldError("note", f"at most {MAX_NOTE} characters (this one has {len(note):,})")]
        )
    try:
        kind, value = exclusion_value(text)
    except InvalidEmail as error:
        said = f": {error}" if "@" in _folded(text) else " is neither an address nor a domain"
        raise ValidationFailed([FieldError("value", f"{text!r}{said}")]) from None
    if kind == "domain" and _public_suffixes().is_public(value):
        raise ValidationFailed(
            [
                FieldError(
                    "value",
                    f"{text!r} is a public suffix: every company under it has its domain there "
                    f"(rival.{value}, example.{value}), and excluding it would exclude them all. "
                    f"Give the company's own domain, such as rival.{value}",
                )
            ]
        )
    return Exclusion(value, kind, list_name, note, by, at)


@cache
def _public_suffixes() -> PublicSuffixList:
    """The Public Suffix List's ICANN section, as the pinned package bundles it (no download):
    the registries' suffixes such as co.jp, tokyo.jp or com.au, not the private section's
    hosting names (github.io), under which no company's mail domain is. Parsed once, on the
    first exclusion added, so that sending functions never load it."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


def exclusion_value(text: str) -> tuple[Literal["address", "domain"], str]:
    """An address or a domain (with or without ``@``) as the leads' addresses are normalised
    (tsunagu.leads.email) - one rule for adding, removing and matching an entry: an address or
    domain typed as 日本.example.jp or straße.example.com is the punycode a lead's address holds
    (case folded only after it, as IDNA 2008 has it). InvalidEmail when it is neither."""
    typed = unicodedata.normalize("NFKC", text).strip().removeprefix("@")
    if "@" in typed:
        return "address", normalise_email(typed).address.casefold()
    # As segments, owner rules and the fit sheet take a domain (DNS's final dot too)
    return "domain", pasted_domain(typed)


def _folded(text: str) -> str:
    """An entry as an earlier rule took it, folded only: one no address may have now (a
    special-use domain such as ``staff.local``) can still be taken off as it is listed."""
    return unicodedata.normalize("NFKC", text).strip().casefold().removeprefix("@")


@dataclass(frozen=True)
class ExclusionList:
    entries: tuple[Exclusion, ...] = ()
    version: int = 0
    """Bumped by every change: a change made on a list read earlier is refused."""

    def excluding(self, address: str) -> Exclusion | None:
        """The entry that excludes ``address`` (its own, else its domain's or a parent's):
        a lead's address, normalised when it was stored as the entries are when added."""
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
        """The list with ``entry`` (in place of the one for its value, if any); refused when
        the stored list would pass MAX_LIST_BYTES."""
        kept = tuple(e for e in self.entries if e.value != entry.value)
        changed = ExclusionList((*kept, entry), self.version + 1)
        size = len(changed.stored().encode())
        if size > MAX_LIST_BYTES:
            raise ValidationFailed(
                [
                    FieldError(
                        "value",
                        f"the exclusions are full: with this entry they would take "
                        f"{size / 1000:,.1f} KB of the {MAX_LIST_BYTES // 1000} KB they may. "
                        "Remove entries no longer needed, shorten long notes, or exclude a "
                        "domain instead of its addresses one by one",
                    )
                ]
            )
        return changed

    def without(self, value: str) -> tuple[ExclusionList, Exclusion | None]:
        """The list without the entry ``value`` names: as it was typed when added
        (日本.example.jp) or as it is listed (xn--wgv71a.example.jp)."""
        try:
            named = exclusion_value(value)[1]
        except InvalidEmail:
            named = _folded(value)
        gone = next((e for e in self.entries if e.value == named), None)
        if gone is None:
            return self, None
        return ExclusionList(
            tuple(e for e in self.entries if e is not gone), self.version + 1
        ), gone

    def stored(self) -> str:
        """The entries as they are stored, and so measured against MAX_LIST_BYTES: one JSON
        array, compact, Japanese notes as UTF-8 rather than escaped (a third of the bytes)."""
        return json.dumps(
            [e.as_json() for e in self.entries], ensure_ascii=False, separators=(",", ":")
        )
