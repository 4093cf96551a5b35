"""Grading: fit from who the lead is, Japanese titles included, and the A1..D4 matrix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tsunagu.leads.email import normalise_email
from tsunagu.qualification.grading import (
    Grade,
    GradeReason,
    GradeThresholds,
    GradingRules,
    KeywordPoints,
    employee_count,
    grade,
    keyword_in,
    matrix_cell,
    qualifies_as_mql,
)
from tsunagu.qualification.scoring import score_band

RULES = GradingRules()


def title_points(title: str) -> tuple[str, int] | None:
    reasons = [r for r in grade({"job_title": title}, RULES).reasons if r.attribute == "job_title"]
    return (reasons[0].matched, reasons[0].points) if reasons else None


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("営業部長", ("部長", 20)),
        ("マーケティング部 部長", ("部長", 20)),
        ("第二営業本部 本部長", ("本部長", 25)),
        ("代表取締役社長", ("代表取締役", 30)),  # counted once, by the most specific keyword
        ("取締役 営業部長", ("取締役", 25)),
        ("情報システム課 課長", ("課長", 15)),
        ("主任", ("主任", 8)),
        ("ＣＥＯ", ("CEO", 30)),  # typed with the IME in full-width mode
        ("Vice President, Sales", ("vice president", 25)),
        ("President", ("president", 30)),
        ("Director of Marketing", ("director", 25)),
        ("Marketing Manager", ("manager", 15)),
        ("大学生", ("学生", -30)),
        ("Marketing Intern", ("intern", -20)),
        ("Consultant", None),
    ],
)
def test_job_titles_in_japanese_and_english(title: str, expected: tuple[str, int] | None) -> None:
    assert title_points(title) == expected


def test_an_ascii_keyword_must_stand_as_a_word() -> None:
    assert not keyword_in("CTO", "Director")  # "dire-cto-r"
    assert not keyword_in("intern", "International Sales")
    assert keyword_in("IT", "IT推進部")  # Japanese after it is a word boundary
    assert not keyword_in("IT", "Digital Marketing")
    assert keyword_in("部長", "営業部長")  # Japanese has no spaces: anywhere counts


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("1,000", 1000),
        ("1000+", 1000),
        ("300-999", 300),
        ("５００名", 500),
        ("従業員 1，200 人", 1200),
        ("1.2万人", 12000),
        ("約3万名", 30000),
        ("0.29万", 2900),
        ("不明", None),
        ("", None),
    ],
)
def test_company_size_answers_as_people_type_them(text: str, count: int | None) -> None:
    assert employee_count(text) == count


def test_a_department_head_at_a_large_japanese_company_is_an_a() -> None:
    # Given a sales department head at a 1,200-person manufacturer in Japan
    attributes = {
        "job_title": "営業部長",
        "company_size": "1,200名",
        "industry": "製造業",
        "country": "jp",
        "email": "taro.yamada@example.co.jp",
    }
    # When graded by the default rules
    result = grade(attributes, RULES)
    # Then every point has a reason, and the department is read from the title
    assert result.reasons == (
        GradeReason("job_title", "営業部長", "部長", 20),
        GradeReason("department (in job_title)", "営業部長", "営業", 10),
        GradeReason("industry", "製造業", "製造", 10),
        GradeReason("company_size", "1,200名", "1000+", 20),
        GradeReason("country", "jp", "JP", 10),
    )
    assert result.points == 70
    assert result.grade is Grade.A


def test_a_given_department_is_used_instead_of_the_title() -> None:
    result = grade({"job_title": "営業部長", "department": "人事部"}, RULES)
    assert [r.attribute for r in result.reasons] == ["job_title"]
    assert result.points == 20


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({}, Grade.D),  # nothing known: no fit shown
        ({"job_title": "担当", "company_size": "10"}, Grade.D),  # 3 + 3
        ({"job_title": "Marketing Manager", "country": "JP"}, Grade.B),  # 15 + 15 + 10
        ({"job_title": "課長", "company_size": "50"}, Grade.C),  # 15 + 10
        ({"job_title": "学生", "company_size": "5000", "country": "JP"}, Grade.D),  # -30+20+10
    ],
)
def test_grades_from_fit_points(attributes: dict[str, str], expected: Grade) -> None:
    assert grade(attributes, RULES).grade is expected


def test_a_competitors_domain_and_its_subdomains_grade_down() -> None:
    rules = GradingRules(email_domains={"competitor.example": -100})
    strong = {"job_title": "代表取締役", "company_size": "3000", "country": "JP"}
    for address in ("ceo@competitor.example", "ceo@jp.competitor.example"):
        result = grade({**strong, "email": address}, rules)
        assert result.grade is Grade.D
        assert result.reasons[-1] == GradeReason("email", address, "competitor.example", -100)
    lookalike = grade({**strong, "email": "ceo@notcompetitor.example"}, rules)
    assert lookalike.grade is Grade.A


@pytest.mark.parametrize("typed", ["日本.example.jp", "@日本.example.jp.", "xn--wgv71a.example.jp"])
def test_a_domain_typed_as_it_is_written_grades_the_leads_stored_in_punycode(typed: str) -> None:
    # Given a competitor's internationalised domain, typed as people write it: the leads'
    # addresses hold it in punycode (as a form or an import stores them)
    rules = GradingRules(email_domains={typed: -100})
    stored = normalise_email("taro@日本.example.jp").address
    assert stored == "taro@xn--wgv71a.example.jp"
    # Then its leads and its subdomains' grade down, and a lookalike's do not
    for address in (stored, "jiro@sub.xn--wgv71a.example.jp"):
        reason = grade({"email": address}, rules).reasons[-1]
        assert (reason.attribute, reason.points) == ("email", -100)
    assert grade({"email": "x@other.example.jp"}, rules).reasons == ()


def test_a_top_level_domain_still_grades_as_a_suffix() -> None:
    rules = GradingRules(email_domains={"JP": 10})
    assert grade({"email": "x@example.co.jp"}, rules).reasons[-1].points == 10


def test_thresholds_and_keywords_are_data() -> None:
    rules = GradingRules(
        job_titles=(KeywordPoints(keyword="研究員", points=50),),
        thresholds=GradeThresholds(a=50, b=30, c=10),
    )
    assert grade({"job_title": "主任研究員"}, rules).grade is Grade.A
    assert grade({"job_title": "部長"}, rules).grade is Grade.D  # not in these rules


@pytest.mark.parametrize(
    "data",
    [
        {"thresholds": {"a": 40, "b": 40, "c": 20}},
        {"job_titles": [{"keyword": "", "points": 5}]},
        {"countries": {"JP": 500}},
        {"rating": 3},
    ],
)
def test_bad_grading_rules_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GradingRules.model_validate(data)


def test_grading_rules_round_trip_as_data() -> None:
    assert GradingRules.model_validate(RULES.model_dump(mode="json")) == RULES


# --- the matrix and MQL ---------------------------------------------------------------------


def test_the_sixteen_cells_of_the_matrix() -> None:
    cells = [matrix_cell(g, b) for g in Grade for b in (1, 2, 3, 4)]
    assert cells == [f"{g}{b}" for g in "ABCD" for b in "1234"]


def test_a_fit_lead_with_a_hot_score_is_a1() -> None:
    result = grade({"job_title": "CEO", "company_size": "2000", "country": "JP"}, RULES)
    assert matrix_cell(result.grade, score_band(75, 70)) == "A1"
    assert matrix_cell(Grade.D, score_band(10, 70)) == "D4"


def test_a_band_outside_1_to_4_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 4"):
        matrix_cell(Grade.A, 5)  # type: ignore[arg-type]


def test_grades_order_a_best() -> None:
    assert Grade.A.at_least(Grade.B)
    assert Grade.B.at_least(Grade.B)
    assert not Grade.C.at_least(Grade.B)
    assert Grade.D.at_least(Grade.D)


@pytest.mark.parametrize(
    ("score", "lead_grade", "minimum", "expected"),
    [
        (70, Grade.D, Grade.D, True),  # the seed's rule: over 70, whatever the fit
        (69.9, Grade.A, Grade.D, False),
        (90, Grade.C, Grade.B, False),  # hot but not a fit
        (90, Grade.B, Grade.B, True),
        (90, Grade.A, Grade.B, True),
    ],
)
def test_mql_needs_the_score_and_the_grade(
    score: float, lead_grade: Grade, minimum: Grade, expected: bool
) -> None:
    assert qualifies_as_mql(score, lead_grade, 70, minimum) is expected


def test_by_default_any_grade_may_become_mql() -> None:
    assert qualifies_as_mql(70, Grade.D, 70)
