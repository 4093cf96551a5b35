"""The audit log on DynamoDB (moto, in-process): what a use case records lands in the table,
is listed newest first by date range across days, is kept only until the retention's TTL, and
an entry is never overwritten."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.support.leads import store_lead
from tsunagu import services
from tsunagu.clock import FixedClock
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

    log = services.audit_log(settings)
    now = services.clock(settings).now()
    [entry] = log.entries(now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert (entry.actor, entry.operation, entry.outcome) == (OPERATOR, "leads.update", "done")
    assert (entry.before, entry.after) == ({"stage": "lead"}, {"stage": "sql"})


def test_entries_are_listed_newest_first_across_days_and_expire_after_the_retention(
    aws: AwsStack,
) -> None:
    settings = aws.settings()
    base = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
    log = AuditRepository(settings, FixedClock(base + timedelta(days=3)))
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


def test_a_range_reaching_far_past_or_future_reads_only_the_days_that_can_hold_entries(
    aws: AwsStack,
) -> None:
    # (since=0001-01-01 once made the log read every day since then: 739,000 Queries)
    now = datetime(2026, 12, 4, 10, tzinfo=UTC)
    log = AuditRepository(aws.settings(), FixedClock(now))
    log.append(AuditEntry("aud_now", now.isoformat(), OPERATOR, "leads.update", "lead:x", "done"))
    days_read: list[str] = []
    query = log._model.query

    def counted(day: str, *args: Any, **kwargs: Any) -> Any:
        days_read.append(day)
        return query(day, *args, **kwargs)

    log._model.query = counted  # type: ignore[method-assign]
    try:
        # (far enough to tell, near enough that the old loop ends: 8,000 days)
        listed = log.entries(now - timedelta(days=5000), now + timedelta(days=3000))
    finally:
        del log._model.query
    assert [e.entry_id for e in listed] == ["aud_now"]
    assert len(days_read) <= aws.settings().audit_retention_days + 3


def test_an_entry_is_never_overwritten(aws: AwsStack) -> None:
    log = AuditRepository(aws.settings(), FixedClock(datetime(2026, 12, 3, 2, tzinfo=UTC)))
    at = "2026-12-03T01:00:00+00:00"
    entry = AuditEntry("aud_1", at, OPERATOR, "leads.update", "lead:x", "done")
    log.append(entry)
    with pytest.raises(IdempotencyConflict):
        log.append(replace(entry, outcome="refused", detail="rewritten"))
    [kept] = log.entries(datetime(2026, 12, 3, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC))
    assert kept == entry
