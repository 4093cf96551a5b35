"""The audit log on DynamoDB (moto, in-process): what a use case records lands in the table,
is listed newest first by date range across days, is kept only until the retention's TTL, and
an entry is never overwritten."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import AwsStack
from tests.support.leads import store_lead
from tsunagu import services
from tsunagu.commands import leads
from tsunagu.commands.access import Actor, Role
from tsunagu.commands.audit import AuditEntry
from tsunagu.errors import IdempotencyConflict
from tsunagu.leads.updates import LeadUpdate
from tsunagu.store.audit import AuditRepository

OPERATOR = Actor(user_id="local:tester", role=Role.ADMIN, via="cli")


def test_a_change_through_a_use_case_is_in_the_table_with_its_before_and_after(
    aws: AwsStack,
) -> None:
    settings = aws.settings()
    store_lead(aws, "aoki@example.jp")
    leads.update(
        services.lead_commands(settings), OPERATOR, "aoki@example.jp", LeadUpdate(stage="sql")
    )

    log = AuditRepository(settings)
    now = datetime.now(UTC)
    [entry] = log.entries(now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert (entry.actor, entry.operation, entry.outcome) == (OPERATOR, "leads.update", "done")
    assert (entry.before, entry.after) == ({"stage": "lead"}, {"stage": "sql"})


def test_entries_are_listed_newest_first_across_days_and_expire_after_the_retention(
    aws: AwsStack,
) -> None:
    settings = aws.settings()
    log = AuditRepository(settings)
    base = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
    for n, at in enumerate((base, base + timedelta(minutes=2), base + timedelta(days=2))):
        log.append(
            AuditEntry(f"aud_{n}", at.isoformat(), OPERATOR, "leads.suppress", "lead:x", "done")
        )
    listed = log.entries(base, base + timedelta(days=1))
    assert [e.entry_id for e in listed] == ["aud_1", "aud_0"]
    assert [e.entry_id for e in log.entries(base, base + timedelta(days=3))] == [
        "aud_2",
        "aud_1",
        "aud_0",
    ]
    item = next(iter(log._model.query("day#2026-12-01")))
    kept_until = base + timedelta(days=settings.audit_retention_days)
    assert item.expires_at == int(kept_until.timestamp())


def test_an_entry_is_never_overwritten(aws: AwsStack) -> None:
    log = AuditRepository(aws.settings())
    at = "2026-12-03T01:00:00+00:00"
    entry = AuditEntry("aud_1", at, OPERATOR, "leads.update", "lead:x", "done")
    log.append(entry)
    with pytest.raises(IdempotencyConflict):
        log.append(replace(entry, outcome="refused", detail="rewritten"))
    [kept] = log.entries(datetime(2026, 12, 3, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC))
    assert kept == entry
