"""The words a lead is found by, and the rank search results sort by: what every full save of a
lead writes (tsunagu.store.search_attributes), kept apart from the search itself so that a save
imports no pydantic.

A word finds the leads with a *search word* that begins with it (``search_words``): the e-mail's
local part, its pieces and its domain; the name, whole and in pieces; the company, whole and in
pieces, without its legal form (株式会社, (株), Inc., KK...). So 「サンプル」 finds
株式会社サンプル, サンプル商事 and ｻﾝﾌﾟﾙ Lab, 「青木」 finds 青木 花子, 「example.jp」 finds
everyone at that domain; a word inside another word (「商事」 in サンプル商事) is not looked for.
"""

from __future__ import annotations

import math
import re
import unicodedata

SCORE_FLOOR = -100_000
"""Scores below this (and above ``-SCORE_FLOOR * 9``) sort as the bound: no real score gets near."""
WORD_LIMIT = 60
"""Characters of a search word kept (a longer word is found by its first 60)."""
LEGAL_FORMS = re.compile(
    r"株式会社|有限会社|合同会社|合資会社|合名会社|一般社団法人|一般財団法人|\((?:株|有|同)\)"
    r"|(?<![^\s,.])(?:inc|ltd|llc|corp|corporation|co|kk|k\.k|gmbh|plc)\.?(?=$|[\s,.])"
)
"""Legal forms, after NFKC (㈱ is (株)) and case folding: not part of the name one searches by."""
WORD_SEPARATORS = re.compile(r"[\s._+\-,/・]+")
"""Where a name, a company or an address's local part splits into pieces."""
SPACES = re.compile(r"[\s,]+")


def fold(text: str) -> str:
    """How searched text and the search word are both compared: NFKC, case-folded, spaces
    collapsed (full-width ＡＢＣ and half-width ｶﾅ find their usual forms)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def search_key(text: str) -> str:
    """A word as it is looked up: folded, legal forms dropped, no spaces (「株式会社 サンプル」 and
    「ｻﾝﾌﾟﾙ」 are both サンプル)."""
    folded = fold(text)
    key = "".join(SPACES.split(LEGAL_FORMS.sub(" ", folded)))
    # A word that is only a legal form ("co") is looked for as typed.
    return (key or "".join(SPACES.split(folded)))[:WORD_LIMIT]


def search_words(email: str, name: str | None, company: str | None) -> list[str]:
    """The words a lead is found by (a word is found by any beginning of it). A word that begins
    another of the same lead's words is left out: the longer one finds it already."""
    local, _, domain = fold(email).partition("@")
    words = {local, domain, *WORD_SEPARATORS.split(local)}
    for text in (name, company):
        if text:
            bare = LEGAL_FORMS.sub(" ", fold(text))
            words.add("".join(SPACES.split(bare)))
            words.update(WORD_SEPARATORS.split(bare))
    words = {word[:WORD_LIMIT] for word in words if word}
    return sorted(w for w in words if not any(o != w and o.startswith(w) for o in words))


RANK_TOP = -SCORE_FLOOR * 9 - 1
"""The highest score the rank tells apart."""


def rank(score: float | None, lead_id: str) -> str:
    """The sort key: the score, shifted so every score is positive, zero-padded, then the id."""
    points = min(max(round(score or 0), SCORE_FLOOR), RANK_TOP)
    return f"{points - SCORE_FLOOR:07d}#{lead_id}"


def highest_from(score: float | None) -> float:
    """The highest score of a lead sorted at or after one with ``score``, highest rank first: a
    rank holds the score rounded (after a lead at 79.6, ranked 80, may come one at 80.5), and
    the top rank every score above it."""
    points = round(score or 0)
    return math.inf if points >= RANK_TOP else points + 0.5


def rank_bound(score: int, *, upper: bool) -> str:
    return f"{score - SCORE_FLOOR:07d}#" + ("\uffff" if upper else "")
