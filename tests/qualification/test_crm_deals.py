"""POST /crm/deals (crm_webhook) under moto: a signed deal is kept and put on its primary lead's
timeline with every associated lead named; what is refused (malformed, unsigned, replayed,
stale, or of no known lead) changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.qualification.conftest import Qualified, crm_body

BUYER, COLLEAGUE = "buyer@example.co.jp", "colleague@example.co.jp"


def won(**changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "deal_id": "D-2026-0042",
        "name": "年間契約 2027",
        "amount": "1350000",
        "currency": "JPY",
        "stage": "受注",
        "status": "won",
        "close_date": "2026-12-10",
        "leads": [{"email": BUYER}, {"email": COLLEAGUE}],
        "account": "Example 株式会社",
        "updated_at": "2026-11-30T06:00:00Z",  # before the request: a CRM signs on real time
        **changes,
    }
    return crm_body(**{k: v for k, v in fields.items() if v is not None})


def post(q: Qualified, body: bytes) -> tuple[int, dict[str, Any]]:
    answer = q.crm_post(body, q.signed_headers(body), path="/crm/deals")
    return answer["statusCode"], json.loads(answer["body"])


@pytest.fixture
def leads(qualified: Qualified) -> dict[str, str]:
    found = {email: qualified.capture(email) for email in (BUYER, COLLEAGUE)}
    qualified.deliver()
    return found


def deal_events(q: Qualified, lead_id: str) -> list[dict[str, Any]]:
    return q.events(lead_id, "deal_changed")


def test_a_won_deal_of_an_account_is_kept_on_its_primary_lead_with_every_lead_named(
    qualified: Qualified, leads: dict[str, str]
) -> None:
    gone = "left.the.company@example.co.jp"
    status, body = post(
        qualified, won(leads=[{"email": BUYER}, {"email": COLLEAGUE}, {"email": gone}])
    )
    assert status == 200, body
    assert body["lead_ids"] == [leads[BUYER], leads[COLLEAGUE]]
    # A contact Tsunagu does not know is said, not guessed
    assert body["unknown_leads"] == [{"crm_id": None, "email": "left.the.company@example.co.jp"}]
    [event] = deal_events(qualified, leads[BUYER])
    props = event["properties"]
    assert (props["deal_id"], props["amount"], props["currency"]) == (
        "D-2026-0042",
        "1350000",
        "JPY",
    )
    assert (props["status"], props["close_date"]) == ("won", "2026-12-10")
    assert props["lead_ids"] == [leads[BUYER], leads[COLLEAGUE]]
    assert deal_events(qualified, leads[COLLEAGUE]) == []  # one event per deal change


def test_an_update_older_than_the_deal_kept_is_refused_and_changes_nothing(
    qualified: Qualified, leads: dict[str, str]
) -> None:
    assert post(qualified, won())[0] == 200
    # The CRM retries an earlier "open" state after the win reached Tsunagu
    status, body = post(
        qualified, won(status="open", stage="提案中", updated_at="2026-11-29T06:00:00Z")
    )
    assert status == 409, body
    assert "newer" in body["message"]
    assert [e["properties"]["status"] for e in deal_events(qualified, leads[BUYER])] == ["won"]
    # A newer one is kept: the deal was lost after all
    status, _ = post(qualified, won(status="lost", updated_at="2026-11-30T12:00:00Z"))
    assert status == 200
    statuses = sorted(e["properties"]["status"] for e in deal_events(qualified, leads[BUYER]))
    assert statuses == ["lost", "won"]


def test_the_same_signed_request_twice_is_a_replay(
    qualified: Qualified, leads: dict[str, str]
) -> None:
    body = won()
    headers = qualified.signed_headers(body)
    assert qualified.crm_post(body, headers, path="/crm/deals")["statusCode"] == 200
    again = qualified.crm_post(body, headers, path="/crm/deals")
    assert again["statusCode"] == 409
    assert len(deal_events(qualified, leads[BUYER])) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"close_date": None}, "(body)"),  # won, but on no day
        ({"amount": "1e6"}, "amount"),
        ({"amount": "1,350,000"}, "amount"),
        ({"amount": -1}, "amount"),
        ({"currency": "yen"}, "currency"),
        ({"status": "closed"}, "status"),
        ({"leads": []}, "leads"),
        ({"leads": [{}]}, "leads"),
        ({"deal_id": "D 42"}, "deal_id"),
        ({"stage": "受\u2028注"}, "stage"),  # a line separator inside
        ({"surprise": 1}, "surprise"),
        # Dated after the request was signed (a CRM's bug): kept, no real update would be newer
        ({"updated_at": "2099-12-31T00:00:00Z"}, "updated_at"),
    ],
)
def test_a_malformed_deal_is_422_naming_the_field_and_nothing_is_kept(
    qualified: Qualified, leads: dict[str, str], changes: dict[str, Any], field: str
) -> None:
    before = qualified.snapshot()
    status, body = post(qualified, won(**changes))
    assert status == 422, body
    assert any(field in error["field"] for error in body["errors"]), body
    assert qualified.snapshot() == before


def test_a_deal_of_no_known_lead_is_404_and_an_unsigned_one_401(
    qualified: Qualified, leads: dict[str, str]
) -> None:
    before = qualified.snapshot()
    status, _ = post(qualified, won(leads=[{"crm_id": "003UNKNOWN"}]))
    assert status == 404
    body = won()
    headers = qualified.signed_headers(body)
    headers["x-tsunagu-signature"] = "v1=" + "0" * 64
    assert qualified.crm_post(body, headers, path="/crm/deals")["statusCode"] == 401
    assert qualified.snapshot() == before
