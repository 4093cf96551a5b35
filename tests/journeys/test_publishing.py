"""Publishing a journey without a deploy: a journey that is not in template.yaml published on
the local runtime, a lead entered, version 2 published while that lead waits, a second lead
entered. Each lead finishes on the version it started on; a rollback sends new entries back to
version 1; a definition that does not validate publishes nothing.

Both versions send the welcome mail, wait two business days, then send a second mail: version
1 the getting-started guide, version 2 the customer stories. Which second mail a lead got is
which version it ran.

Then journeys with decisions (branch, holdout, split) and with the nodes that tell sales
(update_lead, notify_owner, webhook), published on the same runtime, whose CRM webhook is a
small CRM this module serves on 127.0.0.1 (tests.support.crm).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.journeys.harness import Runtime, import_lead, jst, sent_mails
from tests.support.crm import Crm
from tsunagu import services
from tsunagu.clock import parse_instant
from tsunagu.qualification.crm import verify_signature
from tsunagu_local.seed import DEMO_SALES_TEAM, seed_qualification

JOURNEY = "spring_webinar"
MONDAY_MORNING = jst(2026, 12, 7, 9)
FIRST, SECOND, THIRD = (f"{who}@example.jp" for who in ("aoki", "baba", "chiba"))


def definition(second_mail: str) -> dict[str, Any]:
    return {
        "$format": "tsunagu.journey/1",
        "journey_id": JOURNEY,
        "name": "Spring webinar follow-up",
        "description": "A welcome, and two business days later a second mail.",
        "start": "welcome",
        "nodes": [
            {"id": "welcome", "kind": "send", "label": "the welcome mail",
             "template": "welcome", "next": "before_second"},
            {"id": "before_second", "kind": "wait", "label": "the second mail",
             "rule": {"kind": "business_days_later", "days": 2, "at": "10:00"},
             "next": "second"},
            {"id": "second", "kind": "send", "label": "the second mail",
             "template": second_mail},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def runtime(crm: Crm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    workdir = tmp_path_factory.mktemp("publishing")
    started = Runtime.launch(
        "publishing",
        workdir,
        clock_start=MONDAY_MORNING.isoformat(),
        options=("--no-demo", "--parameter", f"CrmWebhookUrl={crm.url}"),
    )
    try:
        started.wait_ready()
        started.cli_ok("journeys", "install", "--site-url", "https://www.example.com")
        # The demo's sales team takes leads in turn (--no-demo left the owner rules out)
        seed_qualification(services.qualification_repository(started.settings))
        yield started
    finally:
        started.stop()


def publish(runtime: Runtime, second_mail: str, note: str) -> str:
    path = runtime.workdir / f"{JOURNEY}-{second_mail}.json"
    path.write_text(json.dumps(definition(second_mail)), encoding="utf-8")
    return runtime.cli_ok("journeys", "publish", str(path), "--note", note)


def enter(runtime: Runtime, email: str, journey_id: str = JOURNEY) -> str:
    output = runtime.cli_ok("journeys", "start", journey_id, "--lead", email)
    [arn] = [word.strip("()") for word in output.split() if word.startswith("(arn:")]
    return arn


def version_of(runtime: Runtime, execution_arn: str) -> str:
    described = runtime.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return str(described["stateMachineVersionArn"]).rsplit(":", 1)[1]


def second_mails(runtime: Runtime, lead_id: str) -> list[str]:
    return [m.template_id for m in sent_mails(runtime, lead_id) if m.template_id != "welcome"]


def test_each_lead_finishes_on_the_version_it_started_on(runtime: Runtime) -> None:
    leads = {email: import_lead(runtime, email, "テスト 太郎") for email in (FIRST, SECOND)}
    # Given the journey, which template.yaml does not have, published as version 1
    assert f"{JOURNEY}: version 1 is live" in publish(runtime, "welcome-getting-started", "v1")
    # ... and a lead entered, who has had the welcome mail and waits for the second
    first = enter(runtime, FIRST)
    runtime.settle()
    assert [m.template_id for m in sent_mails(runtime, leads[FIRST])] == ["welcome"]

    # When version 2 is published while that lead waits, and a second lead enters
    published = publish(runtime, "welcome-customer-stories", "customer stories instead")
    assert f"{JOURNEY}: version 2 is live" in published
    second = enter(runtime, SECOND)
    runtime.advance_by(timedelta(days=4))

    # Then the first lead finished on version 1 and the second on version 2
    assert runtime.history(first).status == "SUCCEEDED"
    assert runtime.history(second).status == "SUCCEEDED"
    assert version_of(runtime, first) == "1"
    assert version_of(runtime, second) == "2"
    assert second_mails(runtime, leads[FIRST]) == ["welcome-getting-started"]
    assert second_mails(runtime, leads[SECOND]) == ["welcome-customer-stories"]
    # ... and the versions are listed, newest first, with what changed
    versions = runtime.cli_ok("journeys", "versions", JOURNEY).splitlines()
    assert [line.split("\t")[0] for line in versions] == ["2", "1"]
    assert versions[0].endswith("live\tcustomer stories instead")


def test_publishing_the_same_definition_again_publishes_nothing(runtime: Runtime) -> None:
    before = runtime.cli_ok("journeys", "versions", JOURNEY)
    current = json.loads(runtime.cli_ok("journeys", "show", JOURNEY))["published"]["version"]
    mail = "welcome-customer-stories" if current == 2 else "welcome-getting-started"
    assert f"{JOURNEY}: unchanged, version {current} is live" in publish(runtime, mail, "again")
    assert runtime.cli_ok("journeys", "versions", JOURNEY) == before


def test_a_rollback_sends_new_entries_to_the_earlier_version(runtime: Runtime) -> None:
    lead_id = import_lead(runtime, THIRD, "テスト 花子")
    assert f"{JOURNEY}: version 1 is live" in runtime.cli_ok(
        "journeys", "rollback", JOURNEY, "--to", "1"
    )
    third = enter(runtime, THIRD)
    runtime.advance_by(timedelta(days=7))  # two business days, over a weekend
    assert version_of(runtime, third) == "1"
    assert second_mails(runtime, lead_id) == ["welcome-getting-started"]
    assert "1\t" in runtime.cli_ok("journeys", "versions", JOURNEY)


def test_a_definition_that_does_not_validate_publishes_nothing(runtime: Runtime) -> None:
    before = runtime.cli_ok("journeys", "versions", JOURNEY)
    broken = definition("no-such-template")
    path: Path = runtime.workdir / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    done = runtime.cli("journeys", "publish", str(path))
    assert done.returncode == 1
    assert "nothing was published" in done.stderr
    assert "second" in done.stderr and "no-such-template" in done.stderr, done.stderr
    assert runtime.cli_ok("journeys", "versions", JOURNEY) == before


# ---------------------------------------------------------------- decisions
DECIDING = "pricing_follow_up"
TAGGED = "dai@example.jp"
UNTAGGED = tuple(f"lead{n}@example.jp" for n in range(8))


def deciding_definition() -> dict[str, Any]:
    return {
        "$format": "tsunagu.journey/1",
        "journey_id": DECIDING,
        "description": "Pricing readers get the offer; the others an A/B test, less a control.",
        "start": "interest",
        "nodes": [
            {"id": "interest", "kind": "branch", "label": "the pricing interest",
             "cases": [{"outcome": "pricing", "when": "tag=interest:pricing", "next": "offer"}],
             "default": "control"},
            {"id": "control", "kind": "holdout", "label": "the control group", "percent": 25,
             "next": "subject_test"},
            {"id": "subject_test", "kind": "split", "label": "the second-mail test",
             "paths": [{"outcome": "guide", "percent": 50, "next": "guide"},
                       {"outcome": "stories", "percent": 50, "next": "stories"}]},
            {"id": "offer", "kind": "send", "label": "the offer",
             "template": "welcome-campaign-offer"},
            {"id": "guide", "kind": "send", "label": "the guide",
             "template": "welcome-getting-started"},
            {"id": "stories", "kind": "send", "label": "the stories",
             "template": "welcome-customer-stories"},
        ],
    }  # fmt: skip


def expected_path(lead_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(node, outcome) decisions and mails for an untagged lead, from the draws themselves."""
    from tsunagu.journeys.decisions import draw

    decisions = [("interest", "default")]
    if draw(DECIDING, "control", lead_id) < 25:
        return [*decisions, ("control", "holdout")], []
    decisions.append(("control", "continue"))
    if draw(DECIDING, "subject_test", lead_id) < 50:
        return [*decisions, ("subject_test", "guide")], ["welcome-getting-started"]
    return [*decisions, ("subject_test", "stories")], ["welcome-customer-stories"]


def test_branch_holdout_and_split_decide_per_lead_and_say_why(runtime: Runtime) -> None:
    path = runtime.workdir / f"{DECIDING}.json"
    path.write_text(json.dumps(deciding_definition()), encoding="utf-8")
    runtime.cli_ok("journeys", "publish", str(path))
    leads = {TAGGED: import_lead(runtime, TAGGED, "テスト 大", tags=["interest:pricing"])}
    leads.update({email: import_lead(runtime, email, "テスト 次郎") for email in UNTAGGED})
    for email in leads:
        runtime.cli_ok("journeys", "start", DECIDING, "--lead", email)
    runtime.settle()

    def decisions(lead_id: str) -> list[tuple[str, str]]:
        """In the order the journey took them (all at one simulated instant: nothing waits)."""
        found = [e for e in runtime.events(lead_id) if e.type == "journey_decision"]
        order = [n["id"] for n in deciding_definition()["nodes"]]
        ordered = sorted(found, key=lambda e: (e.occurred_at, order.index(e.properties["node"])))
        return [(str(e.properties["node"]), str(e.properties["outcome"])) for e in ordered]

    def mails(lead_id: str) -> list[str]:
        return [m.template_id for m in sent_mails(runtime, lead_id)]

    # The tagged lead: the branch's case, with the tags it read
    assert decisions(leads[TAGGED]) == [("interest", "pricing")]
    assert mails(leads[TAGGED]) == ["welcome-campaign-offer"]
    # Every other lead: the default, then its own draws, the same as the domain computes them
    # (the rates over many leads: tests/unit/test_journey_decisions.py)
    for email in UNTAGGED:
        expected_decisions, expected_mails = expected_path(leads[email])
        assert decisions(leads[email]) == expected_decisions, email
        assert mails(leads[email]) == expected_mails, email
    # ... and the timeline says why
    timeline = runtime.cli_ok("leads", "timeline", TAGGED)
    assert f"{DECIDING}.interest -> pricing" in timeline
    assert "tag=['interest:pricing']" in timeline


# ---------------------------------------------------------------- telling sales
TELLING = "pricing_hand_raise"
MESSAGE = "料金ページから問い合わせがありました。1営業日以内にご連絡ください。"
RAISED, UNREACHABLE = "eri@example.jp", "down.fumi@example.jp"  # the CRM always fails "down"


def telling_definition() -> dict[str, Any]:
    return {
        "$format": "tsunagu.journey/1",
        "journey_id": TELLING,
        "description": "A lead who asked for pricing is marked, its owner told, the CRM told.",
        "start": "mark",
        "nodes": [
            {"id": "mark", "kind": "update_lead",
             "label": "Mark the lead as a pricing hand-raiser", "stage": "sql",
             "add_tags": ["hand-raiser"], "fields": {"interest": "pricing"},
             "next": "tell_owner"},
            {"id": "tell_owner", "kind": "notify_owner",
             "label": "Tell the owner the lead asked for pricing", "message": MESSAGE,
             "next": "tell_crm"},
            {"id": "tell_crm", "kind": "webhook",
             "label": "Tell the CRM the lead asked for pricing",
             "event": "lead.asked_for_pricing", "next": "done"},
            {"id": "done", "kind": "end", "label": "The hand-raiser is with sales"},
        ],
    }  # fmt: skip


def test_update_lead_notify_owner_and_webhook_tell_sales_and_the_crm(
    runtime: Runtime, crm: Crm
) -> None:
    path = runtime.workdir / f"{TELLING}.json"
    path.write_text(json.dumps(telling_definition(), ensure_ascii=False), encoding="utf-8")
    runtime.cli_ok("journeys", "publish", str(path))
    leads = {email: import_lead(runtime, email, "テスト 恵理") for email in (RAISED, UNREACHABLE)}
    runs = {email: enter(runtime, email, TELLING) for email in leads}
    runtime.advance_by(timedelta(hours=1))  # past every retry of the failing call (930 s)

    for email, lead_id in leads.items():
        # Both leads went all the way: the failing call did not strand the second
        assert runtime.history(runs[email]).status == "SUCCEEDED", email
        lead = runtime.lead(lead_id)
        # update_lead: stage, tag and field, each said on the lead
        assert lead.stage == "sql" and "hand-raiser" in lead.tags
        assert lead.fields["interest"].value == "pricing"
        kinds = [e.type for e in runtime.events(lead_id)]
        assert "stage_changed" in kinds and "lead_updated" in kinds
        # notify_owner: one mail to the owner the owner rules gave it, never to the lead
        owner = lead.fields["owner_email"].value
        assert owner in DEMO_SALES_TEAM
        to_owner = [
            m for m in runtime.mail_viewer()
            if m["subject"].startswith(f"[{TELLING}] テスト 恵理") and email in (m["text"] or "")
        ]  # fmt: skip
        assert len(to_owner) == 1, to_owner
        assert to_owner[0]["recipients"] == [owner]
        assert to_owner[0]["text"].startswith(MESSAGE)
        assert sent_mails(runtime, lead_id) == []
        assert kinds.count("owner_notified") == 1

    # webhook: the lead, signed, with the node's event, the journey and one delivery id
    [taken] = crm.of(RAISED)
    assert taken.answered == 200
    verify_signature(
        services.crm_signing_key(runtime.settings),
        taken.headers["x-tsunagu-timestamp"],
        taken.body,
        taken.headers["x-tsunagu-signature"],
        now=parse_instant(taken.sent_at.isoformat()),
    )
    assert taken.payload["type"] == "lead.asked_for_pricing"
    assert taken.payload["journey"] == {"journey_id": TELLING, "node": "tell_crm"}
    assert taken.payload["lead_id"] == leads[RAISED] and taken.payload["stage"] == "sql"
    assert taken.payload["delivery_id"].startswith(runs[RAISED])
    # ... retried with backoff when the CRM fails (the same delivery id each time), then parked
    attempts = crm.of(UNREACHABLE)
    assert len(attempts) == 6 and {a.answered for a in attempts} == {500}
    assert len({a.payload["delivery_id"] for a in attempts}) == 1
    gaps = [(b.sent_at - a.sent_at).total_seconds() for a, b in pairwise(attempts)]
    assert gaps == [30, 60, 120, 240, 480]
    parked = [
        json.loads(line)
        for line in runtime.cli_ok("crm", "pushes").splitlines()
        if leads[UNREACHABLE] in line
    ]
    assert [(p["type"], p["journey"]["node"]) for p in parked] == [
        ("lead.asked_for_pricing", "tell_crm")
    ]
    assert "the CRM answered 500" in json.dumps(parked[0]["error"])


# ---------------------------------------------------------------- one real lead's dry run
def test_the_dry_run_of_one_real_lead_reads_its_tags_and_consent_and_sends_nothing(
    runtime: Runtime,
) -> None:
    path = runtime.workdir / f"{DECIDING}-forecast.json"
    path.write_text(json.dumps(deciding_definition()), encoding="utf-8")
    tagged = import_lead(runtime, "gen@example.jp", "テスト 玄", tags=["interest:pricing"])
    events_before = runtime.events(tagged)

    output = runtime.cli_ok(
        "journeys", "simulate", str(path), "--lead", "GEN@example.jp",
        "--start", "2026-12-21T09:30:00+09:00", "--days", "10",
    )  # fmt: skip

    assert f"dry run of {DECIDING} for gen@example.jp: entering 12-21 Mon 09:30" in output
    steps = [line.split(None, 4)[3:] for line in output.splitlines() if line[:2] == "12"]
    assert steps[:2] == [
        ["interest", "-> pricing (tag=['interest:pricing'])"],
        ["offer", "sends welcome-campaign-offer"],
    ], output
    # Nothing happened to the lead: no mail, no decision, no entry
    assert sent_mails(runtime, tagged) == []
    assert runtime.events(tagged) == events_before
    # A lead that does not exist is said so
    missing = runtime.cli("journeys", "simulate", str(path), "--lead", "nobody@example.jp")
    assert missing.returncode == 1
    assert "no lead with the address nobody@example.jp" in missing.stderr


def test_the_dry_run_of_a_lead_sales_has_ends_at_the_step_gate_before_its_tag(
    runtime: Runtime,
) -> None:
    # Given a lead sales already has (its CRM status is one the journey exits on by default)
    # and a journey that tags the lead and tells its owner before it mails
    taken = import_lead(runtime, "negotiating@example.jp", "テスト 商談")
    runtime.cli_ok("leads", "set", "negotiating@example.jp", "--crm-status", "商談中")
    definition = {
        **deciding_definition(),
        "start": "tag",
        "nodes": [
            {"id": "tag", "kind": "update_lead", "label": "Tag the lead",
             "add_tags": ["nurtured"], "next": "owner"},
            {"id": "owner", "kind": "notify_owner", "label": "Tell the owner",
             "message": "a lead in the nurture", "next": "offer"},
            *deciding_definition()["nodes"][3:4],
        ],
    }  # fmt: skip
    path = runtime.workdir / f"{DECIDING}-sales-has-it.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    events_before = runtime.events(taken)

    # When the marketer dry-runs the journey for it
    output = runtime.cli_ok(
        "journeys", "simulate", str(path), "--lead", "negotiating@example.jp",
        "--start", "2026-12-21T09:30:00+09:00", "--days", "10",
    )  # fmt: skip

    # Then the dry run ends where the state machine's step gate ends it: before the tag
    steps = [line.split(None, 4)[3:] for line in output.splitlines() if line[:2] == "12"]
    assert steps == [["tag", "leaves the journey before Tag the lead: crm_status"]], output
    assert "the journey ends for this lead within that time" in output
    assert sent_mails(runtime, taken) == [] and runtime.events(taken) == events_before
