"""A saved segment: a named filter people reuse — as a journey's entry trigger or branch
(``in_segment=<name>``), in ``journeys start --segment <name>``, for an export, and, marked
"exclude from marketing", as a global exclusion that every marketing send checks.

A segment may read other segments; saving one that would contain itself, or read a segment that
does not exist, is refused, and so is deleting a segment something still reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.segments.filter import MAX_DEPTH, SEGMENT_NAME, Segment

MAX_DESCRIPTION = 500
MAX_FILTER = 1_000


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
    """The filter, or ValidationFailed naming ``field`` and what is wrong."""
    if len(text) > MAX_FILTER:
        raise ValidationFailed([FieldError(field, f"at most {MAX_FILTER} characters")])
    try:
        return Segment.parse(text)
    except ValueError as error:
        raise ValidationFailed([FieldError(field, str(error))]) from None


def checked(
    name: str,
    filter_text: str,
    description: str,
    *,
    lookup: Callable[[str], SavedSegment | None],
) -> Segment:
    """The filter of a segment about to be saved under ``name``, once its name, text and the
    segments it reads (each existing, none leading back to it) are checked."""
    problems = []
    if not SEGMENT_NAME.match(name):
        problems.append(FieldError("name", f"{name!r}: lower-case letters, digits, _ and -"))
    if len(description) > MAX_DESCRIPTION:
        problems.append(FieldError("description", f"at most {MAX_DESCRIPTION} characters"))
    if problems:
        raise ValidationFailed(problems)
    segment = parsed_filter(filter_text)
    if trail := _path_back(name, segment.segments_named, lookup, (name,)):
        raise ValidationFailed(
            [FieldError("filter", "a segment may not contain itself: " + " -> ".join(trail))]
        )
    return segment


def _path_back(
    name: str,
    reads: Iterable[str],
    lookup: Callable[[str], SavedSegment | None],
    trail: tuple[str, ...],
) -> tuple[str, ...]:
    for read in sorted(reads):
        if read == name:
            return (*trail, read)
        found = lookup(read)
        if found is None:
            raise ValidationFailed([FieldError("filter", f"no segment is named {read!r}")])
        if len(trail) > MAX_DEPTH:
            raise ValidationFailed(
                [
                    FieldError(
                        "filter", f"segments nest deeper than {MAX_DEPTH}: {' -> '.join(trail)}"
                    )
                ]
            )
        if back := _path_back(name, found.segment.segments_named, lookup, (*trail, read)):
            return back
    return ()
