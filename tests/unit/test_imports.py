"""Lead lists as Japanese teams have them: the encodings Excel saves, Japanese and English
headers, values as people type them, the plan of each row before anything is written, and the
rejected rows handed back as a file that imports again once fixed."""

from __future__ import annotations

import csv
import io
import re
import shlex
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from tsunagu.cli_imports import _shell_word
from tsunagu.errors import ValidationFailed
from tsunagu.imports.apply import consent_evidence_text
from tsunagu.imports.cleaning import BadValue, clean_value, company_key, read_date
from tsunagu.imports.jobs import row_from_json, row_json
from tsunagu.imports.mapping import map_columns
from tsunagu.imports.plan import (
    REASON_HEADER,
    ConsentColumn,
    ImportOptions,
    plan_import,
    rejected_file,
)
from tsunagu.imports.reading import read_table
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead

AT = "2026-12-04T01:00:00+00:00"
HEADER = ["メールアドレス", "姓", "名", "会社名", "部署", "役職", "電話番号", "配信希望"]
ROWS = [
    ["ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "山田", "太郎", "(株)サンプル", "営業部", "部長",
     "０３－１２３４－５６７８", "希望する"],
    ["hanako@example.com", "佐藤", "花子", "サンプル商事", "", "", "", "希望しない"],
    ["not an address", "鈴木", "一郎", "", "", "", "", ""],
    ["known@example.jp", "", "", "株式会社ノウン", "マーケティング部", "課長", "", ""],
    ["Taro@Example.jp", "", "", "", "情報システム部", "", "", ""],
    ["same@example.jp", "", "", "株式会社セイム", "", "", "", ""],
    ["maybe@example.jp", "", "", "", "", "", "", "たぶん"],
]  # fmt: skip


def sheet(encoding: str, *, delimiter: str = ",", rows: list[list[str]] = ROWS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


KNOWN = Lead(
    "lead_known",
    "known@example.jp",
    {
        "company": FieldValue("株式会社ノウン", Channel.CRM, AT),
        "department": FieldValue("営業部", Channel.WEB_FORM, AT),
        "job_title": FieldValue("部長", Channel.CRM, AT),
    },
    [],
    set(),
    "lead",
    AT,
    AT,
)
SAME = Lead(
    "lead_same", "same@example.jp", {"company": FieldValue("セイム(株)", Channel.CRM, AT)},
    [], set(), "lead", AT, AT,
)  # fmt: skip


def find(address: str) -> Lead | None:
    return {"known@example.jp": KNOWN, "same@example.jp": SAME}.get(address.casefold())


CONSENT = ConsentColumn("配信希望", yes=frozenset({"希望する"}), no=frozenset({"希望しない"}))


@pytest.mark.parametrize(
    ("encoding", "saved", "delimiter", "name"),
    [
        ("cp932", "cp932", ",", "list.csv"),  # Excel's "CSV"
        ("utf-8-sig", "utf-8-sig", ",", "list.csv"),  # Excel's "CSV UTF-8"
        ("utf-8", "utf-8", ",", "list.csv"),  # Google Sheets
        ("utf-16", "utf-16", "\t", "list.txt"),  # Excel's "Unicode text"
        ("utf-8", "utf-8", "\t", "list.tsv"),
    ],
)
def test_each_encoding_excel_and_sheets_save_is_found_and_read_alike(
    encoding: str, saved: str, delimiter: str, name: str
) -> None:
    table = read_table(sheet(saved, delimiter=delimiter), name)
    assert (table.encoding, table.delimiter) == (encoding, delimiter)
    assert table.header == HEADER
    assert table.rows == ROWS
    assert table.row_numbers == list(range(2, 2 + len(ROWS)))


def test_an_encoding_can_be_named_and_a_wrong_one_is_refused_with_a_reason() -> None:
    assert read_table(sheet("cp932"), "x.csv", "Shift_JIS").rows == ROWS
    with pytest.raises(ValidationFailed, match="encoding"):
        read_table(sheet("cp932"), "x.csv", "utf-8")
    with pytest.raises(ValidationFailed, match="encoding"):
        read_table(sheet("utf-8"), "x.csv", "latin-9")
    with pytest.raises(ValidationFailed, match="encoding"):
        read_table(bytes([0x81, 0xFF, 0xFE, 0x80]) * 10, "x.csv")


def test_japanese_and_english_headers_map_to_the_same_fields() -> None:
    japanese = map_columns(
        ["メールアドレス", "氏名", "会社名", "部署", "役職", "電話番号", "都道府県"]
    )
    english = map_columns(
        ["E-mail", "Name", "Company", "Department", "Job Title", "Phone", "State"]
    )
    assert list(japanese.fields.values()) == list(english.fields.values()) == [
        "email", "name", "company", "department", "job_title", "phone", "prefecture",
    ]  # fmt: skip
    odd = map_columns(["Ｅメール", "備考", "来場ブース"], {"来場ブース": "booth"})
    assert odd.fields == {0: "email", 2: "booth"} and odd.unmapped == ["備考"]
    with pytest.raises(ValidationFailed, match="e-mail"):
        map_columns(["氏名", "会社名"])
    with pytest.raises(ValidationFailed, match="second column"):
        map_columns(["メール", "Email"])
    # An exported file's stage and score columns are left out; mapped, they are refused
    exported = map_columns(["email", "name", "stage", "score"])
    assert exported.fields == {0: "email", 1: "name"} and exported.unmapped == ["stage", "score"]
    with pytest.raises(ValidationFailed, match="score is the lead's own"):
        map_columns(["メール", "スコア"], {"スコア": "score"})


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026/12/4", date(2026, 12, 4)),
        ("2026-12-04", date(2026, 12, 4)),
        ("2026年12月4日", date(2026, 12, 4)),
        ("２０２６年１２月４日", date(2026, 12, 4)),
        ("令和8年12月4日", date(2026, 12, 4)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("R8.12.4", date(2026, 12, 4)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("46360", date(2026, 12, 4)),  # an Excel serial
    ],
)
def test_dates_in_the_forms_japanese_sheets_hold_them(text: str, day: date) -> None:
    assert read_date(text) == day


def test_a_date_column_is_stored_as_an_iso_date_and_a_bad_one_rejects_its_row() -> None:
    table = read_table(
        "メール,来場日\r\na@example.jp,令和8年12月4日\r\nb@example.jp,46360\r\nc@example.jp,来週\r\n".encode(
            "cp932"
        ),
        "booth.csv",
    )
    plan = plan_import(table, ImportOptions(Channel.TRADE_SHOW), find)
    assert [row.values.get("visited_on") for row in plan.rows[:2]] == ["2026-12-04"] * 2
    assert plan.rows[2].action == "rejected" and "来週" in (plan.rows[2].reason or "")


def test_an_owner_column_takes_addresses_and_a_row_with_anything_else_is_rejected() -> None:
    table = read_table(
        "メール,担当者\r\na@example.jp,Sato@Example.COM\r\nb@example.jp,佐藤 営業部\r\n".encode(
            "cp932"
        ),
        "booth.csv",
    )
    plan = plan_import(
        table, ImportOptions(Channel.TRADE_SHOW, mapping={"担当者": "owner_email"}), find
    )
    assert plan.rows[0].values["owner_email"] == "Sato@example.com"
    assert plan.rows[1].action == "rejected"
    assert "owner_email must be an e-mail address" in (plan.rows[1].reason or "")


@pytest.mark.parametrize("text", ["2026年2月30日", "来週", "12/4", "123"])
def test_what_is_not_a_date_says_so(text: str) -> None:
    with pytest.raises(BadValue):
        read_date(text)


def test_legal_forms_before_or_after_are_one_company() -> None:
    keys = {
        company_key(n)
        for n in ("株式会社サンプル", "(株)サンプル", "㈱サンプル", "サンプル株式会社")
    }
    assert keys == {"サンプル"}
    assert company_key("サンプル商事") != company_key("サンプル")


def test_the_plan_says_what_each_row_would_do_before_anything_is_written() -> None:
    table = read_table(sheet("cp932"), "trade-show.csv")
    plan = plan_import(table, ImportOptions(Channel.TRADE_SHOW, consent=CONSENT), find)
    by_row = {row.row: row for row in plan.rows}

    # A new person, the address and phone typed full-width: cleaned as capture cleans them;
    # her later row (same address, other case) joins it
    taro = by_row[2]
    assert (taro.action, taro.email) == ("create", "taro@example.jp")
    assert taro.values == {
        "name": "山田 太郎", "company": "(株)サンプル", "department": "情報システム部",
        "job_title": "部長", "phone": "03-1234-5678",
    }  # fmt: skip
    assert taro.consent == "yes"
    assert (by_row[6].action, by_row[6].into) == ("merged", 2)
    # A "no" is recorded as such; it never opts anyone in
    assert (by_row[3].action, by_row[3].consent) == ("create", "no")
    # Not an address, and an answer the user gave no meaning to: rejected, with the reason
    assert by_row[4].action == "rejected" and "not an address" in (by_row[4].reason or "")
    assert by_row[8].action == "rejected" and "たぶん" in (by_row[8].reason or "")
    # A known lead: the trade show changes the department a web form set, but not the title
    # the CRM set (kept, and said so); its company is the CRM's under another legal form
    known = by_row[5]
    assert known.action == "update"
    assert known.changes == {"department": ("営業部", "マーケティング部")}
    assert known.kept == {"job_title": ("部長", "crm", "課長")}
    assert by_row[7].action == "unchanged"  # (株) セイム is セイム(株)

    assert plan.counts == {"create": 2, "update": 1, "unchanged": 1, "merged": 1, "rejected": 2}
    assert plan.unmapped == [] and plan.consent_column == "配信希望"  # read, not left out
    assert plan.columns["姓"] == "last_name"


def test_consent_evidence_quotes_the_row_that_answered_and_its_words() -> None:
    # Given a person on two rows of the list, who answered only on the second, in her words
    rows = [
        ["メールアドレス", "氏名", "配信希望"],
        ["hanako@example.jp", "展示 花子", ""],
        ["HANAKO@example.jp", "", " 希望しない "],
        ["jiro@example.jp", "展示 次郎", "希望する"],
    ]
    table = read_table("\r\n".join(",".join(r) for r in rows).encode("cp932"), "展示会.csv")
    plan = plan_import(table, ImportOptions(Channel.TRADE_SHOW, consent=CONSENT), find)
    hanako, merged, jiro = plan.rows
    assert (hanako.action, merged.action, merged.into) == ("create", "merged", 2)

    # Then the evidence names row 3 (not row 2, which said nothing) and what row 3 said, in
    # its words alone: how they were read is the evidence's status, shown in the reader's
    # language (no English "(read as no)" inside the quote)
    assert (hanako.consent, hanako.consent_said) == ("no", (3, "希望しない"))
    assert consent_evidence_text("展示会.csv", hanako, "配信希望") == (
        "展示会.csv, row 3: 配信希望 = '希望しない'"
    )
    assert consent_evidence_text("展示会.csv", jiro, "配信希望") == (
        "展示会.csv, row 4: 配信希望 = '希望する'"
    )
    # ... and the words survive the plan's trip through a background chunk
    assert row_from_json(row_json(hanako)) == hanako


@pytest.mark.parametrize("answers", [("希望しない", "希望する"), ("希望する", "希望しない")])
def test_two_rows_of_one_person_that_disagree_count_as_a_no_and_say_so(
    answers: tuple[str, str],
) -> None:
    # Given one person twice in a list, once saying yes and once no (whichever comes first)
    rows = [
        ["メールアドレス", "氏名", "配信希望"],
        ["hanako@example.jp", "展示 花子", answers[0]],
        ["jiro@example.jp", "展示 次郎", ""],
        ["HANAKO@example.jp", "", answers[1]],
        ["Hanako@example.jp", "", ""],
    ]
    table = read_table("\r\n".join(",".join(r) for r in rows).encode("cp932"), "展示会.csv")
    plan = plan_import(table, ImportOptions(Channel.TRADE_SHOW, consent=CONSENT), find)
    hanako = plan.rows[0]

    # Then the no counts, as against a lead's own no, quoting the row that said it, and the
    # plan names the rows that disagreed (a later blank row changes neither)
    no_row = 2 if answers[0] == "希望しない" else 4
    assert (hanako.consent, hanako.consent_said) == ("no", (no_row, "希望しない"))
    assert hanako.consent_disagreed == (2, 4)
    assert row_from_json(row_json(hanako)) == hanako


def test_an_answer_the_lead_holds_already_is_no_change() -> None:
    from tsunagu.mail.consent import TopicConsent

    # Given a known lead opted in to marketing, and another opted out of it
    said = {
        "lead_known": TopicConsent("opted_in", refuses_opt_in=False),
        "lead_same": TopicConsent("opted_out", refuses_opt_in=True),
    }
    asked: list[tuple[list[str], str]] = []

    def consent_now(lead_ids: Any, topic: str) -> dict[str, TopicConsent]:
        asked.append((list(lead_ids), topic))
        return {i: said[i] for i in lead_ids if i in said}

    def plan_of(known: str, same: str) -> list[tuple[str, str | None]]:
        rows = [
            ["メールアドレス", "会社名", "配信希望"],
            ["known@example.jp", "株式会社ノウン", known],
            ["same@example.jp", "セイム(株)", same],
            ["new@example.jp", "", "希望する"],
        ]
        table = read_table("\r\n".join(",".join(r) for r in rows).encode(), "list.csv")
        options = ImportOptions(Channel.TRADE_SHOW, consent=CONSENT)
        plan = plan_import(table, options, find, consent_now=consent_now)
        return [(row.action, row.consent) for row in plan.rows]

    # When a list says what they have said: no change, nothing to record again
    assert plan_of("希望する", "希望しない") == [
        ("unchanged", None), ("unchanged", None), ("create", "yes")
    ]  # fmt: skip
    # ... and asked once, for the leads it answers for (the new one has nothing stored)
    assert asked == [(["lead_known", "lead_same"], "marketing")]
    # When it says otherwise: a no is recorded; a yes is not for one who said no
    assert plan_of("希望しない", "希望する") == [
        ("update", "no"), ("unchanged", None), ("create", "yes")
    ]  # fmt: skip


def test_a_consent_column_headed_as_an_email_alias_is_read_as_consent() -> None:
    # 「メール」 is one of the e-mail column's names; here it asks whether to send mail
    data = "メールアドレス,氏名,メール\r\na@example.jp,山田,可\r\nb@example.jp,佐藤,不可\r\n"
    table = read_table(data.encode("cp932"), "cards.csv")
    consent = ConsentColumn("メール", frozenset({"可"}), frozenset({"不可"}))
    plan = plan_import(table, ImportOptions(consent=consent), find)
    assert [(row.email, row.consent) for row in plan.rows] == [
        ("a@example.jp", "yes"), ("b@example.jp", "no")
    ]  # fmt: skip
    assert plan.columns == {"メールアドレス": "email", "氏名": "name"}
    assert plan.consent_column == "メール" and plan.unmapped == []


def test_the_rejected_rows_come_back_with_their_reasons_and_import_again_once_fixed() -> None:
    table = read_table(sheet("cp932"), "list.csv")
    plan = plan_import(table, ImportOptions(consent=CONSENT), find)
    returned = rejected_file(table, plan)
    assert returned.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    again = read_table(returned, "rejected.csv")
    assert again.header == [*HEADER, REASON_HEADER]
    assert [row[0] for row in again.rows] == ["not an address", "maybe@example.jp"]
    assert "not an address" in again.rows[0][-1]

    # Fixed in the sheet (the reason column left as it is), the rows import
    again.rows[0][0] = "ichiro@example.jp"
    again.rows[1][-2] = "希望する"
    fixed = plan_import(again, ImportOptions(consent=CONSENT), find)
    assert [(row.action, row.email, row.consent) for row in fixed.rows] == [
        ("create", "ichiro@example.jp", None),
        ("create", "maybe@example.jp", "yes"),
    ]
    assert REASON_HEADER in fixed.unmapped


def test_a_rejected_rows_file_rejected_again_keeps_one_reason_column_saying_why_now() -> None:
    # Given the rejected rows, one fixed and one "fixed" into another wrong address
    table = read_table(sheet("cp932"), "list.csv")
    first = read_table(
        rejected_file(table, plan_import(table, ImportOptions(consent=CONSENT), find)),
        "rejected.csv",
    )
    first.rows[0][0] = "ichiro@"
    first.rows[1][-2] = "希望する"

    # When that file is planned and its rejected rows are handed back again
    again = rejected_file(first, plan_import(first, ImportOptions(consent=CONSENT), find))

    # Then they have the one reason column, holding the reason of now, not the one fixed
    returned = list(csv.reader(io.StringIO(again.decode("utf-8-sig"))))
    assert returned[0] == [*HEADER, REASON_HEADER]
    [(address, *_, reason)] = returned[1:]
    assert address == "ichiro@" and "ichiro@" in reason and "not an address" not in reason, reason


def test_the_rejected_rows_file_guards_formulas_and_they_import_as_they_were() -> None:
    # A workbook's text cell holding a formula, and a telephone number with its country code
    formula = '=HYPERLINK("https://evil.example.com","請求書")'
    row = ["broken-address", "", "", formula, "", "", "+81 3-1234-5678", ""]
    table = read_table(sheet("utf-8", rows=[row]), "list.csv")
    returned = rejected_file(table, plan_import(table, ImportOptions(consent=CONSENT), find))
    again = read_table(returned, "rejected.csv")
    assert again.rows[0][3:7] == ["'" + formula, "", "", "'+81 3-1234-5678"]  # text in Excel

    again.rows[0][0] = "fixed@example.jp"
    (fixed,) = plan_import(again, ImportOptions(consent=CONSENT), find).rows
    assert (fixed.action, fixed.values["company"], fixed.values["phone"]) == (
        "create",
        formula,
        "+81 3-1234-5678",
    )


def test_a_consent_column_that_is_not_in_the_file_is_refused_naming_it() -> None:
    table = read_table(sheet("utf-8"), "list.csv")
    other = ConsentColumn("メール配信", yes=frozenset({"はい"}), no=frozenset())
    with pytest.raises(ValidationFailed, match="メール配信"):
        plan_import(table, ImportOptions(consent=other), find)


def workbook(rows: list[list[object]]) -> bytes:
    """An .xlsx as Excel saves one: the header, then the rows, typed cells and all."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_consent_column_for_the_reserved_topic_all_is_refused_naming_it() -> None:
    # "all" records an unsubscribe from all mail: a list's yes to it is consent to nothing
    # (and a no would unsubscribe the row from every topic), as a form's is refused
    with pytest.raises(ValidationFailed, match="reserved") as refused:
        ConsentColumn.asked("配信希望", yes=frozenset({"希望する"}), no=frozenset(), topic="all")
    assert [e.field for e in refused.value.errors] == ["consent_topic"]
    # A job queued (or a mapping saved) before the rule is read back as stored, and still runs
    stored = ConsentColumn("配信希望", yes=frozenset({"希望する"}), no=frozenset(), topic="all")
    assert stored.topic == "all"


def test_an_excel_workbook_is_read_as_its_first_sheet_typed_cells_as_text() -> None:
    from datetime import datetime

    data = workbook(
        [
            ["メールアドレス", "氏名", "来場日", "従業員数", "メモ", "電話番号"],
            [None, None, None, None, None, None],  # a blank row: left out
            ["ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "山田 太郎", date(2026, 12, 4), 120, "=1+1",
             "03-1234-5678"],
            ["hanako@example.com", "佐藤 花子", datetime(2026, 12, 5, 14, 30), 12.5, None, None],
        ]
    )  # fmt: skip
    table = read_table(data, "展示会.xlsx")
    assert (table.encoding, table.header[0]) == ("xlsx, sheet 'Sheet'", "メールアドレス")
    assert table.rows == [
        # A formula is never run: read as the value Excel last computed (none here)
        ["ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "山田 太郎", "2026-12-04", "120", "", "03-1234-5678"],
        ["hanako@example.com", "佐藤 花子", "2026-12-05 14:30:00", "12.5", "", ""],
    ]
    assert table.row_numbers == [3, 4]
    # ... and planned as any list is: the full-width address cleaned, the day a date
    plan = plan_import(table, ImportOptions(), find)
    assert [(r.action, r.email) for r in plan.rows] == [
        ("create", "taro@example.jp"), ("create", "hanako@example.com"),
    ]  # fmt: skip
    assert [r.values["visited_on"] for r in plan.rows] == ["2026-12-04", "2026-12-05"]


def test_a_file_named_xlsx_that_is_not_a_workbook_is_refused_saying_so() -> None:
    with pytest.raises(ValidationFailed, match="not an Excel workbook"):
        read_table(b"email\r\nx@example.jp\r\n", "list.xlsx")


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("examples/展示会2026.csv", "examples/展示会2026.csv"),  # no quotes a shell would not need
        ("名簿 (1).csv", "'名簿 (1).csv'"),
        ("it's.csv", "'it'\"'\"'s.csv'"),
        ("$HOME.csv", "'$HOME.csv'"),
    ],
)
def test_the_run_hint_names_the_file_so_a_shell_reads_it_back(typed: str, shown: str) -> None:
    assert _shell_word(typed) == shown
    assert shlex.split(_shell_word(typed)) == [typed]


def with_part(data: bytes, part: str, change: Callable[[bytes], bytes | None]) -> bytes:
    """The workbook with one of its zip's parts changed (None: left out)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as changed:
        for name in source.namelist():
            body = source.read(name)
            body = change(body) if name == part else body
            if body is not None:
                changed.writestr(name, body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


SHEET_PART = "xl/worksheets/sheet1.xml"


def with_row(xml: bytes) -> Callable[[bytes], bytes]:
    row = b'<row r="9">' + xml + b"</row>"
    return lambda sheet: sheet.replace(b"</sheetData>", row + b"</sheetData>")


DAMAGED: dict[str, tuple[str, Callable[[bytes], bytes | None]]] = {
    "truncated sheet XML": (SHEET_PART, lambda b: b[:-20]),
    "a sheet part missing": (SHEET_PART, lambda b: None),
    "no sheet listed": ("xl/workbook.xml", lambda b: re.sub(rb"<sheets>.*</sheets>", b"", b)),
    "a number cell holding text": (SHEET_PART, with_row(b'<c r="A9"><v>abc</v></c>')),
    "an entity": (
        SHEET_PART,
        lambda b: with_row(b'<c r="A9" t="inlineStr"><is><t>&e;</t></is></c>')(
            b.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e "boom">]>', 1)
        ),
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_damaged_or_hostile_workbook_is_refused_saying_it_cannot_be_read(damage: str) -> None:
    part, change = DAMAGED[damage]
    data = with_part(workbook([["email", "name"], ["a@example.com", "x"]]), part, change)
    # ... with what openpyxl said, then what she can do about it
    said = r"^file: not a readable workbook: \S.*; open it in Excel and save it again, as \.xlsx"
    with pytest.raises(ValidationFailed, match=said):
        read_table(data, "list.xlsx")


def declaring(data: bytes, part: str, size: int) -> bytes:
    """The zip with ``part``'s headers (its local one and the central directory's) saying it
    unpacks to ``size`` bytes, whatever it holds."""
    changed = bytearray(data)
    name = part.encode()
    for signature, name_length_at, size_at, name_at in (
        (b"PK\x03\x04", 26, 22, 30),
        (b"PK\x01\x02", 28, 24, 46),
    ):
        at = changed.find(signature)
        while changed[at + name_at : at + name_at + len(name)] != name:
            at = changed.find(signature, at + 4)
        assert int.from_bytes(changed[at + name_length_at : at + name_length_at + 2], "little")
        changed[at + size_at : at + size_at + 4] = size.to_bytes(4, "little")
    return bytes(changed)


def bomb(letters: int) -> bytes:
    """A workbook one of whose cells holds ``letters`` A's: a thousand to one packed (a real
    sheet packs 5 to 20 to one)."""
    return with_part(
        workbook([["email", "name"], ["a@example.com", "x"]]),
        SHEET_PART,
        lambda sheet: sheet.replace(b"<t>x</t>", b"<t>" + b"A" * letters + b"</t>"),
    )


def test_a_zip_bomb_workbook_is_refused_before_it_is_unpacked() -> None:
    from tsunagu.imports.reading import MAX_XLSX_UNPACKED_BYTES

    assert read_table(bomb(100_000), "list.xlsx").rows == [["a@example.com", "A" * 100_000]]
    with pytest.raises(
        ValidationFailed, match=r"sheet1\.xml unpacks to [\d,]+ times its packed"
    ) as bombed:
        read_table(bomb(2_000_000), "list.xlsx")
    # ... with a code and params the console says it from in the marketer's language
    said = bombed.value.errors[0]
    assert (said.code, said.params["part"], said.params["most"]) == (
        "workbook_zip_bomb",
        SHEET_PART,
        100,
    )
    # Sizes past the limit are refused on the zip's word, before anything is inflated
    declared = declaring(workbook([["email"], ["a@example.com"]]), SHEET_PART, 200 * 2**20)
    assert MAX_XLSX_UNPACKED_BYTES < 200 * 2**20
    with pytest.raises(
        ValidationFailed, match=r"too large to read safely: it unpacks to 200 MB"
    ) as large:
        read_table(declared, "list.xlsx")
    said = large.value.errors[0]
    assert (said.code, said.params) == (
        "workbook_unpacks_too_large",
        {"megabytes": 200, "most": 128},
    )


def test_a_part_that_unpacks_to_more_than_its_zip_says_is_refused() -> None:
    # The headers say 1,000 bytes, under every limit; the part holds 2 MB. zipfile would keep
    # 1,000 of them, but inflate all 2 MB (or 2 GB) first when the part is read whole
    with pytest.raises(
        ValidationFailed, match=r"sheet1\.xml unpacks to more than its zip says"
    ) as lied:
        read_table(declaring(bomb(2_000_000), SHEET_PART, 1_000), "list.xlsx")
    said = lied.value.errors[0]
    assert (said.code, said.params) == ("workbook_part_larger", {"part": SHEET_PART})
    shared = declaring(workbook([["email"], ["a@example.com"]]), "xl/workbook.xml", 10)
    with pytest.raises(ValidationFailed, match=r"workbook\.xml unpacks to more than its zip says"):
        read_table(shared, "list.xlsx")


def test_the_sheet_a_workbook_opens_on_is_read_and_the_plan_names_it() -> None:
    import openpyxl

    book = openpyxl.Workbook()
    template = book.active
    template.title = "見本"
    template.append(["メールアドレス", "氏名"])
    template.append(["sample@example.jp", "見本 太郎"])
    template.sheet_state = "hidden"
    for title in ("来場者", "集計"):
        sheet = book.create_sheet(title)
        sheet.append(["メールアドレス", "氏名"])
        sheet.append([f"{title}@example.jp" if title == "集計" else "visitor@example.jp", title])
    book.active = 1  # 来場者
    saved = io.BytesIO()
    book.save(saved)

    table = read_table(saved.getvalue(), "来場者リスト.xlsx")
    assert table.rows == [["visitor@example.jp", "来場者"]]
    assert (table.sheet, table.other_sheets) == ("来場者", ("見本", "集計"))
    assert table.encoding == "xlsx, sheet '来場者' (not read: '見本' (hidden), '集計')"
    assert plan_import(table, ImportOptions(), find).encoding == table.encoding

    # Opened on a hidden sheet (Excel never saves one so; another tool may): the first visible
    opened_on_hidden = with_part(
        saved.getvalue(), "xl/workbook.xml", lambda xml: xml.replace(b'activeTab="1"', b"")
    )
    assert b'activeTab="1"' in zipfile.ZipFile(saved).read("xl/workbook.xml")
    assert read_table(opened_on_hidden, "来場者リスト.xlsx").sheet == "来場者"
    every_sheet_hidden = with_part(
        saved.getvalue(),
        "xl/workbook.xml",
        lambda xml: xml.replace(b'state="visible"', b'state="hidden"'),
    )
    with pytest.raises(ValidationFailed, match="no visible sheet") as hidden:
        read_table(every_sheet_hidden, "来場者リスト.xlsx")
    assert hidden.value.errors[0].code == "workbook_no_visible_sheet"


def test_a_number_cell_reads_as_its_format_shows_it_when_the_format_pads_and_punctuates() -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["メールアドレス", "郵便番号", "電話番号", "従業員数", "メモ"])
    formats = [
        # Typed as 0600001 and 0112345678: Excel keeps the numbers, the formats the zeros
        ("sapporo@example.jp", 600001, "000-0000", 112345678, "0##-###-####"),
        # Excel's Japanese special formats, 郵便番号 and 電話番号 (市外局番 2 digits)
        ("tokyo@example.jp", 1000005, "[<=999]000;[<=9999]000-00;000-0000",
         312345678, "[<=99999999]####-####;(00) ####-####"),
        ("osaka@example.jp", 5300001, '"〒"000-0000', 612345678, "[$-ja-JP]00-####-####"),
    ]  # fmt: skip
    for row, (address, postal, postal_format, phone, phone_format) in enumerate(formats, 2):
        sheet.append([address, postal, phone, 1200, 12.5])
        sheet.cell(row, 2).number_format = postal_format
        sheet.cell(row, 3).number_format = phone_format
        sheet.cell(row, 4).number_format = "#,##0"  # not only padding: read as stored
        sheet.cell(row, 5).number_format = "0.0"
    saved = io.BytesIO()
    book.save(saved)

    table = read_table(saved.getvalue(), "名簿.xlsx")
    assert table.rows == [
        ["sapporo@example.jp", "060-0001", "011-234-5678", "1200", "12.5"],
        ["tokyo@example.jp", "100-0005", "(03) 1234-5678", "1200", "12.5"],
        ["osaka@example.jp", "〒530-0001", "06-1234-5678", "1200", "12.5"],
    ]
    plan = plan_import(table, ImportOptions(), find)
    assert plan.rows[0].values == {
        "postal_code": "060-0001", "phone": "011-234-5678", "company_size": "1200",
    }  # fmt: skip


def test_a_row_with_more_cells_than_the_header_is_rejected_naming_them() -> None:
    data = (
        b"email,name,company,phone\r\n"
        b"a@example.com,Taro,Sample, Inc.,03-1234-5678\r\n"  # the comma moved the phone right
        b"b@example.com,Hanako,Sample Corp.,03-1111-2222,,\r\n"  # empty cells after: fine
        b"c@example.com,Jiro\r\n"  # short: padded
    )
    table = read_table(data, "list.csv")
    plan = plan_import(table, ImportOptions(), find)
    assert [(r.row, r.action) for r in plan.rows] == [(2, "rejected"), (3, "create"), (4, "create")]
    assert plan.rows[0].reason == (
        "more cells than the header's 4 columns (column 5: '03-1234-5678'):"
        " is a comma inside a value not in quotes?"
    )
    assert plan.rows[1].values == {
        "name": "Hanako",
        "company": "Sample Corp.",
        "phone": "03-1111-2222",
    }
    # The rejected row goes back as it was read, every cell of it (the phone past the header
    # too), the reason after them (in English when asked; Japanese otherwise, as the file's
    # header is)
    file = rejected_file(table, plan, "en")
    returned = list(csv.reader(io.StringIO(file.decode("utf-8-sig"))))
    reason = plan.rows[0].reason
    assert returned[1] == ["a@example.com", "Taro", "Sample", " Inc.", "03-1234-5678", reason]
    # ... so that, fixed (the company's two cells one again), it imports whole
    fixed = file.replace(b"Sample, Inc.,", b'"Sample, Inc.",')
    (row,) = plan_import(read_table(fixed, "rejected-list.csv"), ImportOptions(), find).rows
    assert (row.action, row.values["company"], row.values["phone"]) == (
        "create",
        "Sample, Inc.",
        "03-1234-5678",
    )
    returned = list(csv.reader(io.StringIO(rejected_file(table, plan).decode("utf-8-sig"))))
    assert returned[1][-1] == (
        "見出しの 4 列より多くの値があります (5列目: 「03-1234-5678」)。"
        '値の中にカンマ「,」があり、引用符 (") で囲まれていないのでは?'
    )


def test_a_stray_quote_rejects_every_line_it_swallows_and_says_which() -> None:
    lines = [
        "メールアドレス,氏名,会社名",
        'a@example.jp,"山田 太郎,株式会社エー',  # an OCR artefact: the quote never closes
        *[f"v{n}@example.jp,来場 {n},株式会社ビー" for n in range(3, 8)],
    ]
    data = ("\r\n".join(lines) + "\r\n").encode("cp932")
    table = read_table(data, "cards.csv")
    plan = plan_import(table, ImportOptions(), find)
    reason = (
        'unbalanced quote: a " in file lines 2-7 runs their rows together into one cell;'
        " none of those lines is imported (fix the quote)"
    )
    assert [(r.row, r.action, r.reason) for r in plan.rows] == [
        (n, "rejected", reason) for n in range(2, 8)
    ]
    # Each swallowed line is a row of the rejected file, its cells where they belong
    returned = list(csv.reader(io.StringIO(rejected_file(table, plan, "en").decode("utf-8-sig"))))
    assert returned[1] == ["a@example.jp", "山田 太郎,株式会社エー", "", reason]
    assert returned[2] == ["v3@example.jp", "来場 3", "株式会社ビー", reason]
    assert len(returned) == 1 + 6

    # A quote further down that closes it ends what it swallows; the rows after import
    closed = [
        *lines[:4],
        'v4@example.jp,"来場" 4,株式会社ビー',
        "v5@example.jp,来場 5,株式会社ビー",
    ]
    table = read_table("\r\n".join(closed).encode(), "cards.csv")
    plan = plan_import(table, ImportOptions(), find)
    assert [(r.row, r.action) for r in plan.rows] == [
        (2, "rejected"), (3, "rejected"), (4, "rejected"), (5, "rejected"), (6, "create"),
    ]  # fmt: skip
    assert "file lines 2-5" in (plan.rows[0].reason or "")

    # A quoted cell over two lines is a cell over two lines, not a stray quote
    memo = 'email,name,メモ\r\nm@example.jp,Mika,"1行目\n2行目"\r\nn@example.jp,Nao,\r\n'
    plan = plan_import(read_table(memo.encode(), "list.csv"), ImportOptions(), find)
    assert [(r.row, r.action, r.email) for r in plan.rows] == [
        (2, "create", "m@example.jp"), (3, "create", "n@example.jp"),
    ]  # fmt: skip


def test_a_quote_that_runs_past_the_csv_limit_rejects_its_lines_and_the_rest_is_read() -> None:
    lines = ["email,name,company", 'a@example.jp,"Stray,Quote']
    lines += [f"v{n:04d}@example.jp,Visitor {n:04d},Sample Corp." for n in range(3, 6003)]
    table = read_table("\r\n".join(lines).encode(), "list.csv")
    plan = plan_import(table, ImportOptions(), find)
    assert [r.row for r in plan.rows] == list(range(2, 6003))  # every line accounted for
    rejected = [r for r in plan.rows if r.action == "rejected"]
    last = rejected[-1].row
    assert [r.row for r in rejected] == list(range(2, last + 1))
    assert 131_072 < sum(len(line) + 2 for line in lines[1:last]) < 131_072 + 100
    assert rejected[0].reason is not None
    assert rejected[0].reason.startswith(f'unbalanced quote: a " in file lines 2-{last} ')
    assert {r.action for r in plan.rows if r.row > last} == {"create"}


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        # cp932 whose only Japanese is half-width katakana that is also valid UTF-8 (ﾃｽ is ý)
        ("email,name_kana\r\na@example.com,ﾃｽ\r\n", "cp932"),
        ("email,name_kana\r\na@example.com,ﾌｼﾞｲ\r\nb@example.com,ﾃｽ\r\n", "cp932"),
        # UTF-8 with accented Latin inside words, symbols, Cyrillic, Japanese: UTF-8 still
        ("email,name\r\na@example.com,José\r\nb@example.com,Zoë Müller\r\n", "utf-8"),
        ("email,city,budget\r\na@example.com,São Paulo,¥1000\r\n", "utf-8"),
        ("email,name\r\na@example.com,Иван Петров\r\n", "utf-8"),
        ("email,name_kana\r\na@example.com,ﾃｽﾄ 山田\r\n", "utf-8"),
    ],
)
def test_half_width_kana_that_also_decodes_as_utf8_is_read_as_cp932(
    text: str, encoding: str
) -> None:
    table = read_table(text.encode(encoding), "list.csv")
    assert table.encoding == encoding
    assert table.rows == [line.split(",") for line in text.split("\r\n")[1:-1]]


def test_a_saved_mapping_too_large_to_keep_is_refused_as_the_cli_saves_it() -> None:
    from tsunagu.imports.saved import SavedMapping, checked_mapping

    def problems(**given: Any) -> list[str]:
        try:
            checked_mapping(SavedMapping(name="cards", source="trade_show", **given))
        except ValidationFailed as error:
            return [f"{e.field}: {e.message}" for e in error.errors]
        return []

    assert problems(columns={"来" * 200: "booth"}) == []
    assert problems(columns={"来" * 201: "booth"}) == [
        f"columns: the header {'来' * 40 + '…'!r} is longer than 200 characters"
    ]
    assert problems(columns={f"列{n}": "-" for n in range(201)}) == [
        "columns: at most 200 columns, not 201"
    ]
    assert problems(columns={f"{n:03d}" + "来" * 197: "-" for n in range(51)}) == [
        "columns: the headers come to 10,200 characters, more than 10,000"
    ]
    assert problems(consent_column="案内" * 101, consent_yes=["可"]) == [
        "consent_column: at most 200 characters"
    ]
    assert problems(consent_column="案内", consent_yes=["可" * 101]) == [
        "consent_yes: at most 20 answers of 100 characters"
    ]


# ---------------------------------------------------------------- undo: the channel it added
def test_undo_takes_off_the_channel_a_list_added_unless_something_since_came_from_it() -> None:
    from tsunagu.imports.apply import (
        LEAD_UPDATED,
        AppliedRow,
        source_relied_on,
        without_its_source,
    )
    from tsunagu.leads.capture import FORM_SUBMITTED
    from tsunagu.leads.model import LeadEvent

    # Given a known lead a trade-show list (imp_a) updated, adding trade_show to its sources
    known = Lead(lead_id="lead_1", email="known@example.jp", fields={},
                 sources=["web_form", "trade_show"], visitor_ids=set(), stage="lead",
                 created_at=AT, updated_at=AT)  # fmt: skip
    row = AppliedRow(row=2, outcome="updated", lead_id="lead_1", email="known@example.jp",
                     at=AT, source_added="trade_show")  # fmt: skip

    def event(kind: str, **said: Any) -> LeadEvent:
        return LeadEvent(f"evt_{len(said)}_{kind}", kind, AT, "lead_1", properties=said)

    own = event(LEAD_UPDATED, import_id="imp_a", source="trade_show")
    undo_of_b = event(LEAD_UPDATED, import_id="imp_b", undone=True)
    of_b = event(LEAD_UPDATED, import_id="imp_b", source="trade_show", row=3)
    form = event(FORM_SUBMITTED, source="trade_show", form_id="booth")

    def relied_on(*events: LeadEvent, undone: frozenset[str] = frozenset()) -> bool:
        return source_relied_on(events, "trade_show", "imp_a", undone.__contains__)

    # Then its own row, an undo's event and a list undone since rely on nothing
    assert not relied_on(own, undo_of_b, of_b, undone=frozenset({"imp_b"}))
    # And another list still applied, or a form at the booth, keep the channel
    assert relied_on(own, of_b) and relied_on(own, form)

    # When undone with nothing relying on it, the channel goes; otherwise it stays
    taken_off = (replace(known, sources=["web_form"]), "trade_show")
    assert without_its_source(known, row, lambda _: False) == taken_off
    assert without_its_source(known, row, lambda _: True) == (known, None)
    # And a row that found the channel there already (or a receipt from before it was kept)
    # takes nothing off
    already = AppliedRow(row=2, outcome="updated", lead_id="lead_1", email="known@example.jp",
                         at=AT)  # fmt: skip
    assert without_its_source(known, already, lambda _: False) == (known, None)


# ---------------------------------------------------------------- undo: the opt-ins it gave
def test_undo_withdraws_a_list_s_opt_in_unless_answered_since() -> None:
    from tsunagu.imports.apply import AppliedRow, undone_consent
    from tsunagu.leads.model import ConsentEvidence
    from tsunagu.mail.consent import ConsentRecords

    def said(n: int, status: str, by: str, **more: str) -> ConsentEvidence:
        at = f"2026-12-0{n}T01:00:00.000Z"
        return ConsentEvidence(f"cns_{n}", "lead_1", "known@example.jp", "marketing", status,
                               at, text_version=by, **more)  # fmt: skip

    # Given a lead a form opted in, which list A opted in again, then list B (read meanwhile)
    form = said(1, "opted_in", "2026-11", form_id="demo")
    pending = said(2, "pending", "2026-11", form_id="news")  # a sign-up not confirmed
    of_a, of_b = said(3, "opted_in", "imp_a"), said(4, "opted_in", "imp_b")
    row = AppliedRow(row=2, outcome="updated", lead_id="lead_1", email="known@example.jp",
                     at=of_b.at, consent="yes")  # fmt: skip
    ledger = [form, pending, of_a, of_b]

    def undo_b(rests_on: str | None, undone: frozenset[str] = frozenset()) -> Any:
        records = ConsentRecords(ledger, {"marketing": rests_on} if rests_on else {})
        return undone_consent(records, row, "imp_b", undone.__contains__)

    # When B is undone while the state rests on its opt-in, it goes back to A's
    assert undo_b("cns_4").back_to == of_a
    # ... or, A undone already, past A's opt-in to the form's (the pending sign-up set no
    # state): opted in before the list too, which stays, and is said
    back = undo_b("cns_4", frozenset({"imp_a"}))
    assert (back.write, back.back_to, back.withdrawn) == (True, form, False)
    assert (back.kept.reason_code, back.kept.by) == ("opted_in_before", "form:demo")
    # And with nothing before it, back to no answer: withdrawn
    alone = ConsentRecords([of_b], {"marketing": "cns_4"})
    none_before = undone_consent(alone, row, "imp_b", lambda _: False)
    assert none_before is not None
    assert (none_before.write, none_before.back_to, none_before.withdrawn) == (True, None, True)

    # When the state rests on a later answer, that answer is kept, and said
    later = said(5, "opted_out", "", method="preferences")
    ledger.append(later)
    kept = undo_b("cns_5")
    assert (kept.write, kept.withdrawn) == (False, False)
    assert kept.kept.as_json()["reason_params"] == {
        "topic": "marketing", "at": later.at, "by": "preferences",
    }  # fmt: skip

    # And an undo asked again after one cut short (it took the topic back to no answer) does
    # not withdraw twice, but counts it
    ledger[-1] = said(5, "withdrawn", "imp_b", method="import_undone")
    again = undo_b(None)
    assert (again.write, again.withdrawn) == (False, True)

    # And an opt-out the list gave is kept while the state rests on it, and said
    no = replace(row, consent="no")
    of_no = said(4, "opted_out", "imp_b")
    kept_no = undone_consent(ConsentRecords([of_no], {"marketing": "cns_4"}), no, "imp_b",
                             lambda _: False)  # fmt: skip
    assert kept_no is not None and kept_no.kept is not None
    assert (kept_no.write, kept_no.kept.reason_code) == (False, "opt_out_kept")


# ------------------------------------------------------------- values as people type them


def test_a_cell_over_two_lines_is_an_address_over_two_lines_and_elsewhere_one_line() -> None:
    data = workbook(
        [
            ["メールアドレス", "住所", "会社名", "氏名"],
            ["a@example.jp", "東京都千代田区1-1\nサンプルビル5F", "株式会社\nサンプル",
             "山田\r\n太郎"],
            ["b@example.jp", "大阪市北区2-2\u2028梅田ビル", "", "佐藤 \u2029 花子"],
        ]
    )  # fmt: skip
    plan = plan_import(read_table(data, "来場者.xlsx"), ImportOptions(), find)
    first, second = plan.rows
    # The address keeps its lines, as a form's long-text field does (U+2028 written as \n)
    assert first.values == {
        "address": "東京都千代田区1-1\nサンプルビル5F", "company": "株式会社 サンプル",
        "name": "山田 太郎",
    }  # fmt: skip
    assert second.values == {"address": "大阪市北区2-2\n梅田ビル", "name": "佐藤 花子"}
    # Any other control character is still refused
    for field in ("address", "company"):
        with pytest.raises(BadValue, match="control characters"):
            clean_value(field, "東京都\x07港区")


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2024年4月1日(月)", date(2024, 4, 1)),
        ("2024/4/1(月)", date(2024, 4, 1)),  # Excel's yyyy/m/d(aaa)
        ("２０２４／４／１（月）", date(2024, 4, 1)),
        ("2024/4/1 (月曜日) 10:00", date(2024, 4, 1)),
        ("令和6年4月1日(月曜)", date(2024, 4, 1)),
        ("2024-04-01 (Mon)", date(2024, 4, 1)),
        ("20240401", date(2024, 4, 1)),
        ("R6年4月1日", date(2024, 4, 1)),
    ],
)
def test_dates_with_their_day_of_the_week_or_as_eight_digits_are_read(text: str, day: date) -> None:
    assert read_date(text) == day


def test_a_day_of_the_week_the_date_does_not_fall_on_rejects_the_row_saying_so() -> None:
    with pytest.raises(BadValue, match=r"2024-04-01 is a Monday \(月\), not 火"):
        read_date("2024/4/1(火)")
    for text in ("2024/4/1(月火)", "20241301", "2024/4/1(xyz)"):
        with pytest.raises(BadValue):
            read_date(text)
    table = read_table("メール,来場日\r\na@example.jp,2024/4/1(火)\r\n".encode(), "x.csv")
    (row,) = plan_import(table, ImportOptions(), find).rows
    # Coded as a wrong day of the week, not as a date it cannot read: the date is written right
    assert (row.action, row.reason_code) == ("rejected", "wrong_weekday")
    assert row.reason_params == {
        "column": "来場日", "field": "visited_on", "value": "2024/4/1(火)", "day": "2024-04-01",
        "weekday": "monday",
    }  # fmt: skip


def test_a_name_with_a_japanese_ime_s_space_is_the_name_a_lead_has_with_an_ascii_one() -> None:
    stored = {"name": FieldValue("山田 太郎", Channel.WEB_FORM, AT)}
    lead = Lead("lead_yamada", "yamada@example.jp", stored, [], set(), "lead", AT, AT)
    table = read_table("メールアドレス,氏名,姓,名\r\nyamada@example.jp,山田　太郎,,\r\n"
                       "new@example.jp,,佐藤　,　花子\r\n".encode("cp932"), "x.csv")  # fmt: skip
    plan = plan_import(table, ImportOptions(Channel.WEB_FORM), lambda a: {lead.email: lead}.get(a))
    assert [(r.action, r.values) for r in plan.rows] == [
        ("unchanged", {"name": "山田 太郎"}), ("create", {"name": "佐藤 花子"}),
    ]  # fmt: skip


# ------------------------------------------------------------- files as teams bring them back


def test_a_bom_wins_over_a_saved_encoding_which_reads_only_what_detection_leaves_open() -> None:
    # The rejected rows (UTF-8 with a BOM), fixed and brought back with the source's cp932
    # mapping: the BOM says what the file is
    table = read_table(sheet("cp932"), "list.csv")
    returned = rejected_file(table, plan_import(table, ImportOptions(consent=CONSENT), find))
    again = read_table(returned, "rejected-list.csv", saved_encoding="cp932")
    assert again.encoding == "utf-8-sig" and again.header == [*HEADER, REASON_HEADER]
    assert again.rows[0][1:3] == ["鈴木", "一郎"]
    # cp932 half-width katakana beside ASCII letters reads as UTF-8 Latin ("Aﾃｽ" is "Aý"):
    # detection guesses UTF-8, the source's saved cp932 says otherwise and is taken
    kana = "email,name_kana\r\na@example.com,Aﾃｽ\r\n".encode("cp932")
    assert read_table(kana, "list.csv").encoding == "utf-8"
    assert read_table(kana, "list.csv", saved_encoding="shift_jis").rows == [
        ["a@example.com", "Aﾃｽ"]
    ]
    # UTF-16 without its BOM (every ASCII character a NUL beside it): the saved encoding
    bomless = "メールアドレス\t氏名\r\na@example.jp\t山田\r\n".encode("utf-16-le")
    assert read_table(bomless, "list.txt", saved_encoding="utf-16").rows == [
        ["a@example.jp", "山田"]
    ]
    # A file that says nothing against the saved encoding is read in it (kanji in UTF-8 is
    # UTF-8 for certain: the saved cp932 does not override it)
    assert read_table(sheet("utf-8"), "list.csv", saved_encoding="cp932").encoding == "utf-8"
    assert read_table(sheet("cp932"), "list.csv", saved_encoding="cp932").encoding == "cp932"
    # An encoding named for the file itself still overrides what the file says
    assert read_table(returned, "rejected-list.csv", "utf-8").encoding == "utf-8"
    with pytest.raises(ValidationFailed, match="encoding"):
        read_table(sheet("utf-8"), "list.csv", saved_encoding="latin-9")


def test_a_workbook_s_or_a_tsv_s_rejected_rows_are_a_csv_named_so_and_import_again() -> None:
    from tsunagu.commands import imports
    from tsunagu.imports.jobs import rejected_name

    assert rejected_name("来場者.xlsx") == "rejected-来場者.csv"
    assert rejected_name("list.TSV") == "rejected-list.csv"
    assert rejected_name("名簿 (1).csv") == "rejected-名簿 (1).csv"
    assert rejected_name("C:\\Users\\a\\名簿.txt") == "rejected-名簿.csv"

    class Files:
        def __init__(self) -> None:
            self.named: list[str] = []

        def put(self, key: str, data: bytes) -> None:
            pass

        def download_url(self, key: str, seconds: int, file_name: str) -> str:
            self.named.append(file_name)
            return f"https://files.example.com/{key}"

    data = workbook([["メールアドレス", "氏名"], ["broken", "山田"], ["ok@example.jp", "佐藤"]])
    table = read_table(data, "来場者.xlsx")
    planned = imports.PlannedImport(table, plan_import(table, ImportOptions(), find))
    ports: Any = type("Ports", (), {"files": Files()})()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imports, "REJECTED_INLINE_BYTES", 0)  # behind a link, as a large one is
        imports.plan_answer(ports, planned, "来場者.xlsx", 10)
    assert ports.files.named == ["rejected-来場者.csv"]
    fixed = planned.rejected_file().replace(b"broken", b"fixed@example.jp")
    assert read_table(fixed, ports.files.named[0]).rows[0][:2] == ["fixed@example.jp", "山田"]

    # One saved before under the list's own name (rejected-list.tsv) is read by what it holds
    tsv = "メールアドレス\t氏名\r\nbroken\t山田\r\n".encode()
    table = read_table(tsv, "list.tsv")
    returned = rejected_file(table, plan_import(table, ImportOptions(), find))
    again = read_table(returned.replace(b"broken", b"fixed@example.jp"), "rejected-list.tsv")
    assert again.delimiter == ","
    assert [r.action for r in plan_import(again, ImportOptions(), find).rows] == ["create"]
    # A one-column file says nothing: its name does
    assert read_table(b"email\r\na@example.jp\r\n", "list.tsv").delimiter == "\t"


def test_the_header_is_found_below_a_title_and_the_plan_says_which_row_it_was() -> None:
    rows = [["展示会来場者リスト 2026", ""], ["", ""], ["メールアドレス", "氏名"],
            ["a@example.jp", "山田"], ["b@example.jp", "佐藤"]]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    table = read_table(out.getvalue().encode("cp932"), "来場者.csv")
    assert (table.encoding, table.header) == ("cp932, header on row 3", ["メールアドレス", "氏名"])
    plan = plan_import(table, ImportOptions(), find)
    assert [(r.row, r.email) for r in plan.rows] == [(4, "a@example.jp"), (5, "b@example.jp")]
    assert plan.encoding == "cp932, header on row 3"
    # A workbook's likewise, its sheet named first
    titled = workbook([["来場者リスト"], [None], ["E-mail", "Name"], ["c@example.jp"]])
    book = read_table(titled, "a.xlsx")
    assert book.encoding == "xlsx, sheet 'Sheet', header on row 3" and book.row_numbers == [4]
    # A header the aliases do not know is found by the mapping the plan reads it with
    custom = "名刺交換会\r\n連絡先,ご芳名\r\nc@example.jp,名刺\r\n".encode()
    found = read_table(custom, "cards.csv", mapping={"連絡先": "email"})
    assert found.header == ["連絡先", "ご芳名"]
    # A header with no e-mail column is the first row; a row below it that happens to hold an
    # alias (a 連絡方法 column's メール) is a row of the list, not its header
    listed = "連絡先,連絡方法\r\nd@example.jp,メール\r\n".encode()
    assert read_table(listed, "x.csv").header == ["連絡先", "連絡方法"]
    # No row names an e-mail column: refused naming the row that was read as the header
    alone = "展示会来場者リスト 2026\r\n連絡先,氏名\r\nd@example.jp,山田\r\n".encode()
    with pytest.raises(ValidationFailed) as refused:
        plan_import(read_table(alone, "x.csv"), ImportOptions(), find)
    (problem,) = refused.value.errors
    assert "(展示会来場者リスト 2026)" in problem.message and "first 10 rows" in problem.message


def test_columns_with_the_same_header_are_told_apart_and_a_mapping_can_name_each() -> None:
    rows = [["メールアドレス", "電話番号", "電話番号", "電話番号 (2)", "TEL"],
            ["a@example.jp", "03-1111-1111", "090-1111-1111", "内線 12", ""],
            ["broken", "03-2222-2222", "090-2222-2222", "", ""]]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    table = read_table(out.getvalue().encode(), "list.csv")
    # The second 電話番号 takes the first number no other header holds; TEL is another header
    # (an alias of the same field, refused only if both are read as it)
    assert table.header == ["メールアドレス", "電話番号", "電話番号 (3)", "電話番号 (2)", "TEL"]
    options = ImportOptions(mapping={"電話番号 (3)": "mobile", "TEL": "-"})
    plan = plan_import(table, options, find)
    assert plan.columns == {
        "メールアドレス": "email", "電話番号": "phone", "電話番号 (3)": "mobile",
    }  # fmt: skip
    assert plan.unmapped == ["電話番号 (2)", "TEL"]
    assert plan.rows[0].values == {"phone": "03-1111-1111", "mobile": "090-1111-1111"}
    # The rejected rows carry the header as the plan showed it, and import again the same way
    returned = rejected_file(table, plan).replace(b"broken", b"fixed@example.jp")
    again = read_table(returned, "rejected-list.csv")
    assert again.header[:5] == table.header
    fixed = plan_import(again, options, find)
    assert fixed.rows[0].values == {"phone": "03-2222-2222", "mobile": "090-2222-2222"}


def test_an_old_excel_workbook_is_refused_asking_for_xlsx_or_csv_not_an_encoding() -> None:
    xls = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 20
    for name in ("来場者.xls", "来場者.xlsx", "来場者.csv"):
        with pytest.raises(ValidationFailed) as refused:
            read_table(xls, name)
        (problem,) = refused.value.errors
        assert problem.field == "file" and "save it as .xlsx" in problem.message
        assert "encoding" not in problem.message


def test_an_item_is_measured_as_dynamodb_counts_it() -> None:
    from tsunagu.store.transactions import item_bytes

    item = {
        "lead_id": {"S": "lead_1"},  # 7 + 6
        "score": {"N": "12345"},  # 5 + at most 4 (a byte per two digits, and one)
        "fields": {"M": {"name": {"M": {"value": {"S": "山田"}}}}},  # 6 + 3 + 1 + 4 + 3 + 1 + 5 + 6
        "sources": {"L": [{"S": "import"}]},  # 7 + 3 + 1 + 6
        "tags": {"SS": ["a", "bc"]},  # 4 + 3
        "ok": {"BOOL": True},  # 2 + 1
    }
    assert item_bytes(item) == 13 + 9 + 29 + 17 + 7 + 3


@pytest.mark.parametrize(
    ("name", "company"),
    [
        ("山田 太郎", "株式会社サンプル"),  # an ordinary row
        ("ﷺ" * 500, "ﷺ" * 500),  # NFKC makes each of these 18 characters, spaced into words
        ("ﬃ" * 500, "ᾮ " * 250),  # ... these three, and case folding more
        (" ".join(f"{n:03d}" for n in range(125)), "x" * 500),  # many words
    ],
)
@pytest.mark.parametrize("known", [False, True])
def test_what_a_row_writes_is_never_more_than_most_bytes_says(
    name: str, company: str, known: bool
) -> None:
    from datetime import UTC, datetime

    from tsunagu.imports import apply
    from tsunagu.imports.plan import RowPlan, rebased
    from tsunagu.store.converters import lead_values
    from tsunagu.store.models import LeadItem
    from tsunagu.store.transactions import item_bytes, put_kwargs

    # Given a row of long values, against a new lead or one holding others already
    values = {"name": name, "company": company, "job_title": "部長", "memo": "備考" * 250}
    stored = {n: FieldValue(v[::-1], Channel.IMPORT, AT) for n, v in values.items()}
    lead = Lead(
        "lead_known", "known@example.jp", stored, ["import"], {"v_1"}, "mql", AT, AT,
        tags={"展示会"}, stage_history=[{"from": "lead", "to": "mql", "by": "x", "at": AT}],
        version=2,
    ) if known else None  # fmt: skip
    planned = RowPlan(2, "create", "known@example.jp", values)
    row = rebased(planned, lead, Channel.TRADE_SHOW)
    options = ImportOptions(Channel.TRADE_SHOW)
    write, applied = apply.row_write(
        row, lead, import_id=apply.SIZED_IMPORT_ID, file_name="x.csv", options=options,
        now=datetime(2026, 12, 4, tzinfo=UTC),
    )  # fmt: skip

    # Then the lead's item and the row's record in a receipt are each within the bound
    measured = item_bytes(put_kwargs(LeadItem, lead_values(write.lead))["Item"])
    record = applied.stored_bytes() + apply.RECEIPT_KEY_BYTES
    assert max(measured, record) <= apply.most_bytes(row, lead)
