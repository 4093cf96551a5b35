"""Identifiers sort by the time they were made, and within one millisecond by the order they
were made in (in one process), with their random part still unguessable."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

from tsunagu.ids import new_id, new_ulid

AT = datetime(2026, 12, 7, 9, 0, 0, 123_000, tzinfo=UTC)
# Crockford base32: 16 characters of the random part, 5 bits each
RANDOM_CHARS = 16
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def random_part(ulid: str) -> int:
    number = 0
    for char in ulid[-RANDOM_CHARS:]:
        number = number * 32 + ALPHABET.index(char)
    return number


def test_ids_made_in_one_millisecond_sort_in_the_order_they_were_made() -> None:
    # An audit entry and the refusal written after it, in one request's millisecond
    made = [new_id("audit", AT) for _ in range(1_000)]
    assert made == sorted(made) and len(set(made)) == len(made)


def test_an_id_of_a_later_millisecond_sorts_after_and_an_earlier_one_before() -> None:
    now = new_ulid(AT)
    assert new_ulid(AT + timedelta(milliseconds=1)) > now
    assert new_ulid(AT - timedelta(milliseconds=1)) < now
    assert len(now) == 26 and now[:10] == new_ulid(AT)[:10]


def test_the_next_id_of_a_millisecond_cannot_be_guessed_from_the_one_before() -> None:
    # A lead holding its own id does not learn the next lead's by adding one: each step is a
    # random number of up to 64 bits, and never the same twice in a thousand
    made = [random_part(new_ulid(AT + timedelta(seconds=1))) for _ in range(1_000)]
    steps = [after - before for before, after in itertools.pairwise(made)]
    assert all(step > 0 for step in steps) and len(set(steps)) == len(steps)
    assert max(steps) > 2**60


def test_ids_made_by_threads_at_one_millisecond_are_all_different() -> None:
    # The local runtime answers requests on threads
    made: list[str] = []

    def make() -> None:
        for _ in range(500):
            made.append(new_ulid(AT + timedelta(seconds=2)))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 2_000
