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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

ReasonCode = Literal[
    "unbalanced_quote",
    "cell_too_long",
    "extra_cells",
    "value_too_long",
    "control_characters",
    "invalid_date",
    "invalid_value",
    "missing_email",
    "invalid_email",
    "unknown_consent",
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
    # A field whose value must be of a kind (``expected``: "email_address" for owner_email)
    "invalid_value": ("column", "field", "value", "expected", "detail"),
    "missing_email": ("column",),
    # ``detail``: the address checker's own words (English)
    "invalid_email": ("column", "value", "detail"),
    # The answer is neither one of the yes answers nor one of the no answers the user gave
    "unknown_consent": ("column", "value", "yes", "no"),
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


# ------------------------------------------------------------------- in the reader's language

_JA_DELIMITERS = {"comma": "カンマ「,」", "tab": "タブ"}
_JA_EXPECTED = {"email_address": "メールアドレス"}


def _ja_list(items: Sequence[str]) -> str:
    return "、".join(items) if items else "なし"


def _ja_extra_cells(p: Mapping[str, Any]) -> str:
    named = [f"{c['column']}列目: 「{c['value']}」" for c in p["cells"]]
    if p["more"]:
        named.append(f"ほか {p['more']} 個")
    delimiter = _JA_DELIMITERS.get(p["delimiter"], f"「{p['delimiter']}」")
    return (
        f"見出しの {p['columns']} 列より多くの値があります ({'、'.join(named)})。"
        f'値の中に{delimiter}があり、引用符 (") で囲まれていないのでは?'
    )


_JAPANESE: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "unbalanced_quote": lambda p: (
        f'引用符 (") が閉じていないため、ファイルの {p["first_line"]}〜{p["last_line"]} 行目が'
        "1つのセルにつながっています。これらの行はどれも取り込んでいません (引用符を直してください)"
    ),
    "cell_too_long": lambda p: f"{p['limit']:,} 文字を超えるセルがあります",
    "extra_cells": _ja_extra_cells,
    "value_too_long": lambda p: f"{p['column']}: {p['limit']:,} 文字を超えています",
    "control_characters": lambda p: f"{p['column']}: 制御文字か改行が入っています",
    "invalid_date": lambda p: (
        f"{p['column']}: 「{p['value']}」は日付として読めません"
        " (2026/12/4、2026年12月4日、令和8年12月4日 などの形で書いてください)"
    ),
    "invalid_value": lambda p: (
        f"{p['column']}: 「{p['value']}」は"
        f"{_JA_EXPECTED.get(p['expected'], p['expected'])}ではありません ({p['detail']})"
    ),
    "missing_email": lambda p: f"メールアドレスがありません (列「{p['column']}」が空です)",
    "invalid_email": lambda p: (
        f"{p['column']}: 「{p['value']}」はメールアドレスとして使えません ({p['detail']})"
    ),
    "unknown_consent": lambda p: (
        f"{p['column']}: 「{p['value']}」は「はい」の答え ({_ja_list(p['yes'])}) にも"
        f"「いいえ」の答え ({_ja_list(p['no'])}) にも当たりません"
    ),
}


def reason_text(
    code: str | None, params: Mapping[str, Any], english: str, language: Language
) -> str:
    """The reason in ``language``: from its code and parameters, or the English text as it is
    when the row has no code (a plan stored before codes), a code this version does not know,
    or parameters it cannot say."""
    if language == "en" or code is None or code not in _JAPANESE:
        return english
    try:
        return _JAPANESE[code](params)
    except (KeyError, TypeError, ValueError):
        return english
