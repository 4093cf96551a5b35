"""The words a lead is found by, and how a searched word is looked up (tsunagu.leads.search)."""

from __future__ import annotations

import pytest

from tsunagu.leads.search_words import search_key, search_words


@pytest.mark.parametrize(
    ("email", "name", "company", "words"),
    [
        # The legal form is not a word; the name is whole (no space) and in pieces; a piece
        # that begins another word is left out (「青木」 finds 青木花子 already)
        (
            "aoki@example.jp",
            "青木 花子",
            "株式会社サンプル",
            ["aoki", "example.jp", "サンプル", "花子", "青木花子"],
        ),
        # Half-width katakana and full-width letters fold; a legal form after the name too
        (
            "ito@example.jp",
            "ＩＴＯ Jiro",
            "ｻﾝﾌﾟﾙ（株）",
            ["example.jp", "itojiro", "jiro", "サンプル"],
        ),
        # Latin legal forms with their punctuation; an address's local part in pieces
        (
            "taro.yamada+news@example.com",
            None,
            "Acme Co., Ltd.",
            ["acme", "example.com", "news", "taro.yamada+news", "yamada"],
        ),
        # 「example」 and 「k」 begin other words of the lead: those find it
        ("k@example.jp", "Ken", "Example KK", ["example.jp", "ken"]),
    ],
)
def test_a_lead_is_found_by_its_words(
    email: str, name: str | None, company: str | None, words: list[str]
) -> None:
    assert search_words(email, name, company) == words


def test_a_searched_word_is_folded_the_same_way() -> None:
    assert search_key("株式会社 サンプル") == "サンプル"
    assert search_key("ＵＥＤＡ") == "ueda"
    assert search_key(" Example.JP ") == "example.jp"
    assert search_key("Acme Co., Ltd.") == "acme"
    assert search_key("co") == "co"  # only a legal form: looked for as typed


def test_a_long_word_is_kept_to_its_beginning() -> None:
    (word,) = search_words("x" * 64 + "@e.jp", None, None)[1:]
    assert word == "x" * 60 and search_key("x" * 80) == "x" * 60
