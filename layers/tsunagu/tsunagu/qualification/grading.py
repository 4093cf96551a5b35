"""Grading: how well a lead fits, from who they are rather than what they did.

The score says how interested a lead is; the grade says whether sales should care. A student who
reads every mail scores high and grades D; a department head who opened one mail grades A and
scores low. Together they make the A1..D4 matrix sales teams already know (A1: right person,
ready now).

Attributes arrive as people typed them, in Japanese or English, full-width or not: every
comparison folds text with NFKC and casefold first. A job title gets the points of the longest
keyword it contains, so "Vice President" is not graded as "President" and "代表取締役社長" counts
once, not once per keyword.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tsunagu.leads.email import InvalidEmail, pasted_domain
from tsunagu.qualification.scoring import Band

_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(万)?")
_DIGIT_GROUPS = re.compile(r"(?<=\d)[,，](?=\d{3})")


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"

    def at_least(self, other: Grade) -> bool:
        """A is the best grade: ``Grade.B.at_least(Grade.C)`` is True."""
        return self.value <= other.value


def fold(text: str) -> str:
    """The form every comparison uses: NFKC (full-width to ASCII), casefold, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def rule_domain(typed: str) -> str:
    """A rule's domain (an owner rule's, the fit sheet's ``email_domains``) as the leads'
    addresses hold theirs (tsunagu.leads.email): ``日本.example.jp`` is ``xn--wgv71a.example.jp``,
    or the rule would never match the addresses it names. A suffix no address has whole (``jp``)
    is kept folded: it still matches as the end of an address's domain."""
    try:
        return pasted_domain(typed)
    except InvalidEmail:
        return fold(typed).strip(".").removeprefix("@")


def keyword_in(keyword: str, text: str) -> bool:
    """Is ``keyword`` in ``text``? An ASCII keyword must stand as a word ("CTO" is not in
    "Director"); other keywords are looked for anywhere, since Japanese has no spaces
    ("部長" is in "営業部長")."""
    wanted, folded = fold(keyword), fold(text)
    if not wanted:
        return False
    if wanted.isascii():
        return re.search(rf"(?<![a-z0-9]){re.escape(wanted)}(?![a-z0-9])", folded) is not None
    return wanted in folded


def employee_count(text: str) -> int | None:
    """The first number in a company-size answer: "1,000", "1000+", "300-999", "５００名",
    "1.2万人" (12,000). None when there is no number."""
    folded = _DIGIT_GROUPS.sub("", unicodedata.normalize("NFKC", text))
    match = _NUMBER.search(folded)
    if match is None:
        return None
    # Decimal, not float: "0.29万" is 2,900 people, not 2,899.
    return int(Decimal(match.group(1)) * (10_000 if match.group(2) else 1))


class KeywordPoints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keyword: str = Field(min_length=1, max_length=50)
    points: int = Field(ge=-100, le=100)


class SizeBand(BaseModel):
    """Companies with at least ``min_employees`` people (the largest band that fits wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_employees: int = Field(ge=0)
    points: int = Field(ge=-100, le=100)


class GradeThresholds(BaseModel):
    """Fit points needed for each grade; below ``c`` is D."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    a: int = 60
    b: int = 40
    c: int = 20

    @model_validator(mode="after")
    def _descending(self) -> Self:
        if not self.a > self.b > self.c:
            raise ValueError("thresholds must fall from A to C (a > b > c)")
        return self


def _kw(*pairs: tuple[str, int]) -> tuple[KeywordPoints, ...]:
    return tuple(KeywordPoints(keyword=k, points=p) for k, p in pairs)


class GradingRules(BaseModel):
    """The fit sheet, as data. The defaults are a starting point for a Japanese B2B seller;
    industries and domains in particular are the user's own to set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_titles: tuple[KeywordPoints, ...] = _kw(
        ("代表取締役", 30),
        ("社長", 30),
        ("CEO", 30),
        ("president", 30),
        ("vice president", 25),
        ("VP", 25),
        ("取締役", 25),
        ("執行役員", 25),
        ("役員", 25),
        ("CTO", 25),
        ("CIO", 25),
        ("CMO", 25),
        ("director", 25),
        ("本部長", 25),
        ("部長", 20),
        ("head", 20),
        ("general manager", 20),
        ("課長", 15),
        ("manager", 15),
        ("マネージャー", 15),
        ("係長", 8),
        ("主任", 8),
        ("リーダー", 8),
        ("lead", 8),
        ("担当", 3),
        ("staff", 3),
        ("学生", -30),
        ("student", -30),
        ("インターン", -20),
        ("intern", -20),
    )
    departments: tuple[KeywordPoints, ...] = _kw(
        ("マーケティング", 15),
        ("marketing", 15),
        ("販売促進", 10),
        ("営業", 10),
        ("sales", 10),
        ("経営企画", 10),
        ("情報システム", 10),
        ("IT", 10),
    )
    """Looked for in the job title too when the department is not given ("営業部長")."""
    industries: tuple[KeywordPoints, ...] = _kw(
        ("製造", 10),
        ("manufacturing", 10),
        ("情報通信", 10),
        ("software", 10),
        ("ソフトウェア", 10),
    )
    company_sizes: tuple[SizeBand, ...] = (
        SizeBand(min_employees=1000, points=20),
        SizeBand(min_employees=300, points=15),
        SizeBand(min_employees=50, points=10),
        SizeBand(min_employees=1, points=3),
    )
    countries: dict[str, int] = Field(default_factory=lambda: {"JP": 10})
    """ISO codes or names as the form collects them; compared folded ("jp" is "JP")."""
    email_domains: dict[str, int] = Field(default_factory=dict)
    """Points for the lead's mail domain and its subdomains: a competitor's domain -100."""
    thresholds: GradeThresholds = GradeThresholds()

    @field_validator("countries", "email_domains")
    @classmethod
    def _points_in_range(cls, values: dict[str, int]) -> dict[str, int]:
        for key, points in values.items():
            if not key.strip() or not -100 <= points <= 100:
                raise ValueError(f"{key!r}: a name and points from -100 to 100 are needed")
        return values

    @field_validator("email_domains")
    @classmethod
    def _as_stored(cls, values: dict[str, int]) -> dict[str, int]:
        return {rule_domain(domain): points for domain, points in values.items()}


@dataclass(frozen=True)
class GradeReason:
    attribute: str
    value: str
    matched: str
    """The keyword, band, country or domain that gave the points."""
    points: int


@dataclass(frozen=True)
class Grading:
    grade: Grade
    points: int
    reasons: tuple[GradeReason, ...]


def _best_keyword(text: str, keywords: tuple[KeywordPoints, ...]) -> KeywordPoints | None:
    matches = [k for k in keywords if keyword_in(k.keyword, text)]
    # Longest (most specific) keyword wins; among equals, the one listed first.
    return max(matches, key=lambda k: len(fold(k.keyword)), default=None)


def _domain_points(email: str, domains: Mapping[str, int]) -> tuple[str, int] | None:
    domain = fold(email).rpartition("@")[2].rstrip(".")
    if not domain:
        return None
    candidates = [
        (name, points)
        for name, points in domains.items()
        if domain == fold(name) or domain.endswith("." + fold(name))
    ]
    return max(candidates, key=lambda c: len(c[0]), default=None)


def grade(attributes: Mapping[str, str], rules: GradingRules) -> Grading:
    """Grade a lead from ``job_title``, ``department``, ``company_size``, ``industry``,
    ``country`` and ``email``; missing attributes add nothing, so an unknown lead is D."""
    reasons: list[GradeReason] = []

    def keyword_reason(attribute: str, text: str, keywords: tuple[KeywordPoints, ...]) -> bool:
        best = _best_keyword(text, keywords)
        if best is not None:
            reasons.append(GradeReason(attribute, text, best.keyword, best.points))
        return best is not None

    title = attributes.get("job_title") or ""
    department = attributes.get("department") or ""
    if title:
        keyword_reason("job_title", title, rules.job_titles)
    if department:
        keyword_reason("department", department, rules.departments)
    elif title:
        keyword_reason("department (in job_title)", title, rules.departments)
    if industry := attributes.get("industry"):
        keyword_reason("industry", industry, rules.industries)
    if size_text := attributes.get("company_size"):
        count = employee_count(size_text)
        fitting = [b for b in rules.company_sizes if count is not None and count >= b.min_employees]
        band = max(fitting, key=lambda b: b.min_employees, default=None)
        if band is not None:
            reasons.append(
                GradeReason("company_size", size_text, f"{band.min_employees}+", band.points)
            )
    if country := attributes.get("country"):
        for name, points in rules.countries.items():
            if fold(name) == fold(country):
                reasons.append(GradeReason("country", country, name, points))
                break
    if email := attributes.get("email"):
        found = _domain_points(email, rules.email_domains)
        if found is not None:
            reasons.append(GradeReason("email", email, found[0], found[1]))

    total = sum(r.points for r in reasons)
    limits = rules.thresholds
    letter = (
        Grade.A
        if total >= limits.a
        else Grade.B
        if total >= limits.b
        else Grade.C
        if total >= limits.c
        else Grade.D
    )
    return Grading(letter, total, tuple(reasons))


def matrix_cell(grade: Grade, band: Band) -> str:
    """``A1`` (best fit, hottest) to ``D4``."""
    if band not in (1, 2, 3, 4):
        raise ValueError(f"a score band is 1 to 4, not {band!r}")
    return f"{grade.value}{band}"


DEFAULT_MINIMUM_GRADE = Grade.D
"""By default any grade may become MQL: seed 000 said only "over 70, sales is told"."""


def qualifies_as_mql(
    score: float, grade: Grade, threshold: int, minimum_grade: Grade = DEFAULT_MINIMUM_GRADE
) -> bool:
    """Score at or over the threshold, and grade at or above the minimum."""
    return score >= threshold and grade.at_least(minimum_grade)
