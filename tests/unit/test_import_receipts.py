"""A receipt's text (tsunagu.imports.apply.receipt_json): each row's record made once, for its
size and then for the receipt, and the list exactly as ``json.dumps`` writes it."""

from __future__ import annotations

import json

from tsunagu.imports.apply import AppliedRow, receipt_json

AT = "2026-12-01T01:00:00Z"


def test_a_receipt_is_its_rows_records_as_json_writes_them() -> None:
    rows = [
        AppliedRow(
            row=2,
            outcome="created",
            lead_id="lead_01",
            email="taro@example.jp",
            at=AT,
            written={"name": {"value": "山田 太郎", "source": "trade_show", "at": AT}},
            before={"name": None},
            consent="yes",
            source_added="trade_show",
        ),
        AppliedRow(row=3, outcome="updated", lead_id="lead_02", email="h@example.com", at=AT),
    ]

    text = receipt_json(rows)

    assert text == json.dumps([row.as_json() for row in rows], ensure_ascii=False)
    assert [AppliedRow(**row) for row in json.loads(text)] == rows
    assert rows[0].stored_bytes() == len(json.dumps(rows[0].as_json(), ensure_ascii=False).encode())


def test_a_receipt_of_one_row() -> None:
    row = AppliedRow(row=9, outcome="created", lead_id="lead_09", email="k@example.jp", at=AT)

    assert receipt_json([row]) == json.dumps([row.as_json()], ensure_ascii=False)
