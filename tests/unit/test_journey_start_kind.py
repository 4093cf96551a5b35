"""Which a journey start is - a lead's, entered in the call, or a segment's, which the admin API
runs in the background: one rule (tsunagu.commands.journeys.names_a_segment), read by the check
of what a start asks and by start_or_queue."""

from __future__ import annotations

import pytest

from tsunagu.commands.journeys import names_a_segment


@pytest.mark.parametrize(
    ("lead", "segment", "segment_start"),
    [
        (None, "stage=lead", True),
        ("taro@example.jp", None, False),
        # A lead given is a lead's start even when it is empty or beside a segment (both are
        # refused in the call): read as "none", the segment would run where a lead was asked
        ("", "stage=lead", False),
        ("  ", "stage=lead", False),
        ("taro@example.jp", "stage=lead", False),
        (None, None, False),
    ],
)
def test_a_start_is_a_segments_only_when_a_segment_is_named_and_no_lead(
    lead: str | None, segment: str | None, segment_start: bool
) -> None:
    assert names_a_segment(lead, segment) is segment_start
