"""A transaction's put given as values (tsunagu.store.transactions) is the request PynamoDB
sends for the save of the same model: the same item, key, condition and version. moto answers
the tables' descriptions PynamoDB reads to build a request."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.exceptions import AttributeNullError
from pynamodb.models import Model

from tests.conftest import AwsStack
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.store.converters import consent_values, event_values, lead_values
from tsunagu.store.tables import Tables, bind_tables
from tsunagu.store.transactions import put_kwargs

AT = "2026-12-01T01:00:00Z"


def saved(model: type[Model], values: dict[str, Any], condition: Any = None) -> dict[str, Any]:
    """What PynamoDB's TransactWrite.save puts for the model made of these values."""
    return model(**values).get_save_kwargs_from_instance(condition=condition)


def a_new_lead() -> Lead:
    return Lead(
        lead_id="lead_01",
        email="taro@example.jp",
        fields={
            "name": FieldValue("山田 太郎", Channel.TRADE_SHOW, AT),
            "company": FieldValue("株式会社サンプル", Channel.TRADE_SHOW, AT),
        },
        sources=["trade_show"],
        visitor_ids=set(),
        stage="lead",
        created_at=AT,
        updated_at=AT,
    )


def a_lead_read_back() -> Lead:
    """A lead with every attribute set, as read at version 7."""
    return Lead(
        lead_id="lead_02",
        email="hanako@example.com",
        fields={
            "owner_email": FieldValue("Sales@Example.com", Channel.SALES, AT),
            "phone": FieldValue("03-1234-5678", Channel.WEB_FORM, AT),
        },
        sources=["web_form", "crm"],
        visitor_ids={"v_1", "v_2"},
        stage="mql",
        created_at=AT,
        updated_at="2026-12-02T03:04:05Z",
        last_activity_at=AT,
        last_activity_type="mail_clicked",
        tags={"vip", "seminar"},
        crm_status="in negotiation",
        crm_status_source=Channel.CRM,
        crm_status_at=AT,
        score=42.5,
        score_at=AT,
        grade="A",
        stage_history=[{"from": "lead", "to": "mql", "by": "score", "at": AT}],
        version=7,
    )


@pytest.fixture
def tables(aws: AwsStack) -> Tables:
    return bind_tables(aws.settings())


@pytest.mark.parametrize("lead", [a_new_lead(), a_lead_read_back()], ids=["new", "read"])
def test_a_lead_is_put_as_its_save_with_its_version(tables: Tables, lead: Lead) -> None:
    # Given a lead, new or read at a version
    values = lead_values(lead)

    # When it is put as values, Then the request is its model's save: the version's condition
    # ("no such lead yet", or "still at version 7") and the next version with it
    assert put_kwargs(tables.leads, values) == saved(tables.leads, values)


def test_a_condition_is_joined_to_the_version_as_on_a_save(tables: Tables) -> None:
    values = lead_values(a_lead_read_back())
    condition = tables.leads.email.exists()

    assert put_kwargs(tables.leads, values, condition) == saved(tables.leads, values, condition)


def test_an_event_with_nested_properties_is_put_as_its_save(tables: Tables) -> None:
    event = LeadEvent(
        event_id="evt_1",
        type="lead_imported",
        occurred_at=AT,
        lead_id="lead_01",
        properties={
            "import_id": "imp_1",
            "row": 12,
            "fields": ["company", "name"],
            "kept_fields": [],
            "consent": None,
            "new_lead": True,
            "nested": {"ratio": 0.5, "words": ["a", "b"], "none": None},
        },
    )
    values = event_values(tables, event)

    assert put_kwargs(tables.events, values) == saved(tables.events, values)


@pytest.mark.parametrize("status", ["opted_in", "pending"])
def test_consent_evidence_and_state_are_put_as_their_saves(tables: Tables, status: str) -> None:
    evidence = ConsentEvidence(
        evidence_id="cns_1",
        lead_id="lead_01",
        email="taro@example.jp",
        topic="newsletter",
        status=status,
        at=AT,
        text="展示会.csv, row 2: 配信希望 = '希望する'",
        text_version="imp_1",
    )
    proof, state = consent_values(evidence)
    not_opted_out = tables.consent.record.does_not_exist() | (tables.consent.status != "opted_out")

    assert put_kwargs(tables.consent, proof) == saved(tables.consent, proof)
    assert put_kwargs(tables.consent, state, not_opted_out) == saved(
        tables.consent, state, not_opted_out
    )


def test_an_address_claim_a_receipt_and_a_remembered_answer_are_put_as_their_saves(
    tables: Tables,
) -> None:
    claim = {"identity": "email:taro@example.jp", "lead_id": "lead_01", "created_at": AT}
    receipt = {"pk": "import#imp_1", "sk": "row#0000002", "rows": '[{"row": 2}]'}
    remembered = {
        "key": "form:demo:abc",
        "request_hash": "abc",
        "response": {"lead_id": "lead_01", "created": True},
        "created_at": AT,
        "expires_at": 1_800_000_000,
    }
    receipts = tables.import_receipts
    assert receipts is not None

    for model, values, condition in [
        (tables.identities, claim, tables.identities.identity.does_not_exist()),
        (receipts, receipt, receipts.sk.does_not_exist()),
        (tables.idempotency, remembered, tables.idempotency.key.does_not_exist()),
    ]:
        assert put_kwargs(model, values, condition) == saved(model, values, condition)


@pytest.mark.parametrize(
    "properties",
    [
        {"words": {"b", "a"}, "numbers": {1, 2.5}, "none": set()},  # sets: PynamoDB's own
        {"deep": [[None, True, 0, -1.25, ""], {"x": {"y": []}}], "empty": {}},
        {"channel": Channel.TRADE_SHOW},  # a str subclass: PynamoDB refuses it
        {"data": b"\x00\xff"},
    ],
    ids=["sets", "nested", "str-subclass", "bytes"],
)
def test_any_value_in_a_map_is_put_as_its_save_puts_or_refuses_it(
    tables: Tables, properties: dict[str, Any]
) -> None:
    values = {"subject": "lead#l", "sk": f"{AT}#e", "event_id": "e", "type": "t",
              "occurred_at": AT, "properties": properties}  # fmt: skip

    try:
        expected: Any = saved(tables.events, values)
    except ValueError as refused:
        with pytest.raises(ValueError, match=str(refused)):
            put_kwargs(tables.events, values)
        return
    assert put_kwargs(tables.events, values) == expected


def test_a_list_of_strings_holding_another_type_is_put_as_its_save_puts_it(
    tables: Tables,
) -> None:
    values = lead_values(a_new_lead()) | {"sources": ["trade_show", None]}

    assert put_kwargs(tables.leads, values) == saved(tables.leads, values)


def test_what_a_save_refuses_a_put_refuses(tables: Tables) -> None:
    # A required attribute missing, as the model's save refuses it
    with pytest.raises(AttributeNullError):
        put_kwargs(tables.identities, {"identity": "email:taro@example.jp", "lead_id": "l"})
    with pytest.raises(AttributeNullError):
        saved(tables.identities, {"identity": "email:taro@example.jp", "lead_id": "l"})
    # An attribute the model does not have
    with pytest.raises(ValueError, match="does not exist"):
        put_kwargs(tables.identities, {"identity": "email:x@example.jp", "colour": "red"})
