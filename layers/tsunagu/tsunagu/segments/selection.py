"""The leads a segment selects, each once, read the cheapest way that misses none.

How it scales (README, "Saved segments"):

- **What is built** (tens of thousands of leads, e.g. 50,000): where the filter names an import
  (``import=imp_...``), the candidates are that import's leads, read by id from what the import
  recorded; otherwise every lead, from one Scan of the leads table. Each candidate is checked
  against the rest of the filter in memory (the lead's own conditions first), and only then are
  its events, consent or imports read (one Query each) for the conditions that need them.
- Not from a lead-search index, though an equal stage, tag, owner or grade would read fewer
  leads there: see ``candidates``.
- **Millions of leads** (5,000,000): a Scan per evaluation would read gigabytes, and the event
  conditions a Query per lead. That scale needs the filter compiled to SQL over the analytics
  store (the leads exported to S3 beside the events, Athena in AWS): not built yet.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tsunagu.leads.model import Lead
from tsunagu.segments.filter import EQUAL, Facts, Segment

SAMPLE = 10
"""Leads a preview shows."""
IDS_PER_PAGE = 100
"""An import's leads read at a time (one BatchGetItem)."""

Cursor = dict[str, Any]
"""Where a read of the candidates stopped, as JSON: ``{"scan": <the Scan's last key>}`` or
``{"import_after": <the import's last lead read, its leads in id order>}``. A background start
keeps it to go on from there (tsunagu.journeys.start_jobs)."""


class Leads(Protocol):
    def lead_pages(self, after: dict[str, Any] | None = None) -> Iterator[tuple[list[Lead], Any]]:
        """Every lead, a page at a time, from the table's own key: each page with the key to
        read the pages after it (None after the last), and ``after`` such a key."""
        ...

    def leads_by_id(self, lead_ids: Sequence[str]) -> Iterable[Lead]: ...


def every_lead(leads: Leads) -> Iterator[Lead]:
    """Every lead, streamed a page at a time (an export of them all)."""
    for page, _ in leads.lead_pages():
        yield from page


def candidate_pages(
    segment: Segment, leads: Leads, facts: Facts, after: Cursor | None = None
) -> Iterator[tuple[list[Lead], Cursor | None]]:
    """The candidates (see ``candidates``) a page at a time, each with the cursor that reads
    the pages after it (None after the last); ``after``: such a cursor, to go on from there.
    A page is read only when the one before it has been used, so only a page is held."""
    imports = [c.value for c in segment.conditions if c.name == "import" and c.operator == EQUAL]
    if imports:
        # Every one must hold: the leads in all of the imports named, in a fixed order
        ids = sorted(frozenset.intersection(*(facts.imported(i) for i in imports)))
        # Gone on from after the last lead read, by id, not by a count of them: the list is
        # read again by each run, and an import still applying (or an undo) changes it between
        # runs - an offset would then skip a lead, or read one again
        last = (after or {}).get("import_after")
        begin = 0 if last is None else bisect.bisect_right(ids, str(last))
        for start in range(begin, len(ids), IDS_PER_PAGE):
            chunk = ids[start : start + IDS_PER_PAGE]
            page = list(leads.leads_by_id(chunk))
            more = start + IDS_PER_PAGE < len(ids)
            yield page, ({"import_after": chunk[-1]} if more else None)
        return
    for page, key in leads.lead_pages((after or {}).get("scan")):
        yield page, (None if key is None else {"scan": key})


def candidates(segment: Segment, leads: Leads, facts: Facts) -> Iterator[Lead]:
    """Every lead the segment could select, each once: the leads of the import it names, else
    every lead.

    Every selection is whole - a count, an export, a manual start, a day's trigger - so it must
    read each lead that stays selected exactly once, whatever is written while it reads. A
    lead-search index cannot promise that: every index (and the lead terms) sorts by the rank,
    which holds the score, and a lead scored while its pages are read (a page view routed
    meanwhile) moves across the cursor - ahead of it, it is never read; behind it, read twice.
    The leads table's own key never changes, so its Scan reads each lead once; an import's
    leads are read by their ids. The indexes serve what reads the top of a list (the lead
    list, the hot list), where a lead that moves has moved.

    The leads stream past, a page at a time: 50,000 leads are never held at once."""
    # Neither read gives a lead twice; a store that did (a retried page) must not enter it
    # twice or count it twice either.
    seen: set[str] = set()
    for page, _ in candidate_pages(segment, leads, facts):
        for lead in page:
            if lead.lead_id not in seen:
                seen.add(lead.lead_id)
                yield lead


def selected(segment: Segment, leads: Leads, facts: Facts, now: datetime) -> Iterator[Lead]:
    chosen = candidates(segment, leads, facts)
    return (lead for lead in chosen if segment.selects(lead, now, facts))


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[Lead]
    """The first SAMPLE leads it selects, highest score now first, each showing that score."""


def preview(segment: Segment, leads: Leads, facts: Facts, now: datetime) -> Preview:
    chosen = list(selected(segment, leads, facts, now))
    scores = facts.scores(now)
    # The highest scores now are among the highest stored ones: only those are read
    chosen.sort(key=lambda lead: -(lead.score or 0))
    ranked = sorted(
        scores.contenders(chosen, SAMPLE), key=lambda entry: (-entry[1], entry[0].email)
    )
    return Preview(len(chosen), [scores.as_of_now(lead) for lead, _ in ranked[:SAMPLE]])
