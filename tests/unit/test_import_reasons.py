"""Why a row of a list is rejected, as a code with its parameters beside the English text: every
way a row is rejected has its code, the rejected-rows file says it in Japanese (or English when
asked) and imports again once fixed, and a plan kept before codes existed still reads."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from tsunagu.imports import apply
from tsunagu.imports.jobs import row_from_json, row_json
from tsunagu.imports.plan import (
    REASON_HEADER,
    ConsentColumn,
    ImportOptions,
    ImportPlan,
    RowPlan,
    plan_import,
    rejected_file,
)
from tsunagu.imports.reading import Table, read_table
from tsunagu.imports.reasons import REASON_CODES, REASON_PARAMS, Rejection, reason_text
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import Lead

CONSENT = ConsentColumn(
    "配信希望", yes=frozenset({"希望する", "はい"}), no=frozenset({"希望しない"})
)
OWNER = {"担当者": "owner_email"}
NOTES = {f"備考{n}": f"note{n}" for n in range(12)}
NOW = datetime(2026, 12, 4, 1, tzinfo=UTC)


def nobody(_address: str) -> Lead | None:
    return None


def plan_of(table: Table, options: dict[str, Any]) -> ImportPlan:
    """``options``: ImportOptions', and ``measured``: what the store would say each row's lead
    comes to, against a limit of 400,000 bytes."""
    chosen = ImportOptions(**{k: v for k, v in options.items() if k != "measured"})
    measured = options.get("measured")

    def too_large(row: RowPlan, lead: Lead | None) -> Rejection | None:
        return apply.too_large(row, lead, chosen, NOW, lambda _: measured, 400_000)

    return plan_import(table, chosen, nobody, too_large=too_large if measured else None)


def planned(text: str, **options: Any) -> list[RowPlan]:
    return plan_of(read_table(text.encode("cp932"), "list.csv"), options).rows


def first_rejected(text: str, **options: Any) -> RowPlan:
    return next(row for row in planned(text, **options) if row.action == "rejected")


SIX_CELLS = "a@example.jp,花子,サンプル,営業部,部長,03-1234-5678,100-0001,東京都\r\n"
ROWS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    # code: (the file, its options, the params, the English text as the CLI prints it)
    "unbalanced_quote": (
        'メール,氏名\r\na@example.jp,"山田 太郎\r\nb@example.jp,佐藤 花子\r\n',
        {},
        {"first_line": 2, "last_line": 3},
        'unbalanced quote: a " in file lines 2-3 runs their rows together into one cell;'
        " none of those lines is imported (fix the quote)",
    ),
    "cell_too_long": (
        'メール,氏名\r\na@example.jp,"' + "長" * 140_000 + '"\r\nb@example.jp,花子\r\n',
        {},
        {"limit": 131_072},
        "a cell longer than 131,072 characters",
    ),
    "extra_cells": (
        "メール,氏名,会社名,部署\r\n" + SIX_CELLS,
        {},
        {
            "columns": 4,
            "cells": [
                {"column": 5, "value": "部長"},
                {"column": 6, "value": "03-1234-5678"},
                {"column": 7, "value": "100-0001"},
            ],
            "more": 1,
            "delimiter": "comma",
        },
        "more cells than the header's 4 columns (column 5: '部長'; column 6: '03-1234-5678';"
        " column 7: '100-0001'; and 1 more): is a comma inside a value not in quotes?",
    ),
    "value_too_long": (
        "メール,会社名\r\na@example.jp," + "株" * 501 + "\r\n",
        {},
        {"column": "会社名", "field": "company", "limit": 500},
        "company: more than 500 characters",
    ),
    "control_characters": (
        'メール,会社名\r\na@example.jp,"株式会社\x07サンプル"\r\n',
        {},
        {"column": "会社名", "field": "company"},
        "company: control characters or line breaks",
    ),
    "invalid_date": (
        "メール,来場日\r\na@example.jp,来週\r\n",
        {},
        {"column": "来場日", "field": "visited_on", "value": "来週"},
        "'来週' is not a date",
    ),
    "wrong_weekday": (
        "メール,来場日\r\na@example.jp,2026/12/5(金)\r\n",
        {},
        {
            "column": "来場日",
            "field": "visited_on",
            "value": "2026/12/5(金)",
            "day": "2026-12-05",
            "weekday": "saturday",
        },
        "'2026/12/5(金)' is not a date: 2026-12-05 is a Saturday (土), not 金",
    ),
    "invalid_value": (
        "メール,担当者\r\na@example.jp,佐藤 営業部\r\n",
        {"mapping": OWNER},
        {
            "column": "担当者",
            "field": "owner_email",
            "value": "佐藤 営業部",
            "expected": "email_address",
            "detail": "An email address must have an @-sign.",
        },
        "owner_email must be an e-mail address (An email address must have an @-sign.)",
    ),
    "missing_email": (
        "Eメール,氏名\r\n,名無し 権兵衛\r\n",
        {},
        {"column": "Eメール"},
        "no e-mail address",
    ),
    "invalid_email": (
        "メールアドレス,氏名\r\nbroken-address,壊れ 太郎\r\n",
        {},
        {
            "column": "メールアドレス",
            "value": "broken-address",
            "detail": "An email address must have an @-sign.",
        },
        "email 'broken-address': An email address must have an @-sign.",
    ),
    "unknown_consent": (
        "メール,配信希望\r\na@example.jp,たぶん\r\n",
        {"consent": CONSENT},
        {
            "column": "配信希望",
            "value": "たぶん",
            "yes": ["はい", "希望する"],
            "no": ["希望しない"],
        },
        "consent 'たぶん' is neither a yes nor a no (yes: はい, 希望する; no: 希望しない)",
    ),
    "row_too_large": (
        "メール," + ",".join(NOTES) + "\r\na@example.jp" + ("," + "長" * 500) * 12 + "\r\n",
        {"mapping": NOTES, "measured": 450_000},
        {"size": 450_000, "limit": 400_000},
        "the row comes to 450,000 bytes as a lead, more than the 400,000 one lead holds"
        " (a DynamoDB item): leave long columns out",
    ),
}


def test_every_code_has_a_row_that_is_rejected_with_it() -> None:
    assert sorted(ROWS) == sorted(REASON_CODES)


@pytest.mark.parametrize("code", sorted(ROWS))
def test_each_way_a_row_is_rejected_has_its_code_params_and_its_english_text(code: str) -> None:
    text, options, params, english = ROWS[code]
    row = first_rejected(text, **options)
    assert (row.reason_code, row.reason_params) == (code, params)
    assert set(row.reason_params) == set(REASON_PARAMS[row.reason_code])  # type: ignore[index]
    # The English text is as the CLI has always printed it
    assert row.reason == english
    # ... and it all survives the plan's trip through a background chunk
    assert row_from_json(row_json(row)) == row


def test_a_tab_separated_list_names_the_tab_and_more_than_three_cells_are_counted() -> None:
    data = "email\tname\r\na@example.jp\t花子\tx\ty\tz\tw\r\n".encode()
    table = read_table(data, "list.tsv")
    (row,) = plan_import(table, ImportOptions(), nobody).rows
    assert (row.reason_params["delimiter"], row.reason_params["more"]) == ("tab", 1)
    assert len(row.reason_params["cells"]) == 3
    said = rejected_file(table, plan_import(table, ImportOptions(), nobody)).decode("utf-8-sig")
    assert "値の中にタブがあり" in said and "ほか 1 個" in said


JAPANESE = {
    "invalid_email": "メールアドレス: 「broken-address」はメールアドレスとして使えません"
    " (An email address must have an @-sign.)",
    "missing_email": "メールアドレスがありません (列「Eメール」が空です)",
    "unknown_consent": "配信希望: 「たぶん」は「はい」の答え (はい、希望する) にも"
    "「いいえ」の答え (希望しない) にも当たりません",
    "invalid_date": "来場日: 「来週」は日付として読めません"
    " (2026/12/4、2026年12月4日、令和8年12月4日 などの形で書いてください)",
    "wrong_weekday": "来場日: 「2026/12/5(金)」の曜日が日付と合いません (2026-12-05 は土曜日です)。"
    "日付か曜日を直してください",
    "invalid_value": "担当者: 「佐藤 営業部」はメールアドレスではありません"
    " (An email address must have an @-sign.)",
    "unbalanced_quote": '引用符 (") が閉じていないため、ファイルの 2〜3 行目が1つのセルに'
    "つながっています。これらの行はどれも取り込んでいません (引用符を直してください)",
    "row_too_large": "この行はリードにすると 450,000 バイトになり、1件のリードに保存できる"
    " 400,000 バイト (DynamoDB の1項目) を超えます。長い値の列を減らしてください",
}


@pytest.mark.parametrize("code", sorted(JAPANESE))
def test_the_rejected_rows_file_says_why_in_japanese_and_in_english_when_asked(code: str) -> None:
    text, options, _, english = ROWS[code]
    table = read_table(text.encode("cp932"), "list.csv")
    plan = plan_of(table, options)

    def reasons(data: bytes) -> list[str]:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert rows[0][-1] == REASON_HEADER
        return [row[-1] for row in rows[1:]]

    assert set(reasons(rejected_file(table, plan))) == {JAPANESE[code]}
    assert set(reasons(rejected_file(table, plan, "en"))) == {english}


@pytest.mark.parametrize("code", REASON_CODES)
def test_every_code_is_said_in_japanese_from_its_params(code: str) -> None:
    _, _, params, english = ROWS[code]
    # (the English text is what it falls back to when its params cannot be said)
    assert reason_text(code, params, english, "ja") != english


def test_a_japanese_rejected_rows_file_imports_again_once_fixed_its_reasons_left_out() -> None:
    # Given a list whose broken address and unknown answer came back in a Japanese file
    text = (
        "メールアドレス,氏名,配信希望\r\n"
        "broken-address,壊れ 太郎,はい\r\n"
        "ok@example.jp,良い 花子,希望する\r\n"
        "maybe@example.jp,迷う 次郎,たぶん\r\n"
    )
    table = read_table(text.encode("cp932"), "list.csv")
    returned = rejected_file(table, plan_import(table, ImportOptions(consent=CONSENT), nobody))
    again = read_table(returned, "rejected.csv")
    assert [row[-1][:7] for row in again.rows] == ["メールアドレス", "配信希望: 「"]

    # When the marketer fixes the cells in it and leaves the reason column as it is
    again.rows[0][0] = "fixed@example.jp"
    again.rows[1][2] = "希望しない"
    fixed = plan_import(again, ImportOptions(consent=CONSENT), nobody)

    # Then both rows import, and the reason column is no field of theirs
    assert [(row.action, row.email, row.consent) for row in fixed.rows] == [
        ("create", "fixed@example.jp", "yes"),
        ("create", "maybe@example.jp", "no"),
    ]
    assert REASON_HEADER in fixed.unmapped
    assert all(REASON_HEADER not in row.values for row in fixed.rows)


def test_a_plan_kept_before_codes_reads_and_says_its_english_reason() -> None:
    # Given a row's plan as a chunk kept before rejections had codes held it
    kept = {
        "row": 4, "action": "rejected", "email": None, "values": {}, "changes": {}, "kept": {},
        "consent": None, "reason": "email 'broken-address': An email address must have an @-sign.",
        "into": None,
    }  # fmt: skip
    row = row_from_json(kept)
    assert (row.reason_code, row.reason_params) == (None, {})

    # Then the rejected-rows file, in Japanese too, says its English reason as it was
    table = read_table("メール\r\nok@example.jp\r\nx\r\nbroken-address\r\n".encode(), "a.csv")
    plan = ImportPlan("utf-8", Channel.IMPORT, {"メール": "email"}, [], [row])
    lines = rejected_file(table, plan).decode("utf-8-sig").splitlines()
    assert lines[1:] == ["broken-address," + kept["reason"]]


@pytest.mark.parametrize(
    ("code", "params"),
    [("a_code_from_a_later_version", {"column": "x"}), ("invalid_email", {"column": "メール"})],
)
def test_a_code_this_version_cannot_say_falls_back_to_the_english_text(
    code: str, params: dict[str, Any]
) -> None:
    assert reason_text(code, params, "the English", "ja") == "the English"


def test_a_row_is_rejected_once_for_every_problem_it_has() -> None:
    # Given a row with a wrong weekday, an owner who is not an address, a broken address and an
    # answer the consent column does not know (a blank row beside it: nothing to say)
    text = (
        "メールアドレス,来場日,担当者,配信希望\r\n"
        "broken-address,2026/12/5(金),佐藤 営業部,たぶん\r\n"
        "ok@example.jp,2026/12/4,sato@example.jp,希望する\r\n"
    )
    table = read_table(text.encode("cp932"), "list.csv")
    plan = plan_import(table, ImportOptions(mapping=OWNER, consent=CONSENT), nobody)
    rejected, accepted = plan.rows

    # Then the row is rejected for all four, in the file's order, the address after its cells
    assert [code for code, _, _ in rejected.reasons] == [
        "wrong_weekday",
        "invalid_value",
        "invalid_email",
        "unknown_consent",
    ]
    assert (rejected.reason_code, accepted.action) == ("wrong_weekday", "create")
    # ... each with its params, through a background chunk too
    assert rejected.more_reasons[0].params["column"] == "担当者"
    assert row_from_json(row_json(rejected)) == rejected

    # ... and the rejected rows' file says all four, in Japanese and in English when asked
    def reason_cell(language: Literal["ja", "en"]) -> str:
        rows = list(
            csv.reader(io.StringIO(rejected_file(table, plan, language).decode("utf-8-sig")))
        )
        assert len(rows) == 2
        return rows[1][-1]

    assert reason_cell("ja") == "。".join(
        [
            JAPANESE["wrong_weekday"],
            "担当者: 「佐藤 営業部」はメールアドレスではありません (An email address must have"
            " an @-sign.)",
            JAPANESE["invalid_email"],
            "配信希望: 「たぶん」は「はい」の答え (はい、希望する) にも「いいえ」の答え"
            " (希望しない) にも当たりません",
        ]
    )
    assert reason_cell("en").split("; ")[0] == ROWS["wrong_weekday"][3]
    assert reason_cell("en").endswith(ROWS["unknown_consent"][3])


def test_an_address_cell_that_cannot_be_read_is_not_also_said_to_be_missing() -> None:
    text = 'メール,氏名\r\n"a@example.jp\x07",花子\r\n'
    (row,) = planned(text)
    assert [code for code, _, _ in row.reasons] == ["control_characters"]


def test_a_plan_kept_before_rows_said_every_problem_reads_with_its_one_reason() -> None:
    text, options, _, _ = ROWS["invalid_date"]
    document = row_json(first_rejected(text, **options))
    del document["more_reasons"]
    assert [code for code, _, _ in row_from_json(document).reasons] == ["invalid_date"]
