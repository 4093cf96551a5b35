"""The journey and the lead the journey unit tests start from (test_journey_gate,
test_journey_steps, test_journey_lifecycle)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tsunagu.journeys.model import Journey
from tsunagu.leads.model import Lead

NOW = datetime(2026, 12, 9, 1, 0, tzinfo=UTC)
"""Wednesday 9 December 2026, 10:00 in Tokyo."""
AT = "2026-11-20T09:00:00.000Z"


def journey(journey_id: str = "seminar_follow_up", **overrides: Any) -> Journey:
    """An active journey (seminar_follow_up unless told), with ``overrides``."""
    values: dict[str, Any] = {
        "journey_id": journey_id,
        "name": journey_id.replace("_", " "),
        "state_machine": journey_id.replace("_", "-"),
        "status": "active",
    }
    return Journey(**{**values, **overrides})


def lead(**overrides: Any) -> Lead:
    """A lead from the web form, with ``overrides``."""
    values: dict[str, Any] = {
        "lead_id": "lead_1",
        "email": "hanako@example.jp",
        "fields": {},
        "sources": ["web_form"],
        "visitor_ids": set(),
        "stage": "lead",
        "created_at": AT,
        "updated_at": AT,
    }
    return Lead(**{**values, **overrides})
