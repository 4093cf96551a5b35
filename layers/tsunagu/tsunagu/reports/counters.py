"""Keeping the counters: a batch of the events stream counted exactly once, and the counters of
a range of days rebuilt from the stored events.

Exactly once: every event that counts is marked in the same transaction as its increments, and
a batch first reads which of its events are marked already, so a redelivered batch (or the
same record twice in one batch) counts nothing more. Increments to the same counter row are
added up first, so a batch of a hundred events costs a few writes, not a hundred.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from tsunagu.clock import isoformat, parse_instant
from tsunagu.reports.counting import (
    DEALS_SUBJECT,
    FUNNEL_SUBJECT,
    Assignment,
    Counted,
    CountedDeal,
    CountedMail,
    CounterKey,
    FunnelLead,
    JourneyGoal,
    StoredEvent,
    add,
    count,
    deal_id_of,
    final_at,
    first_touch,
    is_final,
    membership_keys,
    needs_funnel,
    needs_mail,
)
from tsunagu.reports.figures import check_range

ATTEMPTS = 5
"""Batches that lose a race with another writer (a rebuild, a second consumer) read again."""
TRANSACTION_ITEMS = 100
"""DynamoDB's limit on the items of one TransactWriteItems."""


class Conflict(Exception):
    """Another writer counted one of the events, or changed one of the mails, meanwhile."""


@dataclass(frozen=True)
class Writes:
    """One transaction's worth of counting: the events it marks, the mails it creates or
    changes (each with the state it was read in: None for a new one) and the increments."""

    marks: Sequence[str]
    mails: Sequence[tuple[CountedMail | None, CountedMail]]
    increments: Mapping[CounterKey, Mapping[str, int]]
    assignments: Sequence[tuple[Assignment | None, Assignment]] = ()
    funnels: Sequence[tuple[FunnelLead | None, FunnelLead]] = ()
    deals: Sequence[tuple[CountedDeal | None, CountedDeal]] = ()


class CounterStore(Protocol):
    def counted(
        self,
        event_ids: Iterable[str],
        message_ids: Iterable[str],
        assignments: Iterable[tuple[str, str]] = (),
        funnel_leads: Iterable[str] = (),
        first_touch_leads: Iterable[str] = (),
        deal_ids: Iterable[str] = (),
    ) -> Known: ...

    def write(self, writes: Writes, at: datetime) -> None: ...


@dataclass
class Known:
    """What the counters hold of a batch's events: which are counted already, the counted mails
    they belong to, their leads' arms ((journey, lead) -> Assignment) and their leads as the
    funnel has them."""

    marked: set[str] = field(default_factory=set)
    mails: dict[str, CountedMail] = field(default_factory=dict)
    assignments: dict[tuple[str, str], Assignment] = field(default_factory=dict)
    funnels: dict[str, FunnelLead] = field(default_factory=dict)
    first_touches: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """For a lead the funnel has not seen: (created_at, its first channel), from the lead."""
    deals: dict[str, CountedDeal] = field(default_factory=dict)


class TooManyEvents(Exception):
    """A rebuild given a bound (``max_events``) found more events in its days than that; it
    wrote nothing."""

    def __init__(self, bound: int) -> None:
        super().__init__(f"more than {bound:,} events")
        self.bound = bound


class RebuildStore(Protocol):
    def events_between(self, first: str, last: str) -> Iterable[Mapping[str, Any]]: ...

    def counted(
        self,
        event_ids: Iterable[str],
        message_ids: Iterable[str],
        assignments: Iterable[tuple[str, str]] = (),
    ) -> Known: ...

    def replace_rows(
        self, first_day: str, last_day: str, rows: Mapping[CounterKey, Mapping[str, int]]
    ) -> int: ...

    def replace_mails(
        self, mails: Iterable[CountedMail], assignments: Iterable[Assignment] = ()
    ) -> None: ...


@dataclass
class BatchCount:
    """What a batch did: events counted, events already counted (redelivered), writes made."""

    counted: int = 0
    already: int = 0
    transactions: int = 0


def count_batch(
    images: Sequence[Mapping[str, Any] | None],
    *,
    store: CounterStore,
    time_zone: ZoneInfo,
    now: datetime,
    goals: Mapping[str, JourneyGoal] | None = None,
) -> BatchCount:
    """Count the final events among the stream images, each exactly once. ``goals``: each
    journey's goal, by journey (what ``converted`` counts)."""
    events = [
        e for e in (StoredEvent.from_image(i) for i in images if i) if e is not None and is_final(e)
    ]
    for _ in range(ATTEMPTS):
        try:
            return _count_once(events, store, time_zone, now, goals or {})
        except Conflict:
            continue  # what was written stays marked; the rest is read again
    raise Conflict(f"the counters kept changing under {len(events)} events")


@dataclass
class _Pending:
    marks: list[str] = field(default_factory=list)
    mails: dict[str, tuple[CountedMail | None, CountedMail]] = field(default_factory=dict)
    increments: dict[CounterKey, dict[str, int]] = field(default_factory=dict)
    assignments: dict[tuple[str, str], tuple[Assignment | None, Assignment]] = field(
        default_factory=dict
    )
    funnels: dict[str, tuple[FunnelLead | None, FunnelLead]] = field(default_factory=dict)
    deals: dict[str, tuple[CountedDeal | None, CountedDeal]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return (
            len(self.marks)
            + len(self.mails)
            + len(self.increments)
            + len(self.assignments)
            + len(self.funnels)
            + len(self.deals)
        )

    def size_with(self, counted: Counted, mail: CountedMail | None) -> int:
        """The transaction's items with this event's writes added."""
        new_keys = {k for k in counted.increments if k not in self.increments}
        new_mail = mail is not None and mail.message_id not in self.mails
        new_members = {_key(a) for a in counted.assignments} - set(self.assignments)
        lead = counted.funnel
        new_funnel = lead is not None and lead.lead_id not in self.funnels
        new_deal = counted.deal is not None and counted.deal.deal_id not in self.deals
        news = int(new_mail) + len(new_members) + int(new_funnel) + int(new_deal) + len(new_keys)
        return self.size + 1 + news

    def writes(self) -> Writes:
        return Writes(
            self.marks,
            list(self.mails.values()),
            self.increments,
            list(self.assignments.values()),
            list(self.funnels.values()),
            list(self.deals.values()),
        )


def _key(assignment: Assignment) -> tuple[str, str]:
    return assignment.journey_id, assignment.lead_id


def _count_once(
    events: Sequence[StoredEvent],
    store: CounterStore,
    time_zone: ZoneInfo,
    now: datetime,
    goals: Mapping[str, JourneyGoal],
) -> BatchCount:
    result = BatchCount()
    message_ids = (e.message_id for e in events if needs_mail(e) and e.message_id)
    leads_arms = {key for e in events for key in membership_keys(e, goals)}
    funnel_leads = {e.lead_id for e in events if needs_funnel(e) and e.lead_id}
    # A stage change of a lead the funnel has not seen reads the lead (a form's new lead
    # starts the funnel itself).
    touched = {e.lead_id for e in events if e.type == "stage_changed" and e.lead_id}
    deal_ids = {named for e in events if (named := deal_id_of(e))}
    known = store.counted(
        (e.event_id for e in events), message_ids, leads_arms, funnel_leads, touched, deal_ids
    )
    pending = _Pending()

    def flush() -> None:
        nonlocal pending
        if pending.marks:
            store.write(pending.writes(), now)
            result.transactions += 1
        pending = _Pending()

    for event in events:
        if event.event_id in known.marked:
            result.already += 1
            continue
        mail = known.mails.get(event.message_id) if event.message_id else None
        funnel = _funnel_of(event, known, time_zone)
        deal_id = deal_id_of(event)
        deal = known.deals.get(deal_id) if deal_id else None
        counted = count(event, mail, time_zone, known.assignments, funnel, goals, deal)
        if counted is None:
            continue
        changed = counted.mail if counted.mail is not None and counted.mail != mail else None
        if pending.size_with(counted, changed) > TRANSACTION_ITEMS:
            flush()
        pending.marks.append(event.event_id)
        add(pending.increments, counted)
        if changed is not None:
            before = pending.mails.get(changed.message_id, (mail, changed))[0]
            pending.mails[changed.message_id] = (before, changed)
            known.mails[changed.message_id] = changed
        for given in counted.assignments:
            stored = known.assignments.get(_key(given))
            was = pending.assignments.get(_key(given), (stored, given))[0]
            pending.assignments[_key(given)] = (was, given)
            known.assignments[_key(given)] = given
        lead = counted.funnel
        if lead is not None and lead != funnel:
            read = pending.funnels.get(lead.lead_id, (known.funnels.get(lead.lead_id), lead))[0]
            pending.funnels[lead.lead_id] = (read, lead)
            known.funnels[lead.lead_id] = lead
        if counted.deal is not None:
            kept = pending.deals.get(counted.deal.deal_id, (deal, counted.deal))[0]
            pending.deals[counted.deal.deal_id] = (kept, counted.deal)
            known.deals[counted.deal.deal_id] = counted.deal
        known.marked.add(event.event_id)
        result.counted += 1
    flush()
    return result


def _funnel_of(event: StoredEvent, known: Known, time_zone: ZoneInfo) -> FunnelLead | None:
    """The lead as the funnel has it; for a stage change of a lead it has not seen, built from
    the lead's creation and first channel."""
    if not needs_funnel(event) or event.lead_id is None:
        return None
    found = known.funnels.get(event.lead_id)
    if found is not None or event.type != "stage_changed":
        return found
    touch = known.first_touches.get(event.lead_id)
    if touch is None:
        return None  # the lead is gone (erased): nothing to count it for
    return first_touch(event.lead_id, touch[0], touch[1], time_zone)


# ------------------------------------------------------------------------------- rebuilding
@dataclass(frozen=True)
class Rebuilt:
    events: int
    counted: int
    rows: int
    rows_removed: int


INDEX_TRUSTED_AFTER = timedelta(days=1)
"""How long after a rebuild first finds no day recorded for the events_by_day index its days
are trusted to hold every event: by then the functions of the deploy before it, which stored
events without their day, have long stopped (a deploy's last invocations end within
minutes), and an event's instant never runs a day ahead of when it was stored."""


def events_indexed_from(now: datetime) -> str:
    """The first UTC day (YYYY-MM-DD) whose events are all in the events table's
    events_by_day index, as said by code that stores every event with its day (the rebuild
    running now): the day that starts after ``now`` plus INDEX_TRUSTED_AFTER. Events are never
    stored again with their day (each such write would reach the events stream's readers as a
    change, and be counted again), so the days before it are read by a Scan."""
    later = (now + INDEX_TRUSTED_AFTER).astimezone(UTC)
    return (later.date() + timedelta(days=1)).isoformat()


def day_bounds(first_day: date, last_day: date, time_zone: ZoneInfo) -> tuple[str, str]:
    """The instants (as stored) from the start of ``first_day`` to the end of ``last_day`` in
    the report's time zone."""
    start = datetime.combine(first_day, time.min, time_zone)
    end = datetime.combine(last_day + timedelta(days=1), time.min, time_zone)
    return isoformat(start), isoformat(end - timedelta(milliseconds=1))


def rebuild(
    first_day: date,
    last_day: date,
    *,
    store: RebuildStore,
    time_zone: ZoneInfo,
    goals: Mapping[str, JourneyGoal] | None = None,
    max_events: int | None = None,
    again_until: date | None = None,
) -> Rebuilt:
    """Count the days again from the stored events, as they stand now (a click re-judged since
    is counted as it is judged now), and replace those days' counter rows.

    Only the range is counted again: a mail's firsts and a lead's ``converted`` / ``mql`` from
    the days before and after it stand, as those days' rows do, and so do the arms a lead was
    given outside it (a mail of the range counts for the arms its lead had when it was sent,
    those the counted mail was sent with if the counters have it). An open in the range of a mail
    first opened earlier is not unique again, and a mail first opened after the range stays
    opened once (its unique stays on that later day, even if an open in the range now counts as
    a person's). Run it while the days are quiet (a day's events still arriving would be counted
    by the consumer and by the rebuild).

    ``max_events``: TooManyEvents, writing nothing, once the days are found to hold more events
    than that (what a caller with a deadline can count in time). The new rows are written
    before the days' stale ones are deleted (store.replace_rows), so a rebuild cut short leaves
    each row old or new, never a day with too few counts.

    ``again_until``: the last day whose firsts, touches and arms are counted again (default
    ``last_day``), for a rebuild of a long range a day at a time (tsunagu.reports.rebuild_jobs):
    each day counted as the first of what is left of the range, so that the days one after
    another count as the whole range at once would - a mail first opened on a later day of
    the range, before the job gets there, is first opened on this one if an open here now
    counts as a person's.
    """
    check_range(first_day, last_day)
    first, last = day_bounds(first_day, last_day, time_zone)
    until = max(again_until or last_day, last_day)
    # The days whose firsts, touches and arms are counted again (this rebuild's, and the rest
    # of a background rebuild's range)
    again_text = until.isoformat()
    again = (first, day_bounds(until, until, time_zone)[1])
    events = []
    for image in store.events_between(first, last):
        if (event := StoredEvent.from_image(image)) is not None:
            events.append(event)
            if max_events is not None and len(events) > max_events:
                raise TooManyEvents(max_events)
    events.sort(key=lambda e: (final_at(e), e.event_id))
    first_text, last_text = first_day.isoformat(), last_day.isoformat()
    goals = goals or {}
    # The mails sent in the range are read too: what they had after it stands.
    known = store.counted(
        [],
        {e.message_id for e in events if e.message_id and (needs_mail(e) or e.type == "mail_sent")},
        {key for e in events for key in membership_keys(e, goals)},
    )
    mails = {
        message_id: _outside(mail, first_text, again_text, again)
        for message_id, mail in known.mails.items()
    }
    # What a lead reached in the range, and the arms it was given in it, are counted again (an
    # arm given after the range stays, with its instant: what the range counts is no arm's).
    decided = {
        (str(e.properties.get("journey_id")), e.lead_id, str(e.properties.get("node")))
        for e in events
        if e.type == "journey_decision" and e.lead_id
    }
    assignments = {
        key: _outside_range(
            replace(a, reached=_days_outside(a.reached, first_text, again_text)),
            again,
            {node for journey, lead, node in decided if (journey, lead) == key},
        )
        for key, a in known.assignments.items()
    }
    rows: dict[CounterKey, dict[str, int]] = {}
    counted = 0
    for event in events:
        mail = mails.get(event.message_id) if event.message_id else None
        result = count(event, mail, time_zone, assignments, None, goals)
        if result is None:
            continue
        add(rows, result)
        counted += 1
        if result.mail is not None:
            kept = mails.get(result.mail.message_id)
            if event.type == "mail_sent" and kept is not None:
                # Sent in the range, it is counted as new: with the firsts it had after it
                mails[kept.message_id] = replace(
                    result.mail, firsts=kept.firsts, touched_at=kept.touched_at
                )
            else:
                mails[result.mail.message_id] = result.mail
        for given in result.assignments:
            assignments[_key(given)] = given
    # The funnel counts stages by the day each lead was created, and deals by the day they
    # closed, not by the day of the event, and no re-judgement changes either: their rows are
    # not rebuilt.
    rows = {k: m for k, m in rows.items() if k.subject not in (FUNNEL_SUBJECT, DEALS_SUBJECT)}
    removed = store.replace_rows(first_text, last_text, rows)
    store.replace_mails(mails.values(), assignments.values())
    return Rebuilt(events=len(events), counted=counted, rows=len(rows), rows_removed=removed)


def _days_outside(days: Mapping[str, str], first_day: str, last_day: str) -> dict[str, str]:
    """The entries (name -> day) dated before ``first_day`` or after ``last_day``."""
    return {name: day for name, day in days.items() if not first_day <= day <= last_day}


def _outside_range(
    member: Assignment, instants: tuple[str, str], decided_in_range: set[str]
) -> Assignment:
    """The lead in the journey without the arms given in the rebuilt days (their decisions give
    them again, and assign the lead again). An arm stored before the counters kept when it was
    given is taken out too if the lead was decided at its node in the days: that decision
    gives it again, with its instant."""
    start, end = (parse_instant(i) for i in instants)
    again = {
        node
        for node in member.arms
        if (node in member.given_at and start <= parse_instant(member.given_at[node]) <= end)
        or (node not in member.given_at and node in decided_in_range)
    }
    if not again:
        return member
    return replace(
        member,
        arms={n: arm for n, arm in member.arms.items() if n not in again},
        given_at={n: at for n, at in member.given_at.items() if n not in again},
        control=member.control - again,
    )


def _outside(
    mail: CountedMail, first_day: str, last_day: str, instants: tuple[str, str]
) -> CountedMail:
    """The mail with only the firsts it had outside the rebuilt days (those inside are counted
    again), and its touch if that was outside them too (one inside is found again, if a person's
    open or click in the range still says so)."""
    firsts = _days_outside(mail.firsts, first_day, last_day)
    touched = mail.touched_at
    if touched is not None:
        at = parse_instant(touched)
        if parse_instant(instants[0]) <= at <= parse_instant(instants[1]):
            touched = None
    return replace(mail, firsts=firsts, touched_at=touched)
