"""What stored text may hold, in one place.

People's names and companies end up in mail headers, where a line break ends the header (and
Python's email package refuses the mail). Line breaks are more than CR and LF: ``str.splitlines``
also breaks at U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR, NEL (U+0085), VT, FF and the
ASCII file/group/record separators - and so do mail clients and the email package. Single-line
values refuse all of them where they enter; a header is made one line whatever the data holds.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = frozenset({"Zl", "Zp"})
# Every character str.splitlines breaks at, and every other control character.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def has_control_characters(text: str, *, multiline: bool = False) -> bool:
    """Control characters, or (unless ``multiline``) any line or paragraph separator. A
    multi-line value may hold CR, LF and TAB and nothing else of the kind."""
    allowed = {"\n", "\r", "\t"} if multiline else set()
    for character in text:
        category = unicodedata.category(character)
        if character in allowed:
            continue
        if category == "Cc" or (category in _SEPARATORS and not multiline):
            return True
    return False


def normalise_line_breaks(text: str) -> str:
    """A multi-line value with U+2028 / U+2029 written as the line breaks they are."""
    return text.replace("\u2028", "\n").replace("\u2029", "\n")


def header_line(text: str) -> str:
    """``text`` as one header line: every line break and control character becomes a space."""
    return re.sub(r" {2,}", " ", _NOT_ONE_LINE.sub(" ", text)).strip()


SPREADSHEET_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A negative number as Tsunagu writes one (a report's difference, an interval's low end): an
# optional minus, ASCII digits, an optional decimal part, nothing else. Guarded, it would be the
# text '-0.0123 that a spreadsheet can neither sort nor chart; unguarded, it is only a number.
# An exponent (-1e5), a sign other than one leading minus (+81 3-..., --1, -1+1) or anything
# more is still guarded: the rule stays one a reader can check by eye.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _formula_like(cell: str) -> bool:
    """Whether a spreadsheet could run the cell as a formula: it begins with one of
    SPREADSHEET_FORMULA_STARTS as written, or once read as a spreadsheet may read it - its
    full-width letters as ASCII (Excel's Japanese edition takes ＝ for =, as an IME types it)
    and its leading blanks, ideographic spaces included, dropped (LibreOffice's "trim spaces"
    and Sheets' import do)."""
    return cell.startswith(SPREADSHEET_FORMULA_STARTS) or unicodedata.normalize(
        "NFKC", cell
    ).lstrip().startswith(SPREADSHEET_FORMULA_STARTS)


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell that Excel or Sheets will show as text, never run as a formula (a cell that
    begins with one of SPREADSHEET_FORMULA_STARTS, also after leading blanks or as full-width
    ＝ ＋ － ＠, is prefixed with ``'`` and otherwise kept as written), unless it is a plain
    number such as ``-0.0123``, which stays a number."""
    if _formula_like(cell) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def unguarded(cell: str) -> str:
    """A cell as it was before spreadsheet_safe: what a file Tsunagu exported (and the
    marketer fixed and brings back) held, so that ``'+81 3-...`` is imported as ``+81 3-...``
    and not as a changed telephone number."""
    guarded = cell.startswith("'") and _formula_like(cell[1:])
    return cell[1:] if guarded else cell
