"""The report counters' table in memory, for tests of counting and of the reports read from it
(it refuses what DynamoDB would: a transaction over 100 items, an event marked twice)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tsunagu.reports.counters import Conflict, Known, Writes
from tsunagu.reports.counting import Assignment, CountedDeal, CountedMail, CounterKey, FunnelLead


class MemoryCounters:
    """The counters' table in memory; ``conflicts``: how many writes lose a race first."""

    def __init__(self, conflicts: int = 0) -> None:
        self.marked: set[str] = set()
        self.mails: dict[str, CountedMail] = {}
        self.rows_by_key: dict[CounterKey, dict[str, int]] = {}
        self.assignments: dict[tuple[str, str], Assignment] = {}
        self.funnels: dict[str, FunnelLead] = {}
        self.deals: dict[str, CountedDeal] = {}
        self.transactions: list[int] = []
        self.conflicts = conflicts

    def counted(
        self,
        event_ids: Iterable[str],
        message_ids: Iterable[str],
        assignments: Iterable[tuple[str, str]] = (),
        funnel_leads: Iterable[str] = (),
        first_touch_leads: Iterable[str] = (),
        deal_ids: Iterable[str] = (),
    ) -> Known:
        return Known(
            {e for e in event_ids if e in self.marked},
            {m: self.mails[m] for m in message_ids if m in self.mails},
            {k: self.assignments[k] for k in assignments if k in self.assignments},
            {lead: self.funnels[lead] for lead in funnel_leads if lead in self.funnels},
            deals={d: self.deals[d] for d in deal_ids if d in self.deals},
        )

    def write(self, writes: Writes, at: datetime) -> None:
        size = (
            len(writes.marks)
            + len(writes.mails)
            + len(writes.increments)
            + len(writes.assignments)
            + len(writes.funnels)
            + len(writes.deals)
        )
        assert size <= 100, size  # DynamoDB refuses a bigger transaction
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("another writer")
        assert not set(writes.marks) & self.marked
        self.marked |= set(writes.marks)
        for _, mail in writes.mails:
            self.mails[mail.message_id] = mail
        for _, given in writes.assignments:
            self.assignments[(given.journey_id, given.lead_id)] = given
        for _, lead in writes.funnels:
            self.funnels[lead.lead_id] = lead
        for _, deal in writes.deals:
            self.deals[deal.deal_id] = deal
        for key, metrics in writes.increments.items():
            row = self.rows_by_key.setdefault(key, {})
            for name, n in metrics.items():
                row[name] = row.get(name, 0) + n
        self.transactions.append(size)

    def rows(
        self, subject: str, first_day: str, last_day: str
    ) -> list[tuple[CounterKey, dict[str, int]]]:
        return [
            (key, dict(metrics))
            for key, metrics in sorted(self.rows_by_key.items())
            if key.subject == subject and first_day <= key.day <= last_day
        ]
