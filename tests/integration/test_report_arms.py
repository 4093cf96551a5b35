"""A journey's splits and holdouts in the counters, against histories worked out by hand: which
arm a mail and a conversion count for (the arms the lead had by then, by the consumer and by a
rebuild alike), a lead assigned once however often it enters, a holdout's control group apart
from the journey's own conversions, and a lead the CRM moves past MQL counted as one.

Days are Japan's; welcome_nurture's goal is a demo request (form demo-request).
"""

from __future__ import annotations

import json
from datetime import date, datetime

from tests.conftest import AwsStack, moto_client
from tests.integration.test_report_counters import (
    ADMIN,
    CHROME,
    JST,
    PERSON_IP,
    WELCOME_NURTURE,
    History,
    deliver,
)
from tests.support.leads import new_stream_records
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.commands import reports
from tsunagu.leads.model import LeadEvent

SPLIT_SUBJECT = "experiment#welcome_nurture#ab"


def rows(aws: AwsStack, subject: str, first: str, last: str) -> dict[tuple[str, str], dict]:
    """The subject's counter rows: (day, part) -> the metrics that are not 0."""
    repository = services.reports(aws.settings())
    found = {(k.day, k.part): {n: v for n, v in m.items() if v} for k, m in repository.rows(
        subject, first, last
    )}  # fmt: skip
    return {key: metrics for key, metrics in found.items() if metrics}


def decide(h: History, lead: str, node: str, kind: str, outcome: str, entry: str = "e1") -> None:
    """journey_decision as journey_decide stores it (one per entry of the lead)."""
    properties = {
        "journey_id": "welcome_nurture", "journey_version": 2, "node": node, "kind": kind,
        "outcome": outcome, "execution_name": entry,
        "control_group": kind == "holdout" and outcome == "holdout",
    }  # fmt: skip
    event = LeadEvent(
        f"dec_{lead}_{node}_{entry}", "journey_decision", isoformat(h.clock.now()),
        h.leads[lead], None, properties,
    )  # fmt: skip
    services.lead_repository(h.settings).put_event(event)


def stage(h: History, lead: str, was: str, to: str) -> None:
    """stage_changed as the CRM's sync stores it."""
    event = LeadEvent(
        f"stg_{lead}_{was}_{to}", "stage_changed", isoformat(h.clock.now()), h.leads[lead],
        None, {"from": was, "to": to, "by": "crm"},
    )  # fmt: skip
    services.lead_repository(h.settings).put_event(event)


def experiment(aws: AwsStack, node: str, first: date, last: date) -> dict[str, dict]:
    ports = services.report_commands(aws.settings())
    found = reports.experiment_report(ports, ADMIN, "welcome_nurture", node, first, last)
    return {arm["arm"]: arm for arm in found.as_dict()["arms"]}


def test_a_mail_sent_before_a_split_is_no_arms_also_when_the_days_are_rebuilt(
    aws: AwsStack,
) -> None:
    # Given a's welcome mail on Dec 1 09:00, opened by a at 10:00, and the split that gives a
    # arm A two days later; a clicks the welcome mail on Dec 4
    h = History(aws)
    h.at(datetime(2026, 12, 1, 9, 0, tzinfo=JST))
    welcome = h.send("a", 1, WELCOME_NURTURE)
    h.at(datetime(2026, 12, 1, 10, 0, tzinfo=JST))
    h.open(welcome, CHROME, PERSON_IP)
    h.at(datetime(2026, 12, 3, 9, 0, tzinfo=JST))
    decide(h, "a", "ab", "split", "A")
    deliver(aws, new_stream_records(aws, "EventsTable"))
    # Then arm A has a, and none of the mail sent before it
    counted = {("2026-12-03", "v2#A"): {"assigned": 1}}
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05") == counted

    # When Dec 1 is rebuilt (the lead's arm, given since, is no arm of that day's mail)
    ports = services.report_commands(aws.settings())
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 1))
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05") == counted
    # and all three days, the split's among them: a is assigned once, as the consumer counted
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 3))
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05") == counted
    # and Dec 1 again without the counted mail (a mail the counters do not have, as before
    # they kept one): the instant a's arm was given still says the mail came before it
    moto_client("dynamodb").delete_item(
        TableName=aws.settings().reports_table or "",
        Key={"pk": {"S": f"message#{welcome}"}, "sk": {"S": "-"}},
    )
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 1))
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05") == counted

    # Then a's click on Dec 4 counts for the mail and the journey, still for no arm
    h.at(datetime(2026, 12, 4, 9, 0, tzinfo=JST))
    h.click(welcome, "pricing")
    h.settle_clicks()
    deliver(aws, new_stream_records(aws, "EventsTable"))
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05") == counted
    clicked = rows(aws, "journey#welcome_nurture", "2026-12-04", "2026-12-04")
    assert clicked[("2026-12-04", "v2#welcome_mail")]["clicked_people_unique"] == 1


def test_a_holdouts_control_group_converts_in_the_experiment_not_as_the_journeys_lead(
    aws: AwsStack,
) -> None:
    # Given a in the holdout's control group (no mail) and b past it, mailed; on Dec 2 both
    # ask for a demo (the goal) and both become MQLs
    h = History(aws)
    h.at(datetime(2026, 12, 1, 9, 0, tzinfo=JST))
    decide(h, "a", "hold", "holdout", "holdout")
    decide(h, "b", "hold", "holdout", "continue")
    h.send("b", 1, WELCOME_NURTURE)
    h.at(datetime(2026, 12, 2, 9, 0, tzinfo=JST))
    for lead in "ab":
        h.form(lead, f"evt_form_{lead}", new=False, form_id="demo-request")
        stage(h, lead, "lead", "mql")
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # Then the experiment compares both groups' conversions
    arms = experiment(aws, "hold", date(2026, 12, 1), date(2026, 12, 2))
    assert {arm: (a["assigned"], a["converted"], a["mqls"]) for arm, a in arms.items()} == {
        "holdout": (1, 1, 1),
        "continue": (1, 1, 1),
    }
    # and the journey's own conversions and MQLs are b's alone: a was left alone
    ports = services.report_commands(aws.settings())
    journey = reports.journey_report(
        ports, ADMIN, "welcome_nurture", date(2026, 12, 1), date(2026, 12, 2)
    )
    [whole] = [p for p in journey.parts if p.node is None]
    assert (whole.figures.get("converted"), whole.figures.get("mql")) == (1, 1)

    # and a rebuild of both days counts the same
    before = {
        s: rows(aws, s, "2026-11-30", "2026-12-03")
        for s in ("journey#welcome_nurture", "experiment#welcome_nurture#hold")
    }
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 2))
    assert {s: rows(aws, s, "2026-11-30", "2026-12-03") for s in before} == before


def test_a_lead_entering_a_split_again_is_assigned_once(aws: AwsStack) -> None:
    # Given a split into arm A on Dec 1 (first entry), again on Dec 3 (second entry: the same
    # arm, drawn from the lead), and a's demo request on Dec 4
    h = History(aws)
    h.at(datetime(2026, 12, 1, 9, 0, tzinfo=JST))
    decide(h, "a", "ab", "split", "A", entry="e1")
    h.at(datetime(2026, 12, 3, 9, 0, tzinfo=JST))
    decide(h, "a", "ab", "split", "A", entry="e2")
    h.at(datetime(2026, 12, 4, 9, 0, tzinfo=JST))
    h.form("a", "evt_goal", new=False, form_id="demo-request")
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # Then one lead, who converted: 100 %, not 50 %
    [arm] = experiment(aws, "ab", date(2026, 12, 1), date(2026, 12, 5)).values()
    assert (arm["assigned"], arm["converted"], arm["conversion_rate"]) == (1, 1, 1.0)
    # (the journey's node: two decisions, one lead assigned)
    node = rows(aws, "journey#welcome_nurture", "2026-12-01", "2026-12-05")
    assert node[("2026-12-01", "v2#ab")] == {"decided": 1, "outcome:A": 1, "assigned": 1}
    assert node[("2026-12-03", "v2#ab")] == {"decided": 1, "outcome:A": 1}

    # And a rebuild of the second entry's day alone, or of every day, counts the same
    counted = rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05")
    ports = services.report_commands(aws.settings())
    reports.rebuild(ports, ADMIN, date(2026, 12, 3), date(2026, 12, 3))
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05") == counted
    reports.rebuild(ports, ADMIN, date(2026, 12, 1), date(2026, 12, 4))
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-05") == counted


def test_a_lead_the_crm_moves_past_mql_became_an_mql_for_the_journey_as_for_the_funnel(
    aws: AwsStack,
) -> None:
    # Given c already an SQL before the journey; a, b and c get the welcome mail on Dec 1
    h = History(aws)
    h.at(datetime(2026, 11, 20, 9, 0, tzinfo=JST))
    stage(h, "c", "lead", "sql")
    h.at(datetime(2026, 12, 1, 9, 0, tzinfo=JST))
    for lead in "abc":
        h.send(lead, 1, WELCOME_NURTURE)
    # When on Dec 2 the CRM makes a an MQL, moves b straight to SQL, and c on to opportunity
    h.at(datetime(2026, 12, 2, 9, 0, tzinfo=JST))
    stage(h, "a", "lead", "mql")
    stage(h, "b", "lead", "sql")
    stage(h, "c", "sql", "opportunity")
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # Then the funnel has three leads that reached MQL (c in November), and the journey the
    # two that became MQLs in its window (c was one before)
    funnel = rows(aws, "funnel", "2000-01-01", "2999-12-31")
    assert sum(m.get("reached:mql", 0) for m in funnel.values()) == 3
    journey = rows(aws, "journey#welcome_nurture", "2026-12-01", "2026-12-03")
    assert journey[("2026-12-02", "v2")] == {"mql": 2}


def test_a_lead_counted_before_arms_had_instants_is_counted_on_not_refused(
    aws: AwsStack,
) -> None:
    # Given a's membership as the counters stored it before they kept when an arm was given
    # (a in arm A of the split, since Nov 30)
    h = History(aws)
    state = {"arms": {"ab": "A"}, "since": "2026-11-30T00:00:00.000Z", "version": 2,
             "reached": {}}  # fmt: skip
    moto_client("dynamodb").put_item(
        TableName=aws.settings().reports_table or "",
        Item={
            "pk": {"S": f"assignment#welcome_nurture#{h.leads['a']}"},
            "sk": {"S": "-"},
            "journey_id": {"S": "welcome_nurture"},
            "lead_id": {"S": h.leads["a"]},
            "state": {"S": json.dumps(state, sort_keys=True)},
        },
    )
    # When a is mailed and asks for a demo on Dec 1, and enters the split again on Dec 2
    h.at(datetime(2026, 12, 1, 9, 0, tzinfo=JST))
    h.send("a", 1, WELCOME_NURTURE)
    h.form("a", "evt_goal", new=False, form_id="demo-request")
    h.at(datetime(2026, 12, 2, 9, 0, tzinfo=JST))
    decide(h, "a", "ab", "split", "A", entry="e2")
    deliver(aws, new_stream_records(aws, "EventsTable"))

    # Then the mail and the conversion count for arm A (given before anything counted now),
    # and the second entry assigns nobody again
    assert rows(aws, SPLIT_SUBJECT, "2026-11-30", "2026-12-03") == {
        ("2026-12-01", "v2#A"): {"sent": 1, "converted": 1},
    }
