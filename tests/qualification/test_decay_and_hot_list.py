"""Decay through the whole path, with the functions' clock frozen where the test puts it: old
activity fades in ``tsunagu leads score`` (every point, decay included), the hot list for
sales ranks leads by the score they have now, and every filter that reads a score (a segment, a
journey's branch, a lead search's band) and the export read that same score."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.tracking_helpers import set_clock
from tests.qualification.conftest import NOW, Qualified, run_cli
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.leads.lookup import lead_by_email
from tsunagu.leads.model import Lead
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.scoring import DEFAULT_MODEL, DEFAULT_RULES, Award
from tsunagu.store.converters import lead_to_item

HALF_LIFE_DAYS = 14
OLD = "old.interest@example.jp"
NEW = "new.interest@example.jp"


def clock_at(q: Qualified, folder: Path, days_ago: float) -> None:
    """The functions' clock (and the CLI's, through runtime.json) at NOW - ``days_ago``."""
    set_clock(q.aws, NOW - timedelta(days=days_ago))
    (folder / ".tsunagu" / "runtime.json").write_text(
        json.dumps({"environment": q.aws.environment, "functions": {}})
    )


def save_fading_seminar_rules(q: Qualified) -> None:
    """The default rules, but a seminar's 20 points halve every HALF_LIFE_DAYS days."""
    rules = tuple(
        r.model_copy(update={"half_life_days": HALF_LIFE_DAYS})
        if r.rule_id == "seminar-attended"
        else r
        for r in DEFAULT_RULES
    )
    q.save_config(QualificationConfig(scoring=DEFAULT_MODEL.model_copy(update={"rules": rules})))


@pytest.fixture
def fading(qualified: Qualified, cli_here: Path) -> Qualified:
    """The default rules, but a seminar's 20 points halve every 14 days. Sixty days ago one lead
    attended a seminar; today another opened three mails."""
    q = qualified
    save_fading_seminar_rules(q)
    clock_at(q, cli_here, 60)
    old = q.capture(OLD, name="古川 進")
    q.record(old, "seminar_attended")
    q.deliver()
    clock_at(q, cli_here, 0)
    new = q.capture(NEW, name="新井 光")
    for n in range(3):
        q.open_mail(new, f"msg_{n}")
    q.deliver()
    return q


def test_leads_score_shows_old_activity_faded(
    fading: Qualified, capsys: pytest.CaptureFixture[str]
) -> None:
    explained = json.loads(run_cli("leads", "score", OLD, "--json", capsys=capsys))

    (seminar,) = [line for line in explained["lines"] if line["rule_id"] == "seminar-attended"]
    faded = 20 * 0.5 ** (60 / HALF_LIFE_DAYS)
    assert seminar["points"] == 20
    assert seminar["decayed"] == pytest.approx(faded, abs=0.01)
    assert explained["score"] == pytest.approx(10 + faded, abs=0.01)
    assert sum(line["decayed"] for line in explained["lines"]) == explained["score"]
    text = run_cli("leads", "score", OLD, capsys=capsys)
    assert f"+20  -> {faded:.1f} (half-life {HALF_LIFE_DAYS} d)" in text


def test_removing_a_fading_rule_leaves_its_old_points_faded(
    fading: Qualified, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the old lead's seminar of 60 days ago is worth about 1 point now (score about 11)
    before = json.loads(run_cli("leads", "score", OLD, "--json", capsys=capsys))["score"]
    assert before < 12

    # When marketing stops scoring seminars (the rule removed from the sheet)
    rules = tuple(r for r in DEFAULT_RULES if r.rule_id != "seminar-attended")
    fading.save_config(
        QualificationConfig(scoring=DEFAULT_MODEL.model_copy(update={"rules": rules}))
    )

    # Then the seminar goes on fading by the half-life it was awarded with: no jump back to 20
    explained = json.loads(run_cli("leads", "score", OLD, "--json", capsys=capsys))
    assert explained["score"] == pytest.approx(before, abs=0.01)
    (seminar,) = [line for line in explained["lines"] if line["rule_id"] == "seminar-attended"]
    assert seminar["half_life_days"] == HALF_LIFE_DAYS
    assert "no longer in the model" in seminar["note"]
    # And with no rule left that fades, a score filter still reads the faded score
    found = json.loads(run_cli("segments", "try", "score>=20", "--json", capsys=capsys))
    assert [lead["email"] for lead in found["sample"]] == [NEW], found


def test_the_hot_list_ranks_by_the_score_leads_have_now(
    fading: Qualified, capsys: pytest.CaptureFixture[str]
) -> None:
    # The old lead scored 30 sixty days ago and is worth about 11 now; the new one is worth 25
    rows = run_cli("leads", "hot", capsys=capsys).splitlines()

    assert [row.split()[-3] for row in rows] == [NEW, OLD]
    assert rows[1].split()[0] == "11.0"


# ---------------------------------------------------------------- one score, everywhere
def score_now(email: str, capsys: pytest.CaptureFixture[str]) -> float:
    score: float = json.loads(run_cli("leads", "score", email, "--json", capsys=capsys))["score"]
    return score


def test_a_segment_selects_by_the_score_leads_score_explains(
    fading: Qualified, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the old lead's score now is about 11 (stored: 30, as of its seminar) and the new 25
    assert score_now(OLD, capsys) < 12 and score_now(NEW, capsys) == 25

    # When marketing asks which leads have a score of at least 20
    found = json.loads(run_cli("segments", "try", "score>=20", "--json", capsys=capsys))

    # Then only the new lead is selected; and at most 20 is the old one, showing its 11
    assert [lead["email"] for lead in found["sample"]] == [NEW], found
    low = json.loads(run_cli("segments", "try", "score<=20", "--json", capsys=capsys))
    assert [lead["email"] for lead in low["sample"]] == [OLD], low
    assert low["sample"][0]["score"] == pytest.approx(score_now(OLD, capsys))


def test_a_journey_branch_on_score_takes_the_way_of_the_score_now(fading: Qualified) -> None:
    q = fading
    repo = services.lead_repository(q.settings())

    def decided(email: str) -> dict[str, object]:
        lead = lead_by_email(repo, email)
        outcome: dict[str, object] = q.aws.function("journey_decide").invoke(
            {
                "journey_id": "nurture",
                "node": "how_hot",
                "lead_id": lead.lead_id,
                "execution_id": f"arn:aws:states:ap-northeast-1:123456789012:execution:x:{email}",
                "entered_at": "2026-12-01T01:00:00.000Z",
                "decision": {"kind": "branch", "cases": [{"outcome": "hot", "when": "score>=20"}]},
            }
        )
        return outcome

    # When a nurture journey's branch sends leads at 20 or more one way
    # Then the old lead (about 11 now) goes the default way, the new one (25) the hot one
    assert decided(OLD) == {"outcome": "default"}
    assert decided(NEW) == {"outcome": "hot"}


def test_a_lead_search_band_reads_the_score_now_and_shows_it(
    fading: Qualified, capsys: pytest.CaptureFixture[str]
) -> None:
    def found(*band: str) -> list[list[str]]:
        out = run_cli("leads", "search", *band, capsys=capsys)
        return [line.split("\t") for line in out.splitlines() if "\t" in line]

    # When sales searches the leads scored 20 or more, then those scored 20 at most
    at_least = found("--score-min", "20")
    at_most = found("--score-max", "20")

    # Then the old lead, stored at 30 but about 11 now, is only in the second, shown at 11
    assert [row[0] for row in at_least] == [NEW]
    assert [(row[0], row[4]) for row in at_most] == [(OLD, f"{score_now(OLD, capsys):.0f}")]


def test_the_export_shows_each_leads_score_now(
    fading: Qualified, cli_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When marketing exports the leads
    run_cli("leads", "export", "-o", "leads.csv", capsys=capsys)

    # Then each row's score is the one `leads score` explains, decay included
    text = (cli_here / "leads.csv").read_text(encoding="utf-8-sig")
    scores = {row["email"]: float(row["score"]) for row in csv.DictReader(io.StringIO(text))}
    assert scores[OLD] == pytest.approx(score_now(OLD, capsys), abs=0.001)
    assert scores[NEW] == 25


# ---------------------------------------------------------------- the hot list at scale
def stored_lead(q: Qualified, lead_id: str, awards: list[Award], score: float) -> None:
    """A lead as scoring leaves it (its score stored as of its awards), written directly."""
    tables = services.lead_repository(q.settings())._tables
    at = isoformat(NOW)
    lead = Lead(
        lead_id=lead_id,
        email=f"{lead_id.removeprefix('lead_')}@example.jp",
        fields={},
        sources=["web_form"],
        visitor_ids=set(),
        stage="lead",
        created_at=at,
        updated_at=at,
        score=score,
        score_at=at,
        grade="D",
    )
    lead_to_item(tables, lead).save()
    for award in awards:
        key = f"award#{award.event_id}#{award.rule_id}"
        tables.qualification(f"lead#{lead_id}", key, data=award.to_item()).save()


def test_a_lead_hot_now_is_on_the_hot_list_however_many_leads_were_hot_long_ago(
    qualified: Qualified,
    cli_here: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tsunagu.commands import qualification

    q = qualified
    save_fading_seminar_rules(q)
    # The index read five leads at a time: a dozen leads make several pages
    monkeypatch.setattr(qualification, "HOT_LIST_PAGE", 5)
    # Given 12 leads that attended four seminars a year ago (stored 80, worth about 0 now)
    year_ago = NOW - timedelta(days=365)
    for n in range(12):
        seminars = [
            Award("seminar-attended", 20, f"evt_cold{n:02d}_{k}", year_ago, "seminar_attended",
                  None, HALF_LIFE_DAYS)
            for k in range(4)
        ]  # fmt: skip
        stored_lead(q, f"lead_cold{n:02d}", seminars, 80.0)
    # And one that attended three today (60)
    today = [
        Award("seminar-attended", 20, f"evt_hot_{k}", NOW, "seminar_attended", None, HALF_LIFE_DAYS)
        for k in range(3)
    ]
    stored_lead(q, "lead_hot", today, 60.0)

    # When sales asks for the five hottest
    rows = run_cli("leads", "hot", "--limit", "5", capsys=capsys).splitlines()

    # Then the lead hot now heads the list, at its 60
    assert "hot@example.jp" in rows[0] and rows[0].split()[0] == "60.0", rows
