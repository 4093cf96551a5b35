"""The events_by_day index's keys: a day's events spread over its shards, every one read."""

from __future__ import annotations

from collections import Counter

from tsunagu.store.converters import EVENT_DAY_SHARDS, day_index_key, day_index_keys


def test_a_day_s_events_are_spread_over_every_shard_of_the_day_and_a_rebuild_reads_them_all() -> (
    None
):
    # Given a thousand events of one UTC day (late evening in Japan is the same UTC day)
    ids = [f"evt_01M96{n:021d}" for n in range(1_000)]
    keys = [day_index_key(event_id, "2026-12-06T14:59:59.999Z") for event_id in ids]

    # Then each lies under one of the day's keys, which a rebuild of the day reads every one of
    assert set(keys) <= set(day_index_keys("2026-12-06"))
    assert len(day_index_keys("2026-12-06")) == EVENT_DAY_SHARDS > 1
    # And no key takes much more than its share of the day's writes (a partition key's write
    # units are what the shards are for)
    shares = Counter(keys)
    assert len(shares) == EVENT_DAY_SHARDS
    assert max(shares.values()) < 2 * 1_000 / EVENT_DAY_SHARDS, shares


def test_an_event_s_key_is_the_same_in_every_process_and_names_its_utc_day() -> None:
    # crc32 of the id, not hash(): Python salts a str's hash per process, and the key is stored
    # (a known value, so a change of the rule shows here)
    assert day_index_key("evt_01JEXAMPLE0000000000000", "2026-12-06T23:00:00.000Z") == (
        "2026-12-06#1"
    )
    assert day_index_key("evt_x", "2026-12-07T00:00:00.000Z").startswith("2026-12-07#")
