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
    problems = []
    if not MAPPING_NAME.match(mapping.name):
        problems.append(
            FieldError("name", f"{mapping.name!r}: lower-case letters, digits, _ and -")
        )
    if mapping.source not in IMPORT_SOURCES:
        problems.append(FieldError("source", f"{mapping.source!r}: {', '.join(IMPORT_SOURCES)}"))
    too_large = oversized_mapping(
        mapping.columns, most=MAX_COLUMNS, most_chars=MAX_SAVED_HEADER_CHARS
    )
    if too_large:
        problems.append(FieldError("columns", too_large))
    else:
        for header, target in mapping.columns.items():
            if not header.strip() or (target != "-" and not FIELD.match(target)):
                problems.append(FieldError("columns", f"{header!r} -> {target!r} is not a field"))
    if mapping.consent_column and len(mapping.consent_column) > MAX_HEADER_CHARS:
        problems.append(FieldError("consent_column", f"at most {MAX_HEADER_CHARS} characters"))
    for name, answers in (("consent_yes", mapping.consent_yes), ("consent_no", mapping.consent_no)):
        if len(answers) > MAX_ANSWERS or any(len(a) > MAX_ANSWER_CHARS for a in answers):
            limit = f"at most {MAX_ANSWERS} answers of {MAX_ANSWER_CHARS} characters"
            problems.append(FieldError(name, limit))
    if mapping.consent_column and not mapping.consent_yes:
        problems.append(FieldError("consent_yes", "say which answers mean yes"))
    if mapping.encoding is not None and mapping.encoding not in (*ENCODINGS, "shift_jis"):
        problems.append(FieldError("encoding", f"{mapping.encoding!r}: {', '.join(ENCODINGS)}"))
    if len(mapping.description) > 500:
        problems.append(FieldError("description", "at most 500 characters"))
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
