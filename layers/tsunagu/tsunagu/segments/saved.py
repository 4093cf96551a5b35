"""A saved segment: a named filter people reuse — as a journey's entry trigger or branch
(``in_segment=<name>``), in ``journeys start --segment <name>``, for an export, and, marked
"exclude from marketing", as a global exclusion that every marketing send checks.

A segment may read other segments; saving one that would contain itself, or read a segment or
an import that does not exist, is refused, and so is deleting a segment something still reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.segments.filter import MAX_DEPTH, MAX_FILTER, SEGMENT_NAME, Segment

MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class SavedSegment:
    name: str
    filter: str
    """As written by its author, checked by Segment.parse."""
    description: str
    exclude_from_marketing: bool
    """A global exclusion: no marketing mail goes to a lead it selects (``excluded``)."""
    by: str
    at: str
    version: int = 1
    """1 when created; each save adds one (a save over a version not read is refused)."""

    @property
    def segment(self) -> Segment:
        return Segment.parse(self.filter)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> SavedSegment:
        return cls(**{k: document[k] for k in cls.__dataclass_fields__ if k in document})


def parsed_filter(text: str, field: str = "filter") -> Segment:
    """The filter a person gives now (saved, tried, exported, a manual start), or
    ValidationFailed naming ``field`` and what is wrong - including a value no lead could hold,
    which a filter read back from storage still reads (Segment.parse's ``new``)."""
    if len(text) > MAX_FILTER:
        raise ValidationFailed([FieldError(field, f"at most {MAX_FILTER} characters")])
    try:
        return Segment.parse(text, new=True)
    except ValueError as error:
        raise ValidationFailed([FieldError(field, str(error))]) from None


def missing_segment(segment: Segment, exists: Callable[[str], bool]) -> str | None:
    """What is wrong when the filter reads a saved segment that does not exist (``no segment
    is named 'customer'``), else None. Every filter a person gives is checked so - a segment
    saved, tried or exported, a manual start, a journey's triggers and branches - because where
    it runs a missing segment is an error (MissingSegment): a typo must be said when it is
    written, not stop a journey at 3 a.m."""
    missing = sorted(name for name in segment.segments_named if not exists(name))
    return f"no segment is named {missing[0]!r}" if missing else None


def missing_import(segment: Segment, exists: Callable[[str], bool]) -> str | None:
    """What is wrong when the filter reads an import there is no record of (a pasted id one
    letter off), else None. ``import!=imp_<typo>`` would select every lead - an exclusion that
    excludes nobody, a journey entering everyone - so it is refused where it is written, as a
    missing segment is. Import records are never deleted, and one undone still selects the
    leads its undo kept (tsunagu.imports.apply.leads_of): a filter accepted once stays right."""
    missing = sorted(i for i in segment.imports_named if not exists(i))
    if not missing:
        return None
    return f"no import has the id {missing[0]!r} (`tsunagu imports list` shows them)"


def reading_saved(
    text: str,
    exists: Callable[[str], bool],
    field: str = "filter",
    *,
    import_exists: Callable[[str], bool],
) -> Segment:
    """The filter (``parsed_filter``), or ValidationFailed naming ``field`` when it reads a
    segment or an import that does not exist."""
    segment = parsed_filter(text, field)
    if problem := missing_segment(segment, exists) or missing_import(segment, import_exists):
        raise ValidationFailed([FieldError(field, problem)])
    return segment


def checked(
    name: str,
    filter_text: str,
    description: str,
    *,
    saved: Sequence[SavedSegment],
    import_exists: Callable[[str], bool],
) -> Segment:
    """The filter of a segment about to be saved under ``name``, once its name and text are
    checked, every segment and import it reads exists, and the segments as they would then be
    (``saved`` with this one changed) contain no cycle and nest no deeper than MAX_DEPTH - a
    change to one segment can push the segments that read it too deep."""
    problems = []
    if not SEGMENT_NAME.match(name):
        problems.append(FieldError("name", f"{name!r}: lower-case letters, digits, _ and -"))
    if len(description) > MAX_DESCRIPTION:
        problems.append(FieldError("description", f"at most {MAX_DESCRIPTION} characters"))
    if problems:
        raise ValidationFailed(problems)
    segment = parsed_filter(filter_text)
    reads = {s.name: _named(s.filter) for s in saved} | {name: segment.segments_named}
    if problem := missing_segment(segment, reads.__contains__) or missing_import(
        segment, import_exists
    ):
        raise ValidationFailed([FieldError("filter", problem)])
    for start in sorted(reads):
        if problem := _too_deep(start, reads, (start,)):
            raise ValidationFailed([FieldError("filter", problem)])
    return segment


def _named(filter_text: str) -> frozenset[str]:
    try:
        return Segment.parse(filter_text).segments_named
    except ValueError:
        return frozenset()  # a filter saved before a rule got stricter reads nothing here


def _too_deep(name: str, reads: Mapping[str, frozenset[str]], trail: tuple[str, ...]) -> str | None:
    for read in sorted(reads.get(name, frozenset())):
        if read in trail:
            return "a segment may not contain itself: " + " -> ".join((*trail, read))
        if len(trail) >= MAX_DEPTH:
            return f"segments would nest deeper than {MAX_DEPTH}: " + " -> ".join((*trail, read))
        if problem := _too_deep(read, reads, (*trail, read)):
            return problem
    return None
