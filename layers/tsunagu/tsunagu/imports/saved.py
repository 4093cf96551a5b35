"""A mapping saved per source: the trade-show team's card scans come every month with the same
columns, and the person importing them should not map 「ご芳名」 to ``name`` and say what
「案内希望」 means each time. A saved mapping keeps what the file counts as (its source rank),
the columns' fields over the automatic mapping, what its consent column means, and the
encoding when detection should not be trusted; a plan names it and may still override any of
it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.imports.mapping import (
    FIELD,
    MAX_HEADER_CHARS,
    MAX_SAVED_HEADER_CHARS,
    oversized_mapping,
)
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.imports.reading import ENCODINGS, MAX_COLUMNS
from tsunagu.imports.refusals import refusal
from tsunagu.leads.merge import Channel

MAPPING_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
MAX_ANSWERS = 20
MAX_ANSWER_CHARS = 100
"""What a consent column's yes and no answers may be (as the admin API takes them)."""
IMPORT_SOURCES = ("import", "trade_show", "seminar", "web_form", "sales", "crm")
"""What a list may count as (never journey or tracking: those are Tsunagu's own)."""


@dataclass(frozen=True)
class SavedMapping:
    name: str
    source: str
    columns: dict[str, str] = field(default_factory=dict)
    """Header -> field (``-`` leaves the column out)."""
    consent_column: str | None = None
    consent_yes: list[str] = field(default_factory=list)
    consent_no: list[str] = field(default_factory=list)
    consent_topic: str = "marketing"
    encoding: str | None = None
    description: str = ""
    by: str = ""
    at: str = ""

    def options(self) -> ImportOptions:
        consent = None
        if self.consent_column:
            consent = ConsentColumn(
                self.consent_column,
                frozenset(self.consent_yes),
                frozenset(self.consent_no),
                self.consent_topic,
            )
        return ImportOptions(Channel(self.source), dict(self.columns), consent, self.encoding)

    @classmethod
    def of(
        cls, name: str, options: ImportOptions, *, encoding: str | None, description: str
    ) -> SavedMapping:
        """The mapping that gives these options back (``options()``)."""
        consent = options.consent
        return cls(
            name=name,
            source=options.source.value,
            columns=dict(options.mapping),
            consent_column=consent.header if consent else None,
            consent_yes=sorted(consent.yes) if consent else [],
            consent_no=sorted(consent.no) if consent else [],
            consent_topic=consent.topic if consent else "marketing",
            encoding=encoding,
            description=description,
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> SavedMapping:
        return cls(**{k: document[k] for k in cls.__dataclass_fields__ if k in document})


def checked_mapping(mapping: SavedMapping) -> SavedMapping:
    """The mapping, or ValidationFailed naming each thing wrong with it."""
    problems: list[FieldError] = []
    if not MAPPING_NAME.match(mapping.name):
        message = f"{mapping.name!r}: lower-case letters, digits, _ and -"
        problems.append(refusal("name", "invalid_mapping_name", message, name=mapping.name))
    if mapping.source not in IMPORT_SOURCES:
        known = ", ".join(IMPORT_SOURCES)
        message = f"{mapping.source!r}: {known}"
        problems.append(
            refusal("source", "unknown_source", message, source=mapping.source, known=known)
        )
    too_large = oversized_mapping(
        mapping.columns, most=MAX_COLUMNS, most_chars=MAX_SAVED_HEADER_CHARS
    )
    if too_large:
        problems.append(too_large)
    else:
        for header, target in mapping.columns.items():
            if not header.strip() or (target != "-" and not FIELD.match(target)):
                message = f"{header!r} -> {target!r} is not a field"
                problems.append(
                    refusal("columns", "not_a_field_name", message, header=header, name=target)
                )
    if mapping.consent_column and len(mapping.consent_column) > MAX_HEADER_CHARS:
        message = f"at most {MAX_HEADER_CHARS} characters"
        problems.append(refusal("consent_column", "too_long", message, most=MAX_HEADER_CHARS))
    for name, answers in (("consent_yes", mapping.consent_yes), ("consent_no", mapping.consent_no)):
        if len(answers) > MAX_ANSWERS or any(len(a) > MAX_ANSWER_CHARS for a in answers):
            limit = f"at most {MAX_ANSWERS} answers of {MAX_ANSWER_CHARS} characters"
            problems.append(
                refusal(name, "too_many_answers", limit, most=MAX_ANSWERS, chars=MAX_ANSWER_CHARS)
            )
    if mapping.consent_column and not mapping.consent_yes:
        message = "say which answers mean yes"
        problems.append(refusal("consent_yes", "consent_yes_missing", message))
    if mapping.encoding is not None and mapping.encoding not in (*ENCODINGS, "shift_jis"):
        known = ", ".join(ENCODINGS)
        message = f"{mapping.encoding!r}: {known}"
        problems.append(
            refusal("encoding", "unknown_encoding", message, encoding=mapping.encoding, known=known)
        )
    if len(mapping.description) > 500:
        problems.append(refusal("description", "too_long", "at most 500 characters", most=500))
    if problems:
        raise ValidationFailed(problems)
    return mapping


def with_overrides(
    saved: ImportOptions, given: ImportOptions, *, source_given: bool
) -> ImportOptions:
    """A saved mapping's options with what the person gave for this file on top: columns named
    again win, a consent meaning given replaces the saved one, a source given replaces it."""
    return ImportOptions(
        given.source if source_given else saved.source,
        {**saved.mapping, **given.mapping},
        given.consent if given.consent is not None else saved.consent,
        saved.saved_encoding,
    )
