"""The analytics export's rows: a DynamoDB stream record as one flat row of plain values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from tests.conftest import load_event
from tsunagu.analytics.rows import (
    COLUMNS,
    PARTITION_KEY,
    UnreadableRecord,
    encode_row,
    row_from_record,
)

COLUMN_NAMES = [c.name for c in COLUMNS]


def stream_record(name: str, item: dict[str, Any] | None, sequence: str = "7") -> dict[str, Any]:
    """A record as Lambda delivers it, the image in DynamoDB JSON (what PynamoDB wrote)."""
    serialize = TypeSerializer().serialize
    change: dict[str, Any] = {"SequenceNumber": sequence, "StreamViewType": "NEW_IMAGE"}
    if item is not None:
        change["NewImage"] = {k: serialize(v) for k, v in item.items()}
    return {"eventName": name, "dynamodb": change}


def records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = load_event("report_events", "stream_batch")["Records"]
    return records


def test_an_inserted_click_becomes_one_row_with_every_column() -> None:
    # Given the INSERT of a person's click on a mail's link
    click = records()[1]
    # When it is made a row
    row = row_from_record(click)
    # Then the row has every column, and the partition, and nothing else
    assert row is not None
    assert list(row) == [*COLUMN_NAMES, PARTITION_KEY.name]
    assert row["type"] == "link_clicked"
    assert row["occurred_at"] == "2026-11-24T01:00:05.120Z"
    assert row["date"] == "2026-11-24"
    assert row["lead_id"] == "lead_01JDEXAMPLE0000000000000000"
    assert row["visitor_id"] is None
    assert (row["automated"], row["reasons"]) == (False, [])
    assert (row["message_id"], row["link_id"]) == ("msg_01JDEXAMPLE0000000000000002", "pricing")
    assert row["url"] == "https://www.example.com/pricing"
    assert row["change"] == "insert"
    assert row["sequence_number"] == "100000000000000000012".rjust(40, "0")
    # and the properties as JSON, numbers as numbers, without the network address
    properties = json.loads(row["properties"])
    assert properties["signals"]["seconds_since_sent"] == 3605
    assert "ip" not in properties["signals"]
    assert properties["signals"]["user_agent"] == "Mozilla/5.0"


def test_a_rejudged_click_is_a_modify_row_that_sorts_after_the_insert() -> None:
    # Given the same click stored again once the scanner's burst was seen
    insert, modify = (row_from_record(r) for r in records()[1:3])
    assert insert is not None and modify is not None
    # Then it is the same event, judged automated now, with the reason
    assert modify["event_id"] == insert["event_id"]
    assert (modify["change"], modify["automated"], modify["reasons"]) == (
        "modify",
        True,
        ["link_burst"],
    )
    # and its sequence number says it is the later version, as text
    assert modify["sequence_number"] > insert["sequence_number"]


def test_sequence_numbers_of_different_lengths_sort_as_numbers() -> None:
    short = row_from_record(stream_record("INSERT", _event(), sequence="99"))
    long = row_from_record(stream_record("MODIFY", _event(), sequence="100"))
    assert short is not None and long is not None
    assert short["sequence_number"] < long["sequence_number"]


def test_a_visitors_page_view_has_no_lead_and_keeps_its_campaign() -> None:
    row = row_from_record(records()[0])
    assert row is not None
    assert (row["lead_id"], row["visitor_id"]) == (None, "v_0f8fad5bd9cb469fa165")
    assert (row["site_id"], row["path"], row["referrer"]) == (
        "demo",
        "/pricing",
        "https://www.example.jp/",
    )
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
        "newsletter",
        "email",
        "winter",
    )
    assert "198.51.100.7" not in encode_row(row).decode()


def test_a_removed_event_is_no_row() -> None:
    # TTL expiry deletes the event from the table, not from the analytics
    assert row_from_record(records()[3]) is None


def _event(**properties: Any) -> dict[str, Any]:
    return {
        "subject": "lead#lead_1",
        "sk": "2026-12-04T00:00:00.000Z#evt_1",
        "event_id": "evt_1",
        "type": "custom_thing",
        "occurred_at": "2026-12-04T00:00:00.000Z",
        "lead_id": "lead_1",
        "properties": properties,
    }


def test_unknown_and_odd_properties_leave_their_columns_empty_and_stay_in_the_json() -> None:
    # Given an event kind Tsunagu does not know, with odd property types
    item = _event(
        colour="blue",
        template_version="not a number",
        journey_version=3,
        automated="yes",
        reasons="one",
        tags={"b", "a"},
        utm="winter",
    )
    row = row_from_record(stream_record("INSERT", item))
    assert row is not None
    # Then the columns take only what fits their type
    assert row["template_version"] is None
    assert row["journey_version"] == 3
    assert (row["automated"], row["reasons"], row["utm_campaign"]) == (None, None, None)
    # and everything is still in the properties (a string set as a sorted list)
    properties = json.loads(row["properties"])
    assert properties["colour"] == "blue"
    assert properties["tags"] == ["a", "b"]


def test_an_event_without_properties_is_a_row_of_empty_columns() -> None:
    item = _event()
    del item["properties"]
    row = row_from_record(stream_record("INSERT", item))
    assert row is not None
    assert row["properties"] == "{}"
    assert all(row[c] is None for c in ("message_id", "journey_id", "form_id", "url"))


def test_personal_values_are_left_out() -> None:
    # Given a form submission (the submitted values) and a sent mail (a greeting subject)
    submitted = _event(
        form_id="demo",
        fields={"email": "taro@example.jp", "name": "Taro Yamada"},
        changed_fields=["name"],
    )
    sent = _event(subject="Taro Yamada さん、ようこそ", template_id="welcome", error=None)
    rows = [row_from_record(stream_record("INSERT", item)) for item in (submitted, sent)]
    text = "".join(encode_row(row).decode() for row in rows if row)
    # Then no name or address reaches the row; the names of the changed fields do
    assert "Taro" not in text and "example.jp" not in text
    submitted_row = rows[0]
    assert submitted_row is not None
    assert json.loads(submitted_row["properties"]) == {
        "changed_fields": ["name"],
        "form_id": "demo",
    }


def test_the_owners_address_is_in_no_row() -> None:
    # Given what qualification.handoff stores when it tells the lead's owner (a sales rep, by
    # address) that the lead became an MQL, and when that mail failed
    notified = _event(owner="ichiro.suzuki@example.com", status="sent", message_id="msg_1")
    failed = _event(owner="ichiro.suzuki@example.com", message_id="msg_2", error="refused")
    # When they are made rows
    rows = [row_from_record(stream_record("INSERT", item)) for item in (notified, failed)]
    # Then the owner is not in them; the rest is
    assert all(row is not None for row in rows)
    assert "ichiro.suzuki" not in "".join(encode_row(row).decode() for row in rows if row)
    assert rows[0] is not None and rows[0]["message_id"] == "msg_1"


def test_an_address_under_any_name_at_any_depth_is_left_out() -> None:
    # Given properties that hold addresses under names that do not say so
    item = _event(
        by="yamada.taro@example.com",
        recipients=["hanako.sato%40example.jp", "mailto:Jiro@Example.JP", "sales"],
        changes={"contact": {"from": "old@example.jp", "to": "new@example.jp"}},
        note="連絡先はhanako.sato@example.jpです",
        colour="blue",
    )
    row = row_from_record(stream_record("INSERT", item))
    assert row is not None
    # Then every address is gone, a whole value with its name and one in a text masked
    assert "@" not in encode_row(row).decode() and "%40" not in encode_row(row).decode()
    assert json.loads(row["properties"]) == {
        "recipients": ["sales"],
        "changes": {"contact": {}},
        "note": "連絡先は(address)です",
        "colour": "blue",
    }


def test_a_urls_query_keeps_only_the_campaign() -> None:
    # Given a page view of a landing page a personalised mail link led to, from a search
    item = _event(
        url=(
            "https://www.example.com/contact?email=hanako.sato%40example.jp&utm_source=mail"
            "&tel=0312345678&UTM_Campaign=winter#name=Hanako"
        ),
        referrer="https://search.example.jp/search?q=Hanako+Sato",
        path="/contact",
        utm={"source": "mail", "campaign": "winter"},
        links=[
            {"link_id": "l1", "url": "https://www.example.com/c?utm_content=hanako%40example.jp"}
        ],
    )
    # When it is made a row
    row = row_from_record(stream_record("INSERT", item))
    assert row is not None
    # Then the URLs keep their campaign parameters, as written, and nothing else of the query
    assert row["url"] == "https://www.example.com/contact?utm_source=mail&UTM_Campaign=winter"
    assert row["referrer"] == "https://search.example.jp/search"
    assert (row["path"], row["utm_source"], row["utm_campaign"]) == ("/contact", "mail", "winter")
    # and a campaign parameter that is an address goes too
    links = json.loads(row["properties"])["links"]
    assert links == [{"link_id": "l1", "url": "https://www.example.com/c"}]
    assert "Hanako" not in encode_row(row).decode()


@pytest.mark.parametrize(
    "record",
    [
        stream_record("INSERT", None),
        stream_record("INSERT", {"subject": "lead#x", "sk": "y"}),
        stream_record("MODIFY", {**_event(), "occurred_at": 5}),
    ],
)
def test_a_record_that_is_no_stored_event_is_refused(record: dict[str, Any]) -> None:
    with pytest.raises(UnreadableRecord):
        row_from_record(record)


def test_a_row_is_one_json_line() -> None:
    row = row_from_record(records()[1])
    assert row is not None
    data = encode_row(row)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == row
