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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tsunagu.leads.model import Lead
from tsunagu.segments.filter import EQUAL, Facts, Segment

SAMPLE = 10
"""Leads a preview shows."""


class Leads(Protocol):
    def all_leads(self) -> Iterable[Lead]: ...

    def leads_by_id(self, lead_ids: Sequence[str]) -> Iterable[Lead]: ...


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
    list, the hot list), where a lead that moves has moved."""
    imports = [c.value for c in segment.conditions if c.name == "import" and c.operator == EQUAL]
    if imports:
        # Every one must hold: the leads in all of the imports named.
        ids = frozenset.intersection(*(facts.imported(import_id) for import_id in imports))
        found: Iterable[Lead] = leads.leads_by_id(sorted(ids))
    else:
        found = leads.all_leads()
    # Neither read gives a lead twice; a store that did (a retried page) must not enter it
    # twice or count it twice either.
    seen: set[str] = set()
    for lead in found:
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
