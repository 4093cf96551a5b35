"""What a person searches leads by: a word of the e-mail, name or company, and filters by stage,
owner, tag, grade and score band. Results come highest score first, a page at a time. The words
a lead is found by, and the rank its results sort by: tsunagu.leads.search_words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tsunagu.leads.model import Lead
from tsunagu.leads.search_words import fold
from tsunagu.leads.updates import STAGES, Tag

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class LeadQuery(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    q: str | None = Field(default=None, min_length=1, max_length=100)
    """The beginning of a word of the e-mail, name or company (see ``search_words``)."""
    stage: str | None = Field(default=None, pattern="^(" + "|".join(STAGES) + ")$")
    owner: str | None = Field(default=None, min_length=3, max_length=254)
    tag: Tag | None = None
    grade: Annotated[str, Field(pattern="^[ABCD]$")] | None = None
    score_min: int | None = Field(default=None, ge=-99_999, le=899_999)
    score_max: int | None = Field(default=None, ge=-99_999, le=899_999)
    limit: int = Field(default=PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _band_in_order(self) -> Self:
        low, high = self.score_min, self.score_max
        if low is not None and high is not None and low > high:
            raise ValueError("score_min is above score_max")
        return self

    @property
    def word(self) -> str | None:
        return fold(self.q) if self.q else None


@dataclass(frozen=True)
class LeadPage:
    leads: list[Lead]
    next_cursor: str | None
    """None when nothing more matches."""
    examined: int
    """Index entries read for this page (what it cost; never the whole table)."""
    truncated: bool = False
    """A word search matched more leads than it ranks: only the first of them were ranked."""
