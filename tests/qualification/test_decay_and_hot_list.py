"""Decay through the whole path, with the functions' clock frozen where the test puts it: old
activity fades in ``tsunagu leads score`` (every point, decay included), and the hot list for
sales ranks leads by the score they have now."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.tracking_helpers import set_clock
from tests.qualification.conftest import NOW, Qualified, run_cli
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.scoring import DEFAULT_MODEL, DEFAULT_RULES

HALF_LIFE_DAYS = 14
OLD = "old.interest@example.jp"
NEW = "new.interest@example.jp"


def clock_at(q: Qualified, folder: Path, days_ago: float) -> None:
    """The functions' clock (and the CLI's, through runtime.json) at NOW - ``days_ago``."""
    set_clock(q.aws, NOW - timedelta(days=days_ago))
    (folder / ".tsunagu" / "runtime.json").write_text(
        json.dumps({"environment": q.aws.environment, "functions": {}})
    )


@pytest.fixture
def fading(qualified: Qualified, cli_here: Path) -> Qualified:
    """The default rules, but a seminar's 20 points halve every 14 days. Sixty days ago one lead
    attended a seminar; today another opened three mails."""
    q = qualified
    rules = tuple(
        r.model_copy(update={"half_life_days": HALF_LIFE_DAYS})
        if r.rule_id == "seminar-attended"
        else r
        for r in DEFAULT_RULES
    )
    q.save_config(QualificationConfig(scoring=DEFAULT_MODEL.model_copy(update={"rules": rules})))
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


def test_the_hot_list_ranks_by_the_score_leads_have_now(
    fading: Qualified, capsys: pytest.CaptureFixture[str]
) -> None:
    # The old lead scored 30 sixty days ago and is worth about 11 now; the new one is worth 25
    rows = run_cli("leads", "hot", capsys=capsys).splitlines()

    assert [row.split()[-3] for row in rows] == [NEW, OLD]
    assert rows[1].split()[0] == "11.0"
