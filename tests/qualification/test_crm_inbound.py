"""POST /crm/leads (crm_webhook) under moto: what is refused changes nothing, what is signed is
merged by policy with its conflicts reported, the CRM id becomes one of the lead's identities,
and the lead's stage history says who moved it - the score rule, then the CRM."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.qualification.conftest import Qualified, crm_body, plain, run_cli
from tsunagu.journeys.model import ExitConditions, Journey
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.crm import FieldPolicy, MergePolicy, signature_header

LEAD = "hanako.sato@example.jp"
CRM_ID = "0065g00000XyZ12AAB"
SALES_OWNER = "sales.sato@example.com"
CRM_OWNER = "kenji.tanaka@example.com"


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(response["body"])
    return parsed


def in_negotiation(**changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "crm_id": CRM_ID,
        "email": LEAD,
        "status": "商談中",
        "owner": CRM_OWNER,
        "deal_amount": 1200000,
        "currency": "JPY",
        "updated_at": "2026-11-30T01:00:00Z",
        **changes,
    }
    return crm_body(**{k: v for k, v in fields.items() if v is not None})


def identities(q: Qualified) -> dict[str, str]:
    return {
        i["identity"]: i["lead_id"] for i in (plain(r) for r in q.raw_items("LeadIdentitiesTable"))
    }


@pytest.fixture
def lead_id(qualified: Qualified) -> str:
    """A lead from the demo form, known to Tsunagu only (no CRM id yet)."""
    lead = qualified.capture(LEAD)
    qualified.deliver()
    return lead


# ---------------------------------------------------------------- refused, and nothing changes

Request = tuple[bytes, dict[str, str]]


def bad_signature(q: Qualified) -> Request:
    body = in_negotiation()
    headers = q.signed_headers(body)
    other_key = secrets.token_bytes(32)
    headers["x-tsunagu-signature"] = signature_header(
        other_key, headers["x-tsunagu-timestamp"], body
    )
    return body, headers


def signed_for_another_body(q: Qualified) -> Request:
    headers = q.signed_headers(in_negotiation(status="won"))
    return in_negotiation(), headers


def no_signature(q: Qualified) -> Request:
    body = in_negotiation()
    headers = q.signed_headers(body)
    del headers["x-tsunagu-signature"]
    return body, headers


def no_timestamp(q: Qualified) -> Request:
    body = in_negotiation()
    headers = q.signed_headers(body)
    del headers["x-tsunagu-timestamp"]
    return body, headers


def signed_long_ago(q: Qualified) -> Request:
    body = in_negotiation()
    return body, q.signed_headers(body, at=q_now(q) - timedelta(minutes=6))


def signed_in_the_future(q: Qualified) -> Request:
    body = in_negotiation()
    return body, q.signed_headers(body, at=q_now(q) + timedelta(minutes=6))


def malformed_json(q: Qualified) -> Request:
    body = b'{"crm_id": "0065g00000XyZ12AAB", "email": '
    return body, q.signed_headers(body)


def json_but_not_an_object(q: Qualified) -> Request:
    body = b'[{"crm_id": "0065g00000XyZ12AAB"}]'
    return body, q.signed_headers(body)


def wrong_content_type(q: Qualified) -> Request:
    body = in_negotiation()
    headers = q.signed_headers(body)
    headers["content-type"] = "text/plain"
    return body, headers


def oversized(q: Qualified) -> Request:
    body = in_negotiation(status="in negotiation " + "x" * 17_000)
    return body, q.signed_headers(body)


def unknown_field(q: Qualified) -> Request:
    body = in_negotiation(probability=0.8)
    return body, q.signed_headers(body)


def negative_amount(q: Qualified) -> Request:
    body = in_negotiation(deal_amount=-5)
    return body, q.signed_headers(body)


def unknown_lead(q: Qualified) -> Request:
    body = in_negotiation(crm_id="0065g00000Unknown1", email="nobody@example.jp")
    return body, q.signed_headers(body)


def dated_after_it_was_signed(q: Qualified) -> Request:
    # A CRM's bug (milliseconds read as seconds, a 2099-12-31 default): kept, it would make every
    # real update of the record look older than it, and be refused, until 2099
    body = in_negotiation(updated_at="2099-12-31T00:00:00Z")
    return body, q.signed_headers(body)


def q_now(q: Qualified) -> datetime:
    """Real time: the webhook's replay window is checked against it."""
    return datetime.now(UTC)


REFUSALS: list[tuple[Callable[[Qualified], Request], int, str]] = [
    (bad_signature, 401, "does not match"),
    (signed_for_another_body, 401, "does not match"),
    (no_signature, 401, "signature header"),
    (no_timestamp, 401, "timestamp"),
    (signed_long_ago, 401, "more than 300 seconds"),
    (signed_in_the_future, 401, "more than 300 seconds"),
    (malformed_json, 400, "JSON"),
    (json_but_not_an_object, 400, "JSON object"),
    (wrong_content_type, 415, "application/json"),
    (oversized, 413, "larger than"),
    (unknown_field, 422, "probability"),
    (negative_amount, 422, "deal_amount"),
    (unknown_lead, 404, "nobody@example.jp"),
    (dated_after_it_was_signed, 422, "updated_at: 2099-12-31T00:00:00"),
]


@pytest.mark.parametrize(
    ("make", "status", "said"), REFUSALS, ids=[r[0].__name__ for r in REFUSALS]
)
def test_a_refused_request_says_why_and_changes_nothing(
    qualified: Qualified,
    lead_id: str,
    make: Callable[[Qualified], Request],
    status: int,
    said: str,
) -> None:
    q = qualified
    body, headers = make(q)
    before = q.snapshot()

    response = q.crm_post(body, headers)

    assert response["statusCode"] == status, response
    assert said in body_of(response)["message"], body_of(response)
    assert q.snapshot() == before


def test_a_replayed_request_is_409_and_changes_nothing(qualified: Qualified, lead_id: str) -> None:
    q = qualified
    body = in_negotiation()
    headers = q.signed_headers(body)
    assert q.crm_post(body, headers)["statusCode"] == 200
    before = q.snapshot()

    # When someone who captured the request sends it again, within the five minutes
    replayed = q.crm_post(body, headers)

    assert replayed["statusCode"] == 409, replayed
    assert "already received" in body_of(replayed)["message"]
    assert q.snapshot() == before


def test_an_update_dated_after_its_request_is_refused_and_the_crms_next_one_applies(
    qualified: Qualified, lead_id: str
) -> None:
    q = qualified
    signed_at = q_now(q).replace(microsecond=0)
    # Given an update dated later than its request was signed, beyond the clocks' tolerance
    late = in_negotiation(
        status="working", updated_at=(signed_at + timedelta(minutes=6)).isoformat()
    )
    refused = q.crm_post(late, q.signed_headers(late, at=signed_at))
    assert refused["statusCode"] == 422, refused
    assert "later than the request was signed" in body_of(refused)["message"]

    # When the CRM then reports the deal in negotiation, dated within the tolerance of its
    # request (the two clocks may differ by that much)
    body = in_negotiation(updated_at=(signed_at + timedelta(minutes=5)).isoformat())
    answer = q.crm_post(body, q.signed_headers(body, at=signed_at))

    # Then it is applied: the refused one left nothing that makes it look older
    assert answer["statusCode"] == 200, answer
    assert body_of(answer)["conflicts"] == []
    assert q.lead(lead_id)["crm_status"] == "in negotiation"


# ---------------------------------------------------------------- applied by policy


def test_a_signed_update_is_merged_by_policy_and_reports_what_it_kept(
    qualified: Qualified, lead_id: str, cli_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = qualified
    # Given sales set the owner in Tsunagu, after the CRM's record last changed
    run_cli("leads", "set", LEAD, "--field", f"owner_email={SALES_OWNER}", capsys=capsys)

    # When the CRM reports: in negotiation (in Japanese), another owner, a deal, its record id
    body = in_negotiation(updated_at="2026-11-30T01:00:00Z")
    response = q.crm_post(body, q.signed_headers(body))

    # Then status, deal and id are the CRM's (crm_wins); the owner is kept (Tsunagu's is newer)
    assert response["statusCode"] == 200, response
    result = body_of(response)
    assert result["lead_id"] == lead_id
    assert result["changed"] == ["crm_id", "crm_status", "deal_amount", "deal_currency"]
    assert result["stage"] == "opportunity"
    assert result["conflicts"] == [
        {
            "field": "owner",
            "kept": SALES_OWNER,
            "kept_from": "sales",
            "offered": CRM_OWNER,
            "reason": "policy newest_wins: Tsunagu's value is newer",
        }
    ]
    lead = q.lead(lead_id)
    assert lead["crm_status"] == "in negotiation"
    assert lead["fields"]["owner_email"]["value"] == SALES_OWNER
    assert lead["fields"]["deal_amount"]["value"] == "1200000"
    assert (lead["fields"]["crm_id"]["value"], lead["fields"]["crm_id"]["source"]) == (
        CRM_ID,
        "crm",
    )
    kinds = [e["type"] for e in q.events(lead_id) if e["properties"].get("by") == "crm"]
    assert sorted(kinds) == ["crm_conflict", "crm_status_changed", "lead_updated", "stage_changed"]
    # And the CRM id is one of the lead's identities
    assert identities(q)[f"crm:{CRM_ID}"] == lead_id

    # When the CRM later reports the deal won, under an address Tsunagu has never seen, with a
    # newer owner
    later = in_negotiation(
        email="h.sato@example.com",
        status="Closed Won",
        deal_amount="1350000.50",
        updated_at="2026-12-02T03:00:00Z",
    )
    response = q.crm_post(later, q.signed_headers(later))

    # Then it finds the lead by its CRM id, and now the owner is the CRM's (newest wins)
    assert response["statusCode"] == 200, response
    result = body_of(response)
    assert result["lead_id"] == lead_id
    assert result["stage"] == "customer"
    assert result["conflicts"] == []
    assert result["changed"] == ["crm_status", "deal_amount", "owner_email"]
    lead = q.lead(lead_id)
    assert lead["email"] == LEAD
    assert lead["fields"]["owner_email"]["value"] == CRM_OWNER
    assert lead["fields"]["deal_amount"]["value"] == "1350000.50"
    assert "email:h.sato@example.com" not in identities(q)


def test_stage_history_names_the_rule_then_the_crm_and_the_score_is_explained(
    qualified: Qualified, cli_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = qualified
    # Given a lead who crosses 70 by the rules: the form, four opens, a seminar, four opens
    lead_id = q.capture(LEAD)
    for n in range(4):
        q.open_mail(lead_id, f"msg_{n}")
    q.record(lead_id, "seminar_attended")
    for n in range(4, 8):
        q.open_mail(lead_id, f"msg_{n}")
    q.deliver()
    assert q.lead(lead_id)["stage"] == "mql"

    # When the CRM says sales is negotiating
    body = in_negotiation(owner=None)
    assert q.crm_post(body, q.signed_headers(body))["statusCode"] == 200
    q.deliver()

    # Then the history has both moves, each with who or what made it, in order
    history = q.lead(lead_id)["stage_history"]
    assert [(h["from"], h["to"]) for h in history] == [("lead", "mql"), ("mql", "opportunity")]
    assert history[0]["by"].startswith("rule: score 70 >= 70")
    assert history[1]["by"] == "crm"
    assert history[0]["at"] <= history[1]["at"]
    moves = [e["properties"] for e in q.events(lead_id, "stage_changed")]
    assert [(m["to"], m["by"]) for m in moves] == [(h["to"], h["by"]) for h in history]
    # And becoming an opportunity hands nobody to sales again
    assert len(q.hand_offs()) == 1

    # When marketing asks why the lead scored what it did
    explained = json.loads(run_cli("leads", "score", LEAD, "--json", capsys=capsys))

    # Then every line is an event and a rule, and the lines add up to the score
    assert explained["stage"] == "opportunity"
    assert explained["score"] == 70 == float(q.lead(lead_id)["score"])
    assert sum(line["decayed"] for line in explained["lines"]) == explained["score"]
    assert sorted(line["rule_id"] for line in explained["lines"]) == sorted(
        ["form-submitted", "seminar-attended"] + ["mail-opened"] * 8
    )
    scored_events = {e["event_id"] for e in q.events(lead_id) if e["type"] != "score_changed"}
    assert {line["event_id"] for line in explained["lines"]} <= scored_events
    text = run_cli("leads", "score", LEAD, capsys=capsys)
    assert "score 70 (MQL at 70)" in text
    assert "stage: " in text and "mql -> opportunity  by crm" in text


# ---------------------------------------------------------------- one status, whoever names it


def test_a_journey_exit_typed_as_the_crm_says_it_lets_go_when_the_crm_says_it(
    qualified: Qualified, lead_id: str
) -> None:
    q = qualified
    # Given a journey whose exit a Japanese team typed in its CRM's word
    journey = Journey(
        journey_id="welcome",
        name="Welcome",
        state_machine="welcome",
        exit=ExitConditions(crm_statuses=["商談中"]),
    )

    # When the CRM reports the lead 商談中 (kept as "in negotiation")
    body = in_negotiation(owner=None)
    assert q.crm_post(body, q.signed_headers(body))["statusCode"] == 200

    # Then the journey's exit recognises the status Tsunagu kept
    assert q.lead(lead_id)["crm_status"] == "in negotiation"
    assert journey.leaves_on_crm_status(q.lead(lead_id)["crm_status"])


def test_a_status_a_rep_sets_in_japanese_is_kept_as_the_crms_and_ends_nurture(
    qualified: Qualified, lead_id: str, cli_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = qualified
    # When a rep marks the lead 商談中 from the CLI
    run_cli("leads", "set", LEAD, "--crm-status", "商談中", capsys=capsys)

    # Then it is kept as the CRM's 商談中 is, and the default exit of every journey sees it
    status = q.lead(lead_id)["crm_status"]
    assert status == "in negotiation"
    (changed,) = q.events(lead_id, "crm_status_changed")
    assert changed["properties"]["to"] == "in negotiation"
    assert Journey(journey_id="w", name="W", state_machine="w").leaves_on_crm_status(status)


@pytest.mark.parametrize("policy", ["tsunagu_wins", "newest_wins"])
def test_the_status_policy_keeps_a_status_sales_set_in_tsunagu(
    qualified: Qualified,
    lead_id: str,
    cli_here: Path,
    capsys: pytest.CaptureFixture[str],
    policy: FieldPolicy,
) -> None:
    q = qualified
    q.save_config(QualificationConfig(crm_merge=MergePolicy(status=policy)))
    # Given sales set the status in Tsunagu (the clock: 2026-12-01T01:00Z)
    run_cli("leads", "set", LEAD, "--crm-status", "商談中", capsys=capsys)

    # When the CRM reports another status, changed in its record the day before
    body = in_negotiation(status="working", owner=None, updated_at="2026-11-30T01:00:00Z")
    response = q.crm_post(body, q.signed_headers(body))

    # Then the policy keeps Tsunagu's status, and says so as a conflict
    assert response["statusCode"] == 200, response
    result = body_of(response)
    assert [(c["field"], c["kept"], c["kept_from"]) for c in result["conflicts"]] == [
        ("status", "in negotiation", "sales")
    ]
    assert "crm_status" not in result["changed"]
    lead = q.lead(lead_id)
    assert (lead["crm_status"], lead["crm_status_source"]) == ("in negotiation", "sales")


def test_under_crm_wins_the_crms_status_replaces_one_set_in_tsunagu_and_says_who_set_it(
    qualified: Qualified, lead_id: str, cli_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = qualified
    # Given sales set the status in Tsunagu (the default policy: crm_wins)
    run_cli("leads", "set", LEAD, "--crm-status", "対応中", capsys=capsys)

    # When the CRM reports 商談中
    body = in_negotiation(owner=None)
    assert q.crm_post(body, q.signed_headers(body))["statusCode"] == 200

    # Then the status is the CRM's, kept in one place with its source and the record's time
    lead = q.lead(lead_id)
    assert (lead["crm_status"], lead["crm_status_source"], lead["crm_status_at"]) == (
        "in negotiation",
        "crm",
        "2026-11-30T01:00:00.000Z",
    )
    assert "crm_status" not in lead["fields"]


# ---------------------------------------------------------------- one record per lead


def test_an_update_from_another_crm_record_of_the_same_address_is_refused_and_changes_nothing(
    qualified: Qualified, lead_id: str
) -> None:
    q = qualified
    # Given the lead is linked to its CRM record, which says sales is working it
    linked = in_negotiation(status="working", owner=None)
    assert q.crm_post(linked, q.signed_headers(linked))["statusCode"] == 200
    assert (q.lead(lead_id)["crm_status"], q.lead(lead_id)["stage"]) == ("working", "sql")
    before = q.snapshot()

    # When a duplicate contact in the CRM (same address, another record) reports disqualified
    other = in_negotiation(
        crm_id="0065g00000DUPLIC02",
        status="disqualified",
        owner=None,
        updated_at="2026-11-30T02:00:00Z",
    )
    response = q.crm_post(other, q.signed_headers(other))

    # Then the update is refused whole, saying which record the lead belongs to
    assert response["statusCode"] == 409, response
    message = body_of(response)["message"]
    assert CRM_ID in message and "0065g00000DUPLIC02" in message, message
    # And nothing changed: the lead keeps what its own record said, the duplicate is no identity
    assert q.snapshot() == before
    assert "crm:0065g00000DUPLIC02" not in identities(q)


# ---------------------------------------------------------------- stages the CRM moves


def test_a_won_deal_makes_a_disqualified_lead_a_customer(
    qualified: Qualified, lead_id: str, cli_here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q = qualified
    # Given marketing ruled the lead out
    run_cli("leads", "set", LEAD, "--stage", "disqualified", capsys=capsys)

    # When it buys anyway: the CRM reports the deal won
    body = in_negotiation(status="Closed Won", owner=None)
    response = q.crm_post(body, q.signed_headers(body))

    # Then the lead is a customer, moved by the CRM, and says so on the stream
    assert response["statusCode"] == 200, response
    lead = q.lead(lead_id)
    assert (lead["crm_status"], lead["stage"]) == ("won", "customer")
    moved = lead["stage_history"][-1]
    assert (moved["from"], moved["to"], moved["by"]) == ("disqualified", "customer", "crm")
    assert q.events(lead_id, "stage_changed")[-1]["properties"]["to"] == "customer"
