"""The simple lead filter for manual entry (``tsunagu journeys start --segment``)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tsunagu.clock import isoformat
from tsunagu.journeys.segments import Condition, Segment
from tsunagu.leads.model import Lead

NOW = datetime(2026, 12, 9, 1, 0, tzinfo=UTC)


def lead(**overrides: Any) -> Lead:
    values: dict[str, Any] = {
        "lead_id": "lead_1",
        "email": "hanako@Sales.Example.JP",
        "fields": {},
        "sources": ["web_form", "seminar"],
        "visitor_ids": set(),
        "stage": "lead",
        "created_at": isoformat(NOW - timedelta(days=400)),
        "updated_at": isoformat(NOW - timedelta(days=10)),
        "last_activity_at": isoformat(NOW - timedelta(days=95)),
        "tags": {"seminar-2026-12", "interest:pricing"},
        "score": 72.5,
        "grade": "B",
        "crm_status": "Working",
    }
    return Lead(**{**values, **overrides})


# ---------------------------------------------------------------- parsing
def test_a_segment_is_parsed_into_its_conditions() -> None:
    segment = Segment.parse(" stage=lead , tag=seminar-2026-12,silent_days>=90,")
    assert segment.conditions == (
        Condition("stage", "=", "lead"),
        Condition("tag", "=", "seminar-2026-12"),
        Condition("silent_days", ">=", "90"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty segment"),
        (" , ,", "empty segment"),
        ("stage", "is not NAME=VALUE"),
        ("stage:lead", "is not NAME=VALUE"),
        ("colour=red", "unknown filter 'colour'"),
        ("stage>=3", "stage: use silent_days and score with >=N"),
        ("silent_days=90", "silent_days: use silent_days and score with >=N"),
        ("score=70", "score: use silent_days and score with >=N"),
        ("score>=high", "whole number"),
        ("silent_days>=ninety", "whole number"),
        ("silent_days>=-5", "whole number"),
        ("stage=lead,bogus=1", "unknown filter 'bogus'"),
    ],
)
def test_a_bad_segment_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Segment.parse(text)


# ---------------------------------------------------------------- each filter
@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("stage=lead", True),
        ("stage=mql", False),
        ("tag=seminar-2026-12", True),
        ("tag=seminar-2026-11", False),
        ("source=seminar", True),
        ("source=trade_show", False),
        ("domain=sales.example.jp", True),  # compared case-insensitively
        ("domain=SALES.EXAMPLE.JP", True),
        ("domain=example.jp", False),  # the whole domain, not a suffix
        ("silent_days>=90", True),
        ("silent_days>=95", True),  # exactly 95 days silent
        ("silent_days>=96", False),
        ("stage=lead,tag=interest:pricing,silent_days>=30", True),
        ("stage=lead,tag=nope", False),  # every condition must hold
        ("score>=70", True),
        ("score>=73", False),
        ("grade=b", True),  # compared case-insensitively
        ("grade=A", False),
        ("crm_status=working", True),
        ("crm_status=won", False),
    ],
)
def test_each_filter_selects(text: str, selected: bool) -> None:
    assert Segment.parse(text).selects(lead(), NOW) is selected


def test_a_lead_never_active_is_silent_since_it_was_created() -> None:
    never_active = lead(last_activity_at=None, created_at=isoformat(NOW - timedelta(days=120)))
    assert Segment.parse("silent_days>=120").selects(never_active, NOW)
    assert not Segment.parse("silent_days>=121").selects(never_active, NOW)


def _cli_segment_help() -> str:
    from tsunagu.cli import _parser

    parser = _parser()
    groups = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    journeys = groups.choices["journeys"]
    commands = next(a for a in journeys._actions if isinstance(a, argparse._SubParsersAction))
    start = commands.choices["start"]
    [segment] = [a for a in start._actions if "--segment" in a.option_strings]
    return str(segment.help)


def test_every_filter_the_cli_help_offers_is_accepted() -> None:
    examples = re.findall(r"([a-z_]+(?:=|>=)[\w:.-]+)", _cli_segment_help())
    assert examples, "the help names no example filters"
    refused = []
    for example in examples:
        try:
            Segment.parse(example)
        except ValueError as error:
            refused.append(f"{example}: {error}")
    assert refused == []


def test_a_lead_without_a_score_grade_or_crm_status_has_none_of_them() -> None:
    bare = lead(score=None, grade=None, crm_status=None)
    assert not Segment.parse("score>=1").selects(bare, NOW)
    assert Segment.parse("score>=0").selects(bare, NOW)
    assert not Segment.parse("grade=B").selects(bare, NOW)
    assert not Segment.parse("crm_status=working").selects(bare, NOW)


def test_the_values_a_filter_read_say_why_it_selected() -> None:
    segment = Segment.parse("tag=nope,score>=70,silent_days>=30,grade=B")
    assert segment.values(lead(), NOW) == {
        "tag": ["interest:pricing", "seminar-2026-12"],
        "score": 72.5,
        "silent_days": 95,
        "grade": "B",
    }
