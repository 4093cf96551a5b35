"""Why a row of a list is rejected: a code that stays when the words change, the parameters a
sentence about it needs (the column as the file spells it, the value as written, what was
expected), and the English text the CLI has always printed.

The code is what a reader's language is chosen from: the rejected-rows file is written in
Japanese or English here (``reason_text``), the console says it from its own locale keys
(``imports.reasons.<code>``, the same parameters; tests/static/test_console_locales.py holds the
two to the same codes and names). The English text is kept as it was written, beside the code:
the CLI prints it, and a plan stored before codes existed has only it - shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

ReasonCode = Literal[
    "unbalanced_quote",
    "cell_too_long",
    "extra_cells",
    "value_too_long",
    "control_characters",
    "invalid_date",
    "wrong_weekday",
    "invalid_value",
    "missing_email",
    "invalid_email",
    "unknown_consent",
    "row_too_large",
]
REASON_CODES: tuple[ReasonCode, ...] = get_args(ReasonCode)
REASON_PARAMS: Mapping[ReasonCode, tuple[str, ...]] = {
    # A quote that never closes ran file lines first_line..last_line together into one cell
    "unbalanced_quote": ("first_line", "last_line"),
    # A cell past the csv module's limit (a quote that ran on to the end of the file)
    "cell_too_long": ("limit",),
    # Values past the header's last column (up to three named, ``more`` besides): an unquoted
    # delimiter ("comma", "tab", else the character itself) inside a value moved them right
    "extra_cells": ("columns", "cells", "more", "delimiter"),
    "value_too_long": ("column", "field", "limit"),
    "control_characters": ("column", "field"),
    "invalid_date": ("column", "field", "value"),
    # A date whose day of the week, written beside it, is another (``weekday``: the day's own,
    # monday..sunday, said in the reader's words)
    "wrong_weekday": ("column", "field", "value", "day", "weekday"),
    # A field whose value must be of a kind (``expected``: "email_address" for owner_email)
    "invalid_value": ("column", "field", "value", "expected", "detail"),
    "missing_email": ("column",),
    # ``detail``: the address checker's own words (English)
    "invalid_email": ("column", "value", "detail"),
    # The answer is neither one of the yes answers nor one of the no answers the user gave
    "unknown_consent": ("column", "value", "yes", "no"),
    # What the row writes (its lead, or its record for undo) comes to ``size`` bytes, more
    # than the ``limit`` DynamoDB holds in one item
    "row_too_large": ("size", "limit"),
}
"""Each code's parameters, by name: every rejection of that code has them all."""

Language = Literal["ja", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
FILE_LANGUAGE: Language = "ja"
"""The rejected-rows file's language unless asked otherwise: its header is Japanese and it goes
back to the team that keeps the sheet (a Japanese team, the lists being Japanese ones)."""


@dataclass(frozen=True)
class Rejection:
    code: ReasonCode
    params: Mapping[str, Any]
    text: str
    """In English, as the CLI prints it."""

    def __post_init__(self) -> None:
        expected = set(REASON_PARAMS[self.code])
        assert set(self.params) == expected, (self.code, sorted(self.params), sorted(expected))


def unbalanced_quote(first_line: int, last_line: int) -> Rejection:
    return Rejection(
        "unbalanced_quote",
        {"first_line": first_line, "last_line": last_line},
        f'unbalanced quote: a " in file lines {first_line}-{last_line} runs their rows together'
        " into one cell; none of those lines is imported (fix the quote)",
    )


def cell_too_long(limit: int) -> Rejection:
    return Rejection("cell_too_long", {"limit": limit}, f"a cell longer than {limit:,} characters")


MAX_EXTRA_CELLS_NAMED = 3


def extra_cells(columns: int, extra: Sequence[tuple[int, str]], delimiter: str) -> Rejection:
    """``extra``: (column number, value clipped) of each value past the header's ``columns``."""
    cells = [{"column": n, "value": value} for n, value in extra[:MAX_EXTRA_CELLS_NAMED]]
    more = max(len(extra) - MAX_EXTRA_CELLS_NAMED, 0)
    named = [f"column {c['column']}: {c['value']!r}" for c in cells]
    if more:
        named.append(f"and {more} more")
    named_as = {",": "comma", "\t": "tab"}.get(delimiter)
    return Rejection(
        "extra_cells",
        {"columns": columns, "cells": cells, "more": more, "delimiter": named_as or delimiter},
        f"more cells than the header's {columns} columns ({'; '.join(named)}):"
        f" is a {named_as or repr(delimiter)} inside a value not in quotes?",
    )


def missing_email(column: str) -> Rejection:
    return Rejection("missing_email", {"column": column}, "no e-mail address")


def invalid_email(column: str, value: str, detail: str) -> Rejection:
    return Rejection(
        "invalid_email",
        {"column": column, "value": value, "detail": detail},
        f"email {value!r}: {detail}",
    )


def unknown_consent(column: str, value: str, yes: Sequence[str], no: Sequence[str]) -> Rejection:
    yes, no = sorted(yes), sorted(no)
    meanings = f"yes: {', '.join(yes)}; no: {', '.join(no)}"
    return Rejection(
        "unknown_consent",
        {"column": column, "value": value, "yes": yes, "no": no},
        f"consent {value!r} is neither a yes nor a no ({meanings})",
    )


def row_too_large(size: int, limit: int) -> Rejection:
    return Rejection(
        "row_too_large",
        {"size": size, "limit": limit},
        f"the row comes to {size:,} bytes as a lead, more than the {limit:,} one lead holds"
        " (a DynamoDB item): leave long columns out",
    )


# ------------------------------------------------------------------- in the reader's language

JAPANESE: Mapping[str, str] = {
    "unbalanced_quote": (
        '引用符 (") が閉じていないため、ファイルの {{first_line}}〜{{last_line}} 行目が'
        "1つのセルにつながっています。これらの行はどれも取り込んでいません (引用符を直してください)"
    ),
    "cell_too_long": "{{limit}} 文字を超えるセルがあります",
    "extra_cells": (
        "見出しの {{columns}} 列より多くの値があります ({{cells}})。"
        '値の中に{{delimiter}}があり、引用符 (") で囲まれていないのでは?'
    ),
    "value_too_long": "{{column}}: {{limit}} 文字を超えています",
    "control_characters": "{{column}}: 制御文字か改行が入っています",
    "invalid_date": (
        "{{column}}: 「{{value}}」は日付として読めません"
        " (2026/12/4、2026年12月4日、令和8年12月4日 などの形で書いてください)"
    ),
    "wrong_weekday": (
        "{{column}}: 「{{value}}」の曜日が日付と合いません ({{day}} は{{weekday}}です)。"
        "日付か曜日を直してください"
    ),
    "invalid_value": "{{column}}: 「{{value}}」は{{expected}}ではありません ({{detail}})",
    "missing_email": "メールアドレスがありません (列「{{column}}」が空です)",
    "invalid_email": "{{column}}: 「{{value}}」はメールアドレスとして使えません ({{detail}})",
    "unknown_consent": (
        "{{column}}: 「{{value}}」は「はい」の答え ({{yes}}) にも「いいえ」の答え ({{no}}) にも"
        "当たりません"
    ),
    "row_too_large": (
        "この行はリードにすると {{size}} バイトになり、1件のリードに保存できる {{limit}} バイト"
        " (DynamoDB の1項目) を超えます。長い値の列を減らしてください"
    ),
}
"""Each code's sentence, as the console's Japanese locale has it (``imports.reasons`` in
console/src/locales/ja.json, held equal to this by tests/static/test_console_locales.py): the
file and the screen say the same thing."""
JAPANESE_WORDS: Mapping[str, Any] = {
    "cell": "{{column}}列目: 「{{value}}」",
    "more": "ほか {{count}} 個",
    "none": "なし",
    "list_separator": "、",
    "reason_separator": "。",
    "delimiters": {"comma": "カンマ「,」", "tab": "タブ"},
    "expected": {"email_address": "メールアドレス"},
    "weekdays": {
        "monday": "月曜日",
        "tuesday": "火曜日",
        "wednesday": "水曜日",
        "thursday": "木曜日",
        "friday": "金曜日",
        "saturday": "土曜日",
        "sunday": "日曜日",
    },
}
"""What goes into the sentences (``imports.reason_words``): a cell past the header, lists."""

_NAMED_BY = {"delimiter": "delimiters", "expected": "expected", "weekday": "weekdays"}
"""The parameters that name a thing, and the group of words that says each in the reader's
language."""
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _filled(template: str, values: Mapping[str, Any]) -> str:
    """An i18next template filled in as the console fills it (KeyError for a value it lacks)."""
    return _PLACEHOLDER.sub(lambda found: str(values[found[1]]), template)


def _spoken(params: Mapping[str, Any], words: Mapping[str, Any]) -> dict[str, str]:
    """The parameters as a sentence takes them (as the console's Imports screen makes them):
    lists joined, a number with its thousands marked, named things in the reader's words."""
    separator = words["list_separator"]
    spoken: dict[str, str] = {}
    for name, value in params.items():
        if name == "cells":
            named = [_filled(words["cell"], cell) for cell in value]
            if params.get("more"):
                named.append(_filled(words["more"], {"count": params["more"]}))
            spoken[name] = separator.join(named)
        elif name in _NAMED_BY:
            spoken[name] = words[_NAMED_BY[name]].get(value, value)
        elif isinstance(value, list):
            spoken[name] = separator.join(map(str, value)) if value else words["none"]
        elif isinstance(value, int) and not isinstance(value, bool):
            spoken[name] = f"{value:,}"
        else:
            spoken[name] = str(value)
    return spoken


def reason_text(
    code: str | None, params: Mapping[str, Any], english: str, language: Language
) -> str:
    """The reason in ``language``: from its code and parameters, or the English text as it is
    when the row has no code (a plan stored before codes), a code this version does not know,
    or parameters it cannot say."""
    if language == "en" or code not in REASON_CODES:
        return english
    try:
        return _filled(JAPANESE[code], _spoken(params, JAPANESE_WORDS))
    except (KeyError, TypeError, ValueError, AttributeError):
        return english


ENGLISH_REASON_SEPARATOR = "; "
"""Between a row's reasons in English (the console's ``imports.reason_words.reason_separator``)."""


def reasons_text(
    said: Sequence[tuple[str | None, Mapping[str, Any], str]], language: Language
) -> str:
    """Every reason a row is rejected for ((code, params, English text), as RowPlan.reasons
    gives them), in ``language``, one after the other."""
    if language == "en":
        return ENGLISH_REASON_SEPARATOR.join(english for _, _, english in said)
    separator: str = JAPANESE_WORDS["reason_separator"]
    return separator.join(
        reason_text(code, params, english, language) for code, params, english in said
    )
