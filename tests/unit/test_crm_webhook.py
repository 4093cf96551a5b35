"""The inbound CRM webhook: signatures, replays, bodies, statuses, and merge policies."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tsunagu.api.responses import status_for
from tsunagu.errors import MalformedRequest, TsunaguError, ValidationFailed
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead
from tsunagu.qualification.crm import (
    CrmStatus,
    CrmUpdate,
    MergePolicy,
    SignatureRejected,
    StaleRequest,
    crm_update_summary,
    merge_crm_update,
    normalise_status,
    parse_crm_update,
    replay_key,
    signature_header,
    verify_signature,
)
from tsunagu.store.converters import lead_from_item
from tsunagu.store.models import LeadItem

SECRET = b"crm-webhook-secret-for-tests-0123456789"
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
TIMESTAMP = str(int(NOW.timestamp()))
BODY = json.dumps(
    {
        "crm_id": "00Q000000000001",
        "email": "taro.yamada@example.co.jp",
        "status": "商談中",
        "owner": "sales.rep@example.com",
        "deal_amount": 1200000,
        "updated_at": "2026-12-01T02:59:00Z",
    },
    ensure_ascii=False,
).encode()


def signed(body: bytes = BODY, timestamp: str = TIMESTAMP, secret: bytes = SECRET) -> str:
    return signature_header(secret, timestamp, body)


# --- signatures -----------------------------------------------------------------------------


def test_a_correctly_signed_request_is_accepted() -> None:
    verified = verify_signature(SECRET, TIMESTAMP, BODY, signed(), NOW)
    assert verified.timestamp == NOW
    assert verified.keep_until == NOW + timedelta(seconds=300)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # The layout a CRM's developer implements from the docs, computed independently here.
    expected = hmac.new(SECRET, f"{TIMESTAMP}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signed() == f"v1={expected}"
    verified = verify_signature(SECRET, TIMESTAMP, BODY, f"v1={expected}", NOW)
    assert verified.replay_key == replay_key(TIMESTAMP, expected)


@pytest.mark.parametrize(
    ("signing_secret", "timestamp", "body"),
    [
        (b"another-secret-of-sufficient-length", TIMESTAMP, BODY),  # wrong secret
        (SECRET, TIMESTAMP, BODY.replace(b"1200000", b"9200000")),  # tampered body
        (SECRET, TIMESTAMP, BODY + b" "),  # even a byte appended
        (SECRET, str(int(TIMESTAMP) + 1), BODY),  # re-dated after signing
    ],
)
def test_a_signature_over_anything_else_is_rejected(
    signing_secret: bytes, timestamp: str, body: bytes
) -> None:
    # Given a header signed over TIMESTAMP and BODY with signing_secret
    header = signature_header(signing_secret, TIMESTAMP, BODY)
    # When the request arrives with this timestamp and body
    with pytest.raises(SignatureRejected, match="does not match") as caught:
        verify_signature(SECRET, timestamp, body, header, NOW)
    # Then it is refused; the status is decided by api.responses (401 once mapped there)
    assert not isinstance(caught.value, StaleRequest)


@pytest.mark.parametrize(
    ("timestamp", "header", "message"),
    [
        (TIMESTAMP, "", "must be v1="),
        (TIMESTAMP, "sha256=" + "0" * 64, "must be v1="),
        (TIMESTAMP, "v1=not-hex", "must be v1="),
        (TIMESTAMP, "v1=" + "0" * 63, "must be v1="),
        ("", None, "Unix seconds"),
        ("2026-12-01T03:00:00Z", None, "Unix seconds"),
        ("-1", None, "Unix seconds"),
        ("1" * 13, None, "Unix seconds"),
    ],
)
def test_malformed_signature_headers_are_rejected(
    timestamp: str, header: str | None, message: str
) -> None:
    with pytest.raises(SignatureRejected, match=message):
        verify_signature(SECRET, timestamp, BODY, signed() if header is None else header, NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400 * 365, "999999999999", "0"])
def test_stale_and_future_requests_are_rejected(offset: int | str) -> None:
    # (a string: that timestamp itself; twelve digits are the year 33658, past a datetime)
    timestamp = offset if isinstance(offset, str) else str(int(TIMESTAMP) + offset)
    with pytest.raises(StaleRequest, match="more than 300 seconds"):
        verify_signature(SECRET, timestamp, BODY, signed(timestamp=timestamp), NOW)


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_the_edges_of_the_window_are_accepted(offset: int) -> None:
    timestamp = str(int(TIMESTAMP) + offset)
    verify_signature(SECRET, timestamp, BODY, signed(timestamp=timestamp), NOW)


def test_the_tolerance_is_a_setting() -> None:
    timestamp = str(int(TIMESTAMP) - 60)
    header = signed(timestamp=timestamp)
    with pytest.raises(StaleRequest):
        verify_signature(SECRET, timestamp, BODY, header, NOW, tolerance_seconds=30)


def test_a_stale_request_with_a_bad_signature_says_only_bad_signature() -> None:
    # Only a sender who knows the secret learns that its clock is off.
    old = str(int(TIMESTAMP) - 3600)
    with pytest.raises(SignatureRejected, match="does not match") as caught:
        verify_signature(SECRET, old, BODY, "v1=" + "ab" * 32, NOW)
    assert not isinstance(caught.value, StaleRequest)


def test_secret_rotation_several_signatures_and_other_schemes() -> None:
    old_secret = b"the-previous-webhook-secret-000000"
    header = f"v2=whatever, {signed(secret=old_secret)}, {signed()}"
    verify_signature(SECRET, TIMESTAMP, BODY, header, NOW)
    verify_signature(old_secret, TIMESTAMP, BODY, header, NOW)


def test_upper_case_hex_or_extra_entries_do_not_make_a_replay_look_new() -> None:
    plain = verify_signature(SECRET, TIMESTAMP, BODY, signed(), NOW)
    shouting = verify_signature(SECRET, TIMESTAMP, BODY, signed().upper().replace("V1", "v1"), NOW)
    padded = verify_signature(SECRET, TIMESTAMP, BODY, f"v1={'0' * 64},{signed()}", NOW)
    assert plain.replay_key == shouting.replay_key == padded.replay_key


def test_a_short_secret_is_a_configuration_error_not_a_401() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        verify_signature(b"short", TIMESTAMP, BODY, signed(), NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_signature(SECRET, TIMESTAMP, BODY, signed(), NOW.replace(tzinfo=None))


# --- replays --------------------------------------------------------------------------------


def test_the_same_signed_request_has_the_same_replay_key() -> None:
    # crm_webhook stores the key with a condition in the update's transaction (409 on a repeat;
    # see tests/qualification/test_crm_inbound.py): a repeat must map to the same key
    first = verify_signature(SECRET, TIMESTAMP, BODY, signed(), NOW)
    again = verify_signature(SECRET, TIMESTAMP, BODY, signed(), NOW + timedelta(seconds=30))
    assert first.replay_key == again.replay_key
    assert first.keep_until >= NOW  # kept at least as long as the timestamp is accepted


def test_a_fresh_signature_over_the_same_body_is_a_new_request() -> None:
    first = verify_signature(SECRET, TIMESTAMP, BODY, signed(), NOW)
    resent_at = str(int(TIMESTAMP) + 10)
    resent = verify_signature(SECRET, resent_at, BODY, signed(timestamp=resent_at), NOW)
    assert first.replay_key != resent.replay_key


def test_the_errors_are_tsunagu_errors() -> None:
    # SignatureRejected and StaleRequest should map to 401 in api.responses.STATUS_BY_ERROR.
    assert issubclass(SignatureRejected, TsunaguError)
    assert issubclass(StaleRequest, SignatureRejected)


# --- bodies ---------------------------------------------------------------------------------


def test_a_good_body_is_read_and_its_status_understood() -> None:
    update = parse_crm_update(BODY)
    assert update.crm_id == "00Q000000000001"
    assert update.deal_amount == Decimal(1200000)
    assert update.status_code is CrmStatus.IN_NEGOTIATION
    assert update.canonical_status == "in negotiation"  # what journeys' exit settings name
    assert update.sales_engaged
    assert update.updated_at == datetime(2026, 12, 1, 2, 59, tzinfo=UTC)


def test_addresses_typed_in_full_width_are_normalised() -> None:
    update = parse_crm_update(
        json.dumps(
            {
                "crm_id": "42",
                "email": "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ",
                "owner": "Rep@Example.COM",
                "updated_at": "2026-12-01T02:59:00+09:00",
            }
        ).encode()
    )
    assert update.email == "taro@example.jp"
    assert update.owner == "Rep@example.com"
    assert update.status is None and update.status_code is None and not update.sales_engaged


def test_a_null_status_says_nothing_about_the_status() -> None:
    # It crashed the field check with a 500, and a CRM retries a 500 for ever.
    update = parse_crm_update(body_with(status=None, crm_id="42"))
    assert update.status is None and update.status_code is None and not update.sales_engaged


def test_an_escaped_lone_surrogate_is_400() -> None:
    with pytest.raises(MalformedRequest):
        parse_crm_update(b'{"crm_id": "42", "email": "a@example.com", "status": "\\udc80"}')


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'"text"', "{}".encode("utf-16"), b"\xff\xfe"]
)
def test_unreadable_bodies_are_400(body: bytes) -> None:
    with pytest.raises(MalformedRequest) as caught:
        parse_crm_update(body)
    assert status_for(caught.value) == 400


def body_with(**changes: Any) -> bytes:
    data = json.loads(BODY)
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body_with(deal_amount=-1), "deal_amount"),
        (body_with(deal_amount="a lot"), "deal_amount"),
        (body_with(deal_amount=True), "deal_amount"),
        (body_with(deal_amount="5"), None),  # decimal text, as HubSpot sends amounts
        (body_with(deal_amount="5e3"), "deal_amount"),
        (body_with(deal_amount="1,000"), "deal_amount"),
        (body_with(deal_amount="NaN"), "deal_amount"),
        (body_with(deal_amount="5\n"), "deal_amount"),
        (body_with(updated_at="1796000000"), "updated_at"),  # a Unix time, as text
        # An instant is text with an offset, within 2000-2099: 0 was read as 1970, and year 1
        # with an offset overflowed on the way to UTC (a 500, found by make proof's api run).
        (body_with(updated_at=0), "updated_at"),
        (body_with(updated_at="0001-01-01T00:00:00+09:00"), "updated_at"),
        (body_with(updated_at="9999-12-31T23:59:59-09:00"), "updated_at"),
        (body_with(updated_at="1999-12-31T23:59:59Z"), "updated_at"),
        (body_with(updated_at="2100-01-01T00:00:00Z"), "updated_at"),
        (body_with(deal_amount=None, status=None, owner=None, currency=None), None),  # says nothing
        (body_with(email="not an address"), "email"),
        (body_with(owner="nobody"), "owner"),
        (body_with(updated_at="2026-12-01T02:59:00"), "updated_at"),  # no offset
        (body_with(updated_at=...), "updated_at"),
        (body_with(crm_id=""), "crm_id"),
        (body_with(crm_id="has space"), "crm_id"),
        (body_with(status="won\n"), None),  # stripped: fine
        (body_with(status="wo\u0000n"), "status"),
        (body_with(status="in\u2028negotiation"), "status"),
        (body_with(currency="yen"), "currency"),
        (body_with(stage="SQL"), "stage"),  # unknown fields are refused
    ],
)
def test_bodies_with_bad_fields_are_422_naming_the_field(body: bytes, field: str | None) -> None:
    if field is None:
        parse_crm_update(body)
        return
    with pytest.raises(ValidationFailed) as caught:
        parse_crm_update(body)
    assert status_for(caught.value) == 422
    assert field in [e.field for e in caught.value.errors]


def test_amounts_keep_their_decimals() -> None:
    update = parse_crm_update(body_with(deal_amount=1234.5, currency="USD"))
    assert update.deal_amount == Decimal("1234.5")


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("in negotiation", CrmStatus.IN_NEGOTIATION),
        ("In_Negotiation", CrmStatus.IN_NEGOTIATION),
        ("商談中", CrmStatus.IN_NEGOTIATION),
        ("  交渉中 ", CrmStatus.IN_NEGOTIATION),
        ("Closed-Won", CrmStatus.WON),
        ("受注", CrmStatus.WON),
        ("失注", CrmStatus.LOST),
        ("ｌｏｓｔ", CrmStatus.LOST),
        ("対応中", CrmStatus.WORKING),
        ("nurture later", CrmStatus.OTHER),
    ],
)
def test_statuses_in_either_language(text: str, status: CrmStatus) -> None:
    assert normalise_status(text) is status


def test_an_unknown_status_is_kept_as_the_crm_wrote_it() -> None:
    assert update(status="Nurture Later").canonical_status == "Nurture Later"
    assert update(status="Closed_Won").canonical_status == "won"
    assert update().canonical_status is None


def test_the_summary_is_plain_data() -> None:
    summary = crm_update_summary(parse_crm_update(BODY))
    assert summary == {
        "crm_id": "00Q000000000001",
        "status": "商談中",
        "owner": "sales.rep@example.com",
        "deal_amount": "1200000",
        "email": "taro.yamada@example.co.jp",
        "status_code": "in_negotiation",
        "canonical_status": "in negotiation",
        "sales_engaged": True,
        "updated_at": "2026-12-01T02:59:00.000Z",
    }
    json.dumps(summary, ensure_ascii=False)


def test_only_statuses_where_sales_has_the_lead_take_it_out_of_nurture() -> None:
    def engaged(status: CrmStatus) -> bool:
        return update(status=status.value.replace("_", " ")).sales_engaged

    assert {s for s in CrmStatus if engaged(s)} == {
        CrmStatus.WORKING,
        CrmStatus.IN_NEGOTIATION,
        CrmStatus.WON,
    }


# --- merging --------------------------------------------------------------------------------

EARLIER = "2026-11-20T00:00:00.000Z"
LATER = "2026-12-01T03:30:00.000Z"  # after the update's updated_at (02:59)


def update(**fields: Any) -> CrmUpdate:
    data = {"crm_id": "00Q000000000001", "email": "a@example.jp", "updated_at": NOW} | fields
    return CrmUpdate.model_validate(data)


def test_a_first_update_fills_every_field_and_says_so() -> None:
    changes, conflicts = merge_crm_update({}, parse_crm_update(BODY), MergePolicy())
    assert conflicts == []
    assert {c.field: c.new.value for c in changes} == {
        "crm_id": "00Q000000000001",
        "status": "商談中",
        "owner": "sales.rep@example.com",
        "deal_amount": "1200000",
    }
    assert all(c.old is None and c.reason == "no value yet" for c in changes)
    stamped = FieldValue("", Channel.CRM, "2026-12-01T02:59:00.000Z")
    assert all((c.new.source, c.new.at) == (stamped.source, stamped.at) for c in changes)


def test_crm_wins_replaces_a_tsunagu_value_and_reports_the_old_one() -> None:
    current = {"status": FieldValue("nurture", Channel.SALES, LATER)}
    changes, conflicts = merge_crm_update(current, update(status="won"), MergePolicy())
    assert conflicts == []
    assert [(c.field, c.old, c.new.value, c.reason) for c in changes] == [
        ("crm_id", None, "00Q000000000001", "no value yet"),
        ("status", "nurture", "won", "policy crm_wins"),
    ]


def test_tsunagu_wins_keeps_a_tsunagu_value_as_a_conflict() -> None:
    current = {"owner": FieldValue("mine@example.com", Channel.SALES, EARLIER)}
    policy = MergePolicy(owner="tsunagu_wins")
    changes, conflicts = merge_crm_update(current, update(owner="theirs@example.com"), policy)
    assert [c.field for c in changes] == ["crm_id"]
    assert [(c.field, c.kept.value, c.offered, c.reason) for c in conflicts] == [
        ("owner", "mine@example.com", "theirs@example.com", "policy tsunagu_wins")
    ]


@pytest.mark.parametrize(
    ("set_at", "crm_wins"),
    [(EARLIER, True), (LATER, False)],
)
def test_newest_wins_compares_when_each_side_changed(set_at: str, crm_wins: bool) -> None:
    current = {
        "crm_id": FieldValue("00Q000000000001", Channel.CRM, EARLIER),
        "owner": FieldValue("mine@example.com", Channel.SALES, set_at),
    }
    changes, conflicts = merge_crm_update(
        current, update(owner="theirs@example.com"), MergePolicy(owner="newest_wins")
    )
    if crm_wins:
        assert [(c.field, c.reason) for c in changes] == [
            ("owner", "policy newest_wins: CRM newer")
        ]
        assert conflicts == []
    else:
        assert changes == []
        assert [(c.field, c.reason) for c in conflicts] == [
            ("owner", "policy newest_wins: Tsunagu's value is newer")
        ]


def test_the_crm_always_updates_what_it_set_itself_but_not_out_of_order() -> None:
    current = {
        "crm_id": FieldValue("00Q000000000001", Channel.CRM, EARLIER),
        "status": FieldValue("in negotiation", Channel.CRM, "2026-12-01T00:00:00.000Z"),
    }
    policy = MergePolicy(status="tsunagu_wins")
    newer = update(status="won", updated_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    changes, _ = merge_crm_update(current, newer, policy)
    assert [(c.field, c.reason) for c in changes] == [("status", "a newer CRM update")]

    # A webhook delivered late, describing the record before the one already applied
    older = update(status="working", updated_at=datetime(2026, 11, 30, tzinfo=UTC))
    changes, conflicts = merge_crm_update(current, older, policy)
    assert changes == []
    assert [(c.field, c.reason) for c in conflicts] == [
        ("status", "older than the CRM update already applied")
    ]


def test_a_lead_linked_to_another_crm_record_is_never_relinked_silently() -> None:
    current = {"crm_id": FieldValue("00Q000000000999", Channel.CRM, EARLIER)}
    for policy in (MergePolicy(), MergePolicy(status="tsunagu_wins")):
        changes, conflicts = merge_crm_update(current, update(), policy)
        assert changes == []
        assert [(c.field, c.kept.value, c.offered, c.reason) for c in conflicts] == [
            (
                "crm_id",
                "00Q000000000999",
                "00Q000000000001",
                "the lead is linked to another CRM record",
            )
        ]


def test_equal_values_are_not_changes() -> None:
    current = {
        "crm_id": FieldValue("00Q000000000001", Channel.CRM, EARLIER),
        "deal_amount": FieldValue("1000", Channel.SALES, LATER),
        "owner": FieldValue("Rep@example.com", Channel.SALES, LATER),
        "status": FieldValue("won", Channel.SALES, LATER),
    }
    same = update(deal_amount=Decimal("1000.00"), owner="rep@example.com", status="won")
    assert merge_crm_update(current, same, MergePolicy(owner="tsunagu_wins")) == ([], [])


def test_fields_the_crm_leaves_out_change_nothing() -> None:
    current = {
        "crm_id": FieldValue("00Q000000000001", Channel.CRM, EARLIER),
        "owner": FieldValue("rep@example.com", Channel.SALES, EARLIER),
        "deal_amount": FieldValue("500", Channel.CRM, EARLIER),
    }
    assert merge_crm_update(current, update(), MergePolicy()) == ([], [])


def test_a_merge_policy_is_data() -> None:
    policy = MergePolicy.model_validate({"status": "newest_wins", "deal_amount": "tsunagu_wins"})
    assert policy.owner == "newest_wins"
    with pytest.raises(ValueError, match="crm_wins"):
        MergePolicy.model_validate({"status": "last_writer"})
    with pytest.raises(ValueError, match="Extra inputs"):
        MergePolicy.model_validate({"email": "crm_wins"})


def test_a_status_kept_in_tsunagus_words_is_the_crms_status_in_its_own() -> None:
    # Given the lead's status as Tsunagu keeps it, set by a rep
    current = {
        "crm_id": FieldValue("00Q000000000001", Channel.CRM, EARLIER),
        "status": FieldValue("in negotiation", Channel.SALES, LATER),
    }
    # When the CRM says the same in Japanese, under a policy that keeps Tsunagu's value
    same = update(status="商談中")
    # Then there is nothing to change and nothing to report
    assert merge_crm_update(current, same, MergePolicy(status="tsunagu_wins")) == ([], [])


# --- leads saved before the status kept who set it -------------------------------------------


def saved_before(crm_field: str | None, crm_status: str) -> Lead:
    """A lead item as an older version wrote it: the status without its source and time, and
    the CRM's text (if the CRM set it) in a field of its own."""
    fields = {"company": {"value": "Example KK", "source": "web_form", "at": EARLIER}}
    if crm_field is not None:
        fields["crm_status"] = {"value": crm_field, "source": "crm", "at": EARLIER}
    item = LeadItem(
        "lead_1",
        email="a@example.jp",
        fields=fields,
        created_at=EARLIER,
        updated_at=LATER,
        crm_status=crm_status,
    )
    return lead_from_item(item)


def test_a_status_the_crm_set_before_the_upgrade_is_still_the_crms() -> None:
    lead = saved_before("商談中", "in negotiation")
    assert lead.crm_status_value() == FieldValue("in negotiation", Channel.CRM, EARLIER)
    # And the CRM's old field is gone: the status has one place
    assert "crm_status" not in lead.fields


def test_a_status_a_person_changed_before_the_upgrade_is_tsunagus() -> None:
    # Given the CRM said 商談中, then a rep set "won" in Tsunagu
    lead = saved_before("商談中", "won")
    # Then the status is Tsunagu's, set no later than the lead's last change
    assert lead.crm_status_value() == FieldValue("won", Channel.SALES, LATER)
    assert saved_before(None, "working").crm_status_value() == FieldValue(
        "working", Channel.SALES, LATER
    )
