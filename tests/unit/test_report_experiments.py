"""The A/B report of a journey's split, on synthetic leads whose true click rates are known: the
leads are split by the journey's own draw, recorded as journey_decision records it, sent a mail
after the split and click it (a person's, settled) with a chance fixed per arm by a seeded
random generator; everything is counted by the counters' own code."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support.reports import MemoryCounters
from tsunagu.clock import isoformat
from tsunagu.journeys.decisions import Decided, decision_event, draw
from tsunagu.journeys.waits import EventMatch
from tsunagu.reports.counters import count_batch
from tsunagu.reports.counting import JourneyGoal
from tsunagu.reports.experiments import experiment_report

JST = ZoneInfo("Asia/Tokyo")
JOURNEY, SPLIT, HOLDOUT_NODE = "welcome_nurture", "subject_test", "control_group"
START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
LEADS = 6_000


def run_split(rates: dict[str, float], seed: int) -> MemoryCounters:
    """LEADS leads through a 50/50 split into arms ``a`` and ``b``; each is sent the arm's mail
    and clicks it with the arm's true rate."""
    rng = random.Random(seed)
    store = MemoryCounters()
    images: list[dict[str, object]] = []
    for n in range(LEADS):
        lead = f"lead_{seed}_{n:05d}"
        arm = "a" if draw(JOURNEY, SPLIT, lead) < 50 else "b"
        at = START + timedelta(seconds=n)
        decided = decision_event(
            Decided(arm, {"draw": draw(JOURNEY, SPLIT, lead)}),
            lead_id=lead,
            journey_id=JOURNEY,
            node=SPLIT,
            kind="split",
            execution_name=f"exec-{lead}",
            entered_at=isoformat(at),
            journey_version=3,
        )
        message = f"msg_{seed}_{n}"
        sent = {
            "message_id": message,
            "template_id": f"welcome-{arm}",
            "template_version": 1,
            "journey_id": JOURNEY,
            "journey_version": 3,
            "node": f"send_{arm}",
        }
        images.append(_image(decided.event_id, "journey_decision", at, lead, decided.properties))
        images.append(_image(f"s{n}", "mail_sent", at + timedelta(minutes=1), lead, sent))
        if rng.random() < rates[arm]:
            click = {"message_id": message, "automated": False, "reasons": [], "settled": True}
            images.append(_image(f"c{n}", "link_clicked", at + timedelta(hours=2), lead, click))
    for start in range(0, len(images), 100):
        count_batch(images[start : start + 100], store=store, time_zone=JST, now=START)
    return store


def _image(
    event_id: str, kind: str, at: datetime, lead: str, properties: dict[str, object]
) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": kind,
        "occurred_at": isoformat(at),
        "lead_id": lead,
        "properties": properties,
    }


def report(store: MemoryCounters) -> dict[str, object]:
    return experiment_report(
        JOURNEY, SPLIT, date(2026, 12, 1), date(2026, 12, 2), store=store
    ).as_dict()


def test_a_split_with_a_known_difference_is_found_and_its_interval_covers_the_truth() -> None:
    # True click rates: 10 % in arm a, 14 % in arm b (a difference of 4 points)
    shown = report(run_split({"a": 0.10, "b": 0.14}, seed=11))
    arms = {arm["arm"]: arm for arm in shown["arms"]}  # type: ignore[index, union-attr]
    assert set(arms) == {"a", "b"}
    # The journey's draw splits about half and half; each lead got one mail after the split
    assert arms["a"]["assigned"] + arms["b"]["assigned"] == LEADS
    assert all(arm["sent"] == arm["assigned"] for arm in arms.values())
    assert abs(arms["a"]["assigned"] - LEADS / 2) < LEADS * 0.03
    [versus] = shown["versus"]  # type: ignore[misc]
    low, high = versus["interval"]
    assert low <= 0.04 <= high
    assert versus["significant"] is True
    assert versus["more_mails_needed_per_arm"] == 0


def test_a_split_with_no_difference_is_not_called_significant() -> None:
    # One seeded run (seed 12 happened to be one of the 5 % of null splits a test at 95 % calls
    # significant; how often that happens over 1,000 runs is checked in
    # tests/unit/test_report_statistics.py)
    shown = report(run_split({"a": 0.10, "b": 0.10}, seed=13))
    [versus] = shown["versus"]  # type: ignore[misc]
    low, high = versus["interval"]
    assert low <= 0.0 <= high
    assert versus["significant"] is False
    # With no real difference the test says how many more mails it would want, if the
    # observed (noise) difference were real - a large number, never "a winner"
    assert versus["more_mails_needed_per_arm"] is None or versus["more_mails_needed_per_arm"] > 0


GOAL = {"form_id": "demo-request", "fields": {}, "new_lead": False}
WINDOW_DAYS = 30


def run_holdout(rates: dict[str, float], seed: int) -> MemoryCounters:
    """LEADS leads through a 20 % holdout: the control group (``holdout``) gets nothing more,
    the rest (``continue``) is sent a mail; each lead asks for a demo (the journey's goal) with
    its group's true rate, some of them twice, and some of the control group again after the
    journey's window (which is not a conversion)."""
    rng = random.Random(seed)
    store = MemoryCounters()
    images: list[dict[str, object]] = []
    for n in range(LEADS):
        lead = f"lead_{seed}_{n:05d}"
        number = draw(JOURNEY, HOLDOUT_NODE, lead)
        group = "holdout" if number < 20 else "continue"
        at = START + timedelta(seconds=n)
        decided = decision_event(
            Decided(group, {"draw": number, "holdout_percent": 20}),
            lead_id=lead,
            journey_id=JOURNEY,
            node=HOLDOUT_NODE,
            kind="holdout",
            execution_name=f"exec-{lead}",
            entered_at=isoformat(at),
            journey_version=3,
        )
        images.append(_image(decided.event_id, "journey_decision", at, lead, decided.properties))
        if group == "continue":
            sent = {
                "message_id": f"msg_{seed}_{n}",
                "template_id": "welcome",
                "template_version": 1,
                "journey_id": JOURNEY,
                "journey_version": 3,
                "node": "welcome_mail",
            }
            images.append(_image(f"s{n}", "mail_sent", at + timedelta(minutes=1), lead, sent))
        if rng.random() < rates[group]:
            asked = at + timedelta(days=rng.randint(1, WINDOW_DAYS - 1))
            images.append(_image(f"g{n}", "form_submitted", asked, lead, GOAL))
            if n % 3 == 0:  # asked twice: one conversion
                again = asked + timedelta(hours=1)
                images.append(_image(f"g{n}b", "form_submitted", again, lead, GOAL))
        elif group == "holdout" and n % 4 == 0:  # asked, but after the window
            late = at + timedelta(days=WINDOW_DAYS + 1)
            images.append(_image(f"g{n}", "form_submitted", late, lead, GOAL))
    goal = JourneyGoal(JOURNEY, [EventMatch(type="form_submitted", form_id="demo-request").matches],
                       WINDOW_DAYS)  # fmt: skip
    images.sort(key=lambda image: str(image["occurred_at"]))
    for start in range(0, len(images), 100):
        count_batch(
            images[start : start + 100], store=store, time_zone=JST, now=START,
            goals={JOURNEY: goal},
        )  # fmt: skip
    return store


def test_a_holdout_s_lift_is_measured_against_its_control_group_on_conversions() -> None:
    # True conversion rates: 6 % of the control group, 10 % of the leads the journey mailed
    rates = {"holdout": 0.06, "continue": 0.10}
    store = run_holdout(rates, seed=21)
    shown = experiment_report(
        JOURNEY, HOLDOUT_NODE, date(2026, 12, 1), date(2027, 2, 28), store=store
    ).as_dict()
    arms = {arm["arm"]: arm for arm in shown["arms"]}  # type: ignore[index, union-attr]
    # The control group is the baseline, and got no mail
    assert [arm["arm"] for arm in shown["arms"]] == ["holdout", "continue"]  # type: ignore[index, union-attr]
    assert arms["holdout"]["sent"] == 0
    assert arms["holdout"]["assigned"] + arms["continue"]["assigned"] == LEADS
    # Each lead converts at most once, and never after the window: the rates are near the truth
    for group, rate in rates.items():
        assert abs(arms[group]["conversion_rate"] - rate) < 0.02, arms[group]
    [lift] = shown["conversions_versus"]  # type: ignore[misc]
    assert (lift["arm"], lift["baseline"]) == ("continue", "holdout")
    low, high = lift["interval"]
    assert low <= 0.04 <= high
    assert lift["significant"] is True
    assert lift["relative_lift"] > 0


def test_conversions_count_once_per_lead_and_only_within_the_window() -> None:
    store = run_holdout({"holdout": 0.0, "continue": 1.0}, seed=22)
    totals: dict[str, int] = {}
    for key, metrics in store.rows_by_key.items():
        if key.subject == f"journey#{JOURNEY}":
            for name, n in metrics.items():
                totals[name] = totals.get(name, 0) + n
    shown = experiment_report(
        JOURNEY, HOLDOUT_NODE, date(2026, 12, 1), date(2027, 2, 28), store=store
    ).as_dict()
    arms = {arm["arm"]: arm for arm in shown["arms"]}  # type: ignore[index, union-attr]
    # Everyone mailed converted once (a third asked twice); the control group asked only late
    assert arms["continue"]["converted"] == arms["continue"]["assigned"]
    assert arms["holdout"]["converted"] == 0
    assert totals["converted"] == arms["continue"]["assigned"]


def test_the_experiment_as_csv_has_each_arm_then_each_comparison() -> None:
    from tsunagu.reports.experiments import experiment_csv

    found = experiment_report(
        JOURNEY, HOLDOUT_NODE, date(2026, 12, 1), date(2027, 2, 28),
        store=run_holdout({"holdout": 0.06, "continue": 0.10}, seed=21),
    )  # fmt: skip
    lines = experiment_csv(found).splitlines()
    assert lines[0].startswith("journey,node,version,arm,assigned,sent")
    assert [line.split(",")[3] for line in lines[1:3]] == ["holdout", "continue"]
    assert lines[3] == ""
    metrics = [line.split(",")[0] for line in lines[5:]]
    assert metrics == ["people's clicks per mail", "conversions per lead"]


def test_a_negative_difference_in_the_csv_is_a_number_a_spreadsheet_can_sort() -> None:
    # Given arm b clicking less than arm a: its difference and both ends of its interval are
    # negative
    from tsunagu.reports.experiments import experiment_csv

    found = experiment_report(
        JOURNEY, SPLIT, date(2026, 12, 1), date(2026, 12, 31),
        store=run_split({"a": 0.12, "b": 0.05}, seed=14),
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(experiment_csv(found))))
    [clicks] = [row for row in rows if row and row[0] == "people's clicks per mail"]
    difference, low, high = clicks[3:6]
    # Then they are written as the plain numbers they are, not as text ('-0.067...)
    for cell in (difference, low, high):
        assert cell.startswith("-") and float(cell) < 0, clicks
    # And nothing is written as Python's None
    assert all(cell != "None" for row in rows for cell in row)


def test_a_tiny_negative_difference_is_written_without_an_exponent() -> None:
    from tsunagu.reports.experiments import _cell

    assert _cell(-1.2e-05) == "-0.000012"
    assert _cell(0.5) == "0.5"
    assert _cell(None) == ""
    assert _cell("=rival") == "'=rival"


def test_a_split_where_nobody_clicked_says_so_rather_than_a_sample_size() -> None:
    # Nobody clicked in either arm: no difference was seen, so none can be sized (the table
    # printed "about None more mails per arm would tell").
    from tsunagu.cli_reports import experiment_table

    found = experiment_report(
        JOURNEY, SPLIT, date(2026, 12, 1), date(2026, 12, 2),
        store=run_split({"a": 0.0, "b": 0.0}, seed=14),
    )  # fmt: skip
    [versus] = found.as_dict()["versus"]  # type: ignore[misc]
    assert versus["more_mails_needed_per_arm"] is None
    table = experiment_table(found)
    assert "None" not in table
    assert "no difference observed yet, so none can be estimated" in table
