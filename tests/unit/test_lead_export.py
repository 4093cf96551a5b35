"""The lead export as Excel reads it: the BOM, cp932 with what it cannot hold counted, every
formula start neutralised, the importer's own header names."""

from __future__ import annotations

import csv
import io

import pytest

from tests.unit.test_segments import NOW, lead
from tsunagu.clock import isoformat
from tsunagu.imports.mapping import ALIASES, fold_header
from tsunagu.leads.export import export_leads
from tsunagu.leads.merge import Channel, FieldValue


def field(value: str) -> FieldValue:
    return FieldValue(value, Channel.IMPORT, isoformat(NOW))


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_text(start: str) -> None:
    exported = export_leads([lead(fields={"company": field(start + "SUM(A1:A9)")})])
    [row] = rows(exported.data.decode("utf-8-sig"))
    assert row["company"] == "'" + start + "SUM(A1:A9)"


def test_utf8_has_a_bom_and_cp932_says_what_it_could_not_hold() -> None:
    people = [
        lead(lead_id="a", email="a@example.jp", fields={"name": field("髙橋 𠮷子 🎉")}),
        lead(lead_id="b", email="b@example.jp", fields={"name": field("山田 花子?")}),
    ]
    utf8 = export_leads(people)
    assert utf8.data.startswith(b"\xef\xbb\xbf") and utf8.rows == 2 and utf8.replaced == 0
    cp932 = export_leads(people, "cp932")
    names = [row["name"] for row in rows(cp932.data.decode("cp932"))]
    assert names == ["髙橋 ?子 ?", "山田 花子?"]  # 髙 is in cp932; 𠮷 and 🎉 are not
    assert cp932.replaced == 2


def test_every_field_column_is_one_the_importer_maps_back() -> None:
    exported = export_leads([lead(fields={name: field("x") for name in ALIASES})])
    header = next(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    known = {fold_header(alias) for aliases in ALIASES.values() for alias in aliases}
    fields = header[1 : 1 + len(ALIASES)]
    assert set(fields) == set(ALIASES)
    assert [name for name in ["email", *fields] if fold_header(name) not in known] == []
