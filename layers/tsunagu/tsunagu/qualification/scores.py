"""A lead's score as of now: the one number every comparison, list and export reads.

The lead item keeps its score as of its last scored event (``score``, ``score_at``; the search
indexes sort by it). With no award fading that is the lead's score at any time. With a half-life
in the rules it is not: a seminar of 60 days ago that made 30 may be worth 11 now, and a filter
that read 30 would select the lead for ``score>=20`` while ``tsunagu leads score`` explains 11.
So the score now is what :func:`tsunagu.qualification.scoring.current_score` makes of the lead's
awards - exactly the total ``leads score`` explains - read once per lead and evaluation.

What the stored score still tells, without a read (decay only ever moves an award towards 0):

- a fading award worth points is worth less now than when the score was stored, so while no
  award that takes points away fades, the score now is **at most** the stored one;
- a fading award that takes points away takes fewer now, so while no award worth points fades,
  the score now is **at least** the stored one.

Segments, journey branches, lead search bands, the hot list and a segment preview use those
bounds to read only the awards of the leads the stored score cannot decide, and to narrow an
index of stored scores only where the bound is true.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tsunagu.clock import isoformat
from tsunagu.leads.model import Lead
from tsunagu.qualification.scoring import Award, ScoringModel, current_score

STORED_ROUNDING = 0.00005
"""The stored score is rounded to 4 places (tsunagu.store.qualification.record_score)."""


@dataclass(frozen=True)
class Fading:
    """Which awards fade, under the rules saved now or any saved before them (an award of a
    removed rule fades by the half-life it was given with, so a sheet that once faded a kind
    of award keeps it fading).

    Kept with the rules as they are saved (tsunagu.store.qualification). Not told apart: a
    half-life made longer, or taken off a rule, makes its old awards worth more than when their
    leads last scored - until each scores again, its stored score can be below the score now.
    """

    positive: bool = False
    """Some award worth points fades: a score now may be below the stored one."""
    negative: bool = False
    """Some award that takes points away fades: a score now may be above the stored one."""

    @classmethod
    def of(cls, model: ScoringModel, before: ScoringModel | None = None) -> Fading:
        """What ``model`` fades; with ``before``, the sheet it replaces, the awards a fading
        rule gave under its points there too (a rule whose points changed sign keeps awards of
        both)."""
        signs = set()
        for rule in model.rules:
            if rule.half_life_days is None:
                continue
            signs.add(rule.points > 0)
            earlier = before.rule(rule.rule_id) if before is not None else None
            if earlier is not None:
                signs.add(earlier.points > 0)
        return cls(positive=True in signs, negative=False in signs)

    def __or__(self, other: Fading) -> Fading:
        return Fading(self.positive or other.positive, self.negative or other.negative)

    @property
    def none(self) -> bool:
        return not (self.positive or self.negative)

    def as_item(self) -> dict[str, bool]:
        return {"positive": self.positive, "negative": self.negative}

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> Fading:
        if not item:
            return cls()
        return cls(bool(item.get("positive")), bool(item.get("negative")))


class LeadScores:
    """Leads' scores as of ``now`` under ``model``; each lead's awards read at most once."""

    def __init__(
        self,
        model: ScoringModel,
        fading: Fading,
        awards_of: Callable[[str], Iterable[Award]],
        now: datetime,
    ) -> None:
        self.model = model
        self.fading = fading
        self.now = now
        self._awards_of = awards_of
        self._known: dict[str, float] = {}

    @classmethod
    def stored(cls, now: datetime) -> LeadScores:
        """Each lead's stored score taken as its score now: for leads nothing else is known of
        (a dry run's synthetic leads)."""
        return cls(ScoringModel(), Fading(), lambda lead_id: (), now)

    def of(self, lead: Lead) -> float:
        """The lead's score now, decay included: the total ``tsunagu leads score`` explains."""
        if lead.score is None:
            return 0.0  # never scored: no award (awards and the score are written together)
        if self.fading.none:
            return lead.score
        known = self._known.get(lead.lead_id)
        if known is None:
            known = current_score(self._awards_of(lead.lead_id), self.now, self.model)
            self._known[lead.lead_id] = known
        return known

    def ceiling(self, lead: Lead) -> float | None:
        """The most the score now can be, known without a read (None: no bound)."""
        if lead.score is None:
            return 0.0
        return None if self.fading.negative else lead.score + STORED_ROUNDING

    def floor(self, lead: Lead) -> float | None:
        """The least the score now can be, known without a read (None: no bound)."""
        if lead.score is None:
            return 0.0
        return None if self.fading.positive else lead.score - STORED_ROUNDING

    def at_least(self, lead: Lead, number: float) -> bool:
        high, low = self.ceiling(lead), self.floor(lead)
        if high is not None and high < number:
            return False
        if low is not None and low >= number:
            return True
        return self.of(lead) >= number

    def at_most(self, lead: Lead, number: float) -> bool:
        high, low = self.ceiling(lead), self.floor(lead)
        if high is not None and high <= number:
            return True
        if low is not None and low > number:
            return False
        return self.of(lead) <= number

    def index_band(self, low: int | None, high: int | None) -> tuple[int | None, int | None]:
        """The part of a band ``low..high`` of scores now that an index of stored scores may be
        narrowed by: a lower end only while no score can be above its stored one, an upper end
        only while none can be below it. The leads it finds are then checked one by one."""
        return (
            None if self.fading.negative else low,
            None if self.fading.positive else high,
        )

    def as_of_now(self, lead: Lead) -> Lead:
        """A copy of the lead showing its score now (a list, a preview, an export): never one to
        save, its ``score`` is no longer the one its awards were last stored with."""
        if self.fading.none or lead.score is None:
            return lead
        return dataclasses.replace(lead, score=self.of(lead), score_at=isoformat(self.now))

    def contenders(
        self,
        leads: Iterable[Lead],
        count: int,
        *,
        most_from: Callable[[Lead], float] = lambda lead: lead.score or 0.0,
    ) -> list[tuple[Lead, float]]:
        """Each of ``leads`` that may be among the ``count`` highest scores now, with its score
        now, in the order read; the caller ranks them (breaking ties as it likes).

        ``leads`` must come highest stored score first; ``most_from(lead)`` is the highest
        stored score that lead or any after it can have (its own, for leads sorted by it; half a
        point more for an index sorted by the score rounded). While no score can be above its
        stored one, reading stops at the first lead whose ``most_from`` is below the
        ``count``-th highest score now read so far: no lead from there on can rank above that,
        nor tie with it. Otherwise every lead is read.
        """
        if count <= 0:
            return []
        read: list[tuple[Lead, float]] = []
        best: list[float] = []  # the ``count`` highest scores now so far, a min-heap
        for lead in leads:
            if (
                not self.fading.negative
                and len(best) == count
                and most_from(lead) + STORED_ROUNDING < best[0]
            ):
                break
            score = self.of(lead)
            read.append((lead, score))
            if len(best) < count:
                heapq.heappush(best, score)
            else:
                heapq.heappushpop(best, score)
        return read
