"""The owner's MQL notification: what it says when there is little to say."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from tsunagu.clock import isoformat
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.handoff import JourneyNote, notification

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def lead(**fields: str) -> Lead:
    at = isoformat(NOW)
    return Lead(
        lead_id="lead_1",
        email="aoi.mori@example.jp",
        fields={k: FieldValue(v, Channel.WEB_FORM, at) for k, v in fields.items()},
        sources=[Channel.WEB_FORM.value],
        visitor_ids=set(),
        stage="mql",
        created_at=at,
        updated_at=at,
        tags=set(),
    )


def section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start:end]


def test_a_lead_with_nothing_to_grade_says_so_under_fit() -> None:
    # Given a lead whose form gave only a name (no title, department, size, industry, country)
    message = notification(lead(name="森 葵"), [], [], QualificationConfig(), NOW)
    # Then the owner reads why fit says nothing, not an empty heading
    fit = section(message.text, "Fit:")
    assert fit, message.text
    assert "no fit rule matched" in fit[0]


def test_a_graded_lead_lists_each_reason_under_fit() -> None:
    message = notification(
        lead(name="森 葵", job_title="部長", company_size="1000"),
        [],
        [],
        QualificationConfig(),
        NOW,
    )
    fit = section(message.text, "Fit:")
    assert fit and all("(" in line and ")" in line for line in fit), message.text
    assert "no fit rule matched" not in message.text


def test_a_journeys_note_comes_first_and_names_the_journey_not_an_mql() -> None:
    note = JourneyNote("pricing_hand_raise", "料金の問い合わせです。本日中にご連絡ください。")
    message = notification(
        lead(name="森 葵", company="例示株式会社"), [], [], QualificationConfig(), NOW, note
    )
    assert message.subject.startswith("[pricing_hand_raise] 森 葵 (例示株式会社)")
    assert message.text.splitlines()[0] == note.message
    assert "pricing_hand_raise" in message.text.splitlines()[2]
    assert "marketing-qualified" not in message.text
    # ... and the owner still reads why (the score) and who (fit), as for an MQL
    assert section(message.text, "Fit:")
    assert html.escape(note.message) in message.html
