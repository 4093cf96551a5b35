"""The leads a segment selects, read the cheapest way the filter allows.

How it scales (README, "Saved segments"):

- **What is built** (tens of thousands of leads, e.g. 50,000): where the filter names an import
  (``import=imp_...``), the candidates are that import's leads, read by id from what the import
  recorded; else, where it names an equal stage, tag, owner or grade, or a score band, they come
  from that lead-search index (a Query a page at a time, tsunagu.store.lead_search); otherwise
  from one Scan of the leads. Each candidate is checked against the rest of the filter in
  memory, and only then are its events, consent or imports read (one Query each) for the
  conditions that need them.
- Tags and words are indexed from the leads' stream (the lead terms), a second or so behind a
  change, in AWS as here. An import's leads are found by ``import=`` the moment the import has
  applied, tagged or not: that is why it goes first.
- **Millions of leads** (5,000,000): a Scan per evaluation would read gigabytes, and the event
  conditions a Query per lead. That scale needs the filter compiled to SQL over the analytics
  store (the leads exported to S3 beside the events, Athena in AWS): not built yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from tsunagu.leads.model import Lead
from tsunagu.leads.search import MAX_PAGE_SIZE, LeadPage, LeadQuery
from tsunagu.segments.filter import EQUAL, Facts, Segment

SAMPLE = 10
"""Leads a preview shows."""


class Leads(Protocol):
    def search(self, query: LeadQuery) -> LeadPage: ...

    def all_leads(self) -> Iterable[Lead]: ...

    def leads_by_id(self, lead_ids: Sequence[str]) -> Iterable[Lead]: ...


def candidates(segment: Segment, leads: Leads, facts: Facts, now: datetime) -> Iterator[Lead]:
    """Every lead the segment could select: the leads of the import it names, else from an index
    where it names one (a score band only as far as the stored scores bound the scores now),
    else all."""
    imports = [c.value for c in segment.conditions if c.name == "import" and c.operator == EQUAL]
    if imports:
        # Every one must hold: the leads in all of the imports named.
        ids = frozenset.intersection(*(facts.imported(import_id) for import_id in imports))
        yield from leads.leads_by_id(sorted(ids))
        return
    try:
        query = LeadQuery(**segment.index_filters(facts.scores(now)), limit=MAX_PAGE_SIZE)
    except ValidationError:
        query = None  # e.g. a tag no lead can have: the scan finds nobody, as it should
    if query is None or query == LeadQuery(limit=MAX_PAGE_SIZE):
        yield from leads.all_leads()
        return
    while True:
        page = leads.search(query)
        yield from page.leads
        if page.next_cursor is None:
            return
        query = query.model_copy(update={"cursor": page.next_cursor})


def selected(segment: Segment, leads: Leads, facts: Facts, now: datetime) -> Iterator[Lead]:
    chosen = candidates(segment, leads, facts, now)
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
