"""CSV cells as a spreadsheet reads them (tsunagu.text.spreadsheet_safe): what it would run as a
formula is text, a plain number - negative ones too - stays a number it can sort and chart."""

from __future__ import annotations

import pytest

from tsunagu.text import spreadsheet_safe, unguarded


@pytest.mark.parametrize("number", ["-0.0123", "-5", "-0", "-1234567.5", "0.5", "42"])
def test_a_plain_number_stays_a_number(number: str) -> None:
    assert spreadsheet_safe(number) == number
    assert unguarded(spreadsheet_safe(number)) == number


@pytest.mark.parametrize(
    "cell",
    [
        "+81 3-1234-5678",  # a telephone number: text, or Excel reads +81 and drops the rest
        "+81",
        "-1e5", "-1E+2", "-1e-05",  # exponents: no tricks, only plain decimals pass
        "-0x1F", "--1", "-1+1", "-1-1", "-SUM(A1:A9)", "-2+3+cmd|' /C calc'!A0",
        "-1\n", "-1 ", "- 1", "-1,000", "-.5", "-1.", "-", "-１", "-inf", "-nan",
        "=1", "@SUM(A1)", "\t1", "\r1",
        # after leading blanks, which LibreOffice ("trim spaces") and Sheets' import drop
        ' =HYPERLINK("https://evil.example.com","請求書")', "  +1", "\u3000=1", "\u3000 @SUM(A1)",
        # full-width, as a Japanese IME types them: Excel's Japanese edition reads ＝ as =
        '＝HYPERLINK("https://evil.example.com","請求書")', "＋1＋1", "－1＋1", "－1", "＠SUM(A1)",
        "\uff1d1", "\ufe661",  # ＝, and the small equals sign NFKC reads as = too
    ],
)  # fmt: skip
def test_anything_else_that_starts_like_a_formula_is_text(cell: str) -> None:
    assert spreadsheet_safe(cell) == "'" + cell
    # and a file Tsunagu exported comes back as it was
    assert unguarded(spreadsheet_safe(cell)) == cell


def test_a_cell_a_spreadsheet_would_not_run_is_left_alone() -> None:
    assert spreadsheet_safe("株式会社サンプル") == "株式会社サンプル"
    assert spreadsheet_safe("") == ""
    for cell in (" 株式会社サンプル", "\u3000田中", "Ａ＝1", "１－１", "1=1", "   "):
        assert spreadsheet_safe(cell) == cell, cell
