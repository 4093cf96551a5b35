"""Changing a journey's record: read it, decide, and store the change only over the record as
read. Pause, resume, status, publication and settings all rewrite the one record; a change
stored over a newer one would undo what that one said (a pause answered 200, then lost).

The store refuses a write whose revision is not the stored one (ConcurrentUpdate). Where the
change is decided again from the record as it now is - a pause, a status, a publication to
record - ``rewrite`` reads it again and decides again; it gives up after a few rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tsunagu.errors import ConcurrentUpdate, NotFound
from tsunagu.journeys.model import Journey

ATTEMPTS = 3
"""Rounds of read, decide, write before ConcurrentUpdate reaches the caller."""


class JourneyRecords(Protocol):
    def get_journey(self, journey_id: str) -> Journey | None: ...

    def put_journey(self, journey: Journey, at: str) -> Journey:
        """Store the record if its revision is still the stored one (a new record: if there is
        none); ConcurrentUpdate, and nothing written, if someone stored it since."""
        ...


def rewrite(
    store: JourneyRecords,
    journey_id: str,
    change: Callable[[Journey], Journey],
    at: Callable[[], str],
    *,
    new: Journey | None = None,
) -> tuple[Journey, Journey]:
    """The record as read (the last time) and as stored after ``change``. ``change`` is asked
    again on each round, with the record as it is then: it may refuse (raise) on what it sees.
    With no record, ``change`` is given ``new`` (NotFound when there is none either)."""
    for attempt in range(ATTEMPTS):
        journey = store.get_journey(journey_id) or new
        if journey is None:
            raise NotFound(f"no journey {journey_id!r}")
        try:
            return journey, store.put_journey(change(journey), at())
        except ConcurrentUpdate:
            if attempt + 1 == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
