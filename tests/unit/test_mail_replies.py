"""Replies, the pure parts: the reply address's token, reading a received message (charsets,
multipart), telling an automatic reply from a person's, and a request to stop in what the person
wrote from one only in the quoted original."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from tsunagu.mail.replies import (
    NotAMail,
    automatic_reasons,
    parse_reply,
    person_lines,
    received_from_ses,
    stop_request,
)
from tsunagu.mail.reply_addresses import (
    TOKEN_PATTERN,
    new_reply_token,
    reply_address,
    tokens_in,
)

DOMAIN = "reply.example.com"
ORIGINAL = (
    "佐藤 花子 様\n\nホワイトペーパーをダウンロードいただきありがとうございます。\n"
    "--\nUnsubscribe / 配信停止: https://api.example.com/u/abc\n"
)


def mail(
    body: str,
    *,
    subject: str = "Re: 資料ダウンロードのお礼",
    charset: str = "utf-8",
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = "佐藤 花子 <hanako.sato@example.jp>"
    message["To"] = reply_address("a" * 26, DOMAIN)
    message["Subject"] = subject
    message["Message-ID"] = "<reply-1@mail.example.jp>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body, charset=charset)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


def reply_with_quote(written: str) -> str:
    quoted = "".join(f"> {line}\n" for line in ORIGINAL.splitlines())
    return f"{written}\n\n2026年12月1日(火) 10:00 Example Corp <news@example.com>:\n{quoted}"


# ---------------------------------------------------------------- the token


def test_a_token_is_128_random_bits_in_lowercase_base32_that_fits_an_address() -> None:
    tokens = {new_reply_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(TOKEN_PATTERN.match(t) for t in tokens)
    address = reply_address(next(iter(tokens)), DOMAIN)
    assert len(address.split("@")[0]) <= 64  # RFC 5321's local part


def test_the_token_is_found_in_the_reply_address_whatever_its_case() -> None:
    token = new_reply_token()
    found = tokens_in(
        [f"Sales <REPLY+{token.upper()}@Reply.Example.com>", "info@example.com"], DOMAIN
    )
    assert found == [token]


@pytest.mark.parametrize(
    "address",
    [
        "reply@reply.example.com",  # no token
        "reply+short@reply.example.com",  # not a token's shape
        f"reply+{'a' * 26}@reply.example.com.evil.example",  # another domain
        f"reply+{'a' * 26}@example.com",
        f"reply+{'a' * 25}1@reply.example.com",  # not base32
    ],
)
def test_no_token_is_read_from_an_address_that_is_not_a_reply_address(address: str) -> None:
    assert tokens_in([address], DOMAIN) == []


# ---------------------------------------------------------------- SES's receipt


def test_a_receipt_names_the_message_and_its_recipients() -> None:
    record = {
        "ses": {
            "mail": {"messageId": "o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1", "destination": []},
            "receipt": {"recipients": ["reply+x@reply.example.com"]},
        }
    }
    received = received_from_ses(record)
    assert received is not None
    assert received.recipients == ("reply+x@reply.example.com",)
    assert received.verdicts == {} and not received.has_virus and not received.judged_spam


def test_a_receipt_carries_the_scans_verdicts() -> None:
    verdicts = {"spamVerdict": "x", "virusVerdict": {"status": "fail"},
                "dmarcVerdict": {"status": "FAIL"}, "spfVerdict": {"status": "FAIL"}}  # fmt: skip
    record = {
        "ses": {
            "mail": {"messageId": "o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1"},
            "receipt": {"recipients": ["reply+x@reply.example.com"], **verdicts},
        }
    }
    received = received_from_ses(record)
    assert received is not None
    # (what is not acted on, SPF and DKIM, is not kept; a malformed verdict is no verdict)
    assert received.verdicts == {"virus": "FAIL", "dmarc": "FAIL"}
    assert received.has_virus and not received.judged_spam
    assert received.sender_unverified


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"ses": "x"},
        {"ses": {"mail": {"messageId": "../../etc/passwd"}, "receipt": {"recipients": []}}},
        {"ses": {"mail": {"messageId": "abc"}, "receipt": {"recipients": "x"}}},
    ],
)
def test_what_is_not_a_receipt_is_none(record: dict[str, object]) -> None:
    assert received_from_ses(record) is None


# ---------------------------------------------------------------- parsing


def test_an_iso_2022_jp_reply_is_read_as_japanese() -> None:
    raw = mail("詳しく聞きたいです。担当者を教えてください。", charset="iso-2022-jp")
    assert b"ISO-2022-JP" in raw.upper()
    reply = parse_reply(raw)
    assert reply.text.strip() == "詳しく聞きたいです。担当者を教えてください。"
    assert reply.sender == "hanako.sato@example.jp"
    assert reply.subject == "Re: 資料ダウンロードのお礼"


def test_an_iso_2022_jp_reply_with_windows_extensions_is_read() -> None:
    # ① (NEC's row 13) and 髙 (IBM's, NEC-selected row 124): CP50220, what Outlook writes and
    # still labels ISO-2022-JP; Python's ISO-2022-JP codec refuses both
    body = b"\x1b$B\x2d\x21\x7c\x62\x1b(B" + "から連絡します。".encode("iso2022_jp")
    with pytest.raises(UnicodeDecodeError):
        body.decode("iso2022_jp")
    message = EmailMessage()
    message["From"] = "hanako.sato@example.jp"
    message["Subject"] = "Re: x"
    message["Content-Type"] = 'text/plain; charset="ISO-2022-JP"'
    message["Content-Transfer-Encoding"] = "7bit"
    raw = bytes(message) + body
    assert parse_reply(raw).text.strip() == "①髙から連絡します。"


def test_a_multipart_reply_is_read_from_its_plain_part() -> None:
    raw = mail("テキストの本文", html="<html><body><p>HTMLの本文</p></body></html>")
    assert parse_reply(raw).text.strip() == "テキストの本文"


def test_an_html_only_reply_is_read_as_text() -> None:
    message = EmailMessage()
    message["From"] = "hanako.sato@example.jp"
    message["Subject"] = "Re: x"
    message.set_content("<html><body><p>詳しく聞きたいです</p></body></html>", subtype="html")
    assert parse_reply(message.as_bytes()).text.strip() == "詳しく聞きたいです"


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\x01\x02garbage\xff\xfe", b"this is not a mail at all\n", b"Subject: x\n\nbody"],
)
def test_what_is_not_a_mail_is_refused(raw: bytes) -> None:
    with pytest.raises(NotAMail):
        parse_reply(raw)


# ---------------------------------------------------------------- automatic replies


@pytest.mark.parametrize(
    ("headers", "subject", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: x", "auto_submitted"),
        ({"Auto-Submitted": "auto-generated; owner-email=a@example.jp"}, "x", "auto_submitted"),
        ({"X-Autoreply": "yes"}, "Re: x", "x_autoreply"),
        ({"X-Autorespond": "1"}, "Re: x", "x_autorespond"),
        ({"Precedence": "auto_reply"}, "Re: x", "precedence_auto_reply"),
        ({"Precedence": "bulk"}, "Re: x", "precedence_bulk"),
        ({"Precedence": "junk"}, "Re: x", "precedence_junk"),
        ({}, "自動返信: Re: 資料ダウンロードのお礼", "subject"),
        ({}, "【自動応答】不在のお知らせ", "subject"),
        ({}, "Out of Office: Re: Your white paper", "subject"),
        ({}, "Automatic reply: Re: Your white paper", "subject"),
        ({}, "ＡＵＴＯ ＲＥＰＬＹ", "subject"),
    ],
)
def test_an_automatic_reply_is_known_by_its_headers_or_subject(
    headers: dict[str, str], subject: str, reason: str
) -> None:
    away = "不在にしております。12月3日に戻ります。"
    reply = parse_reply(mail(away, subject=subject, headers=headers))
    assert reason in automatic_reasons(reply)


@pytest.mark.parametrize(
    "headers", [{}, {"Auto-Submitted": "no"}, {"Auto-Submitted": "No"}, {"Precedence": "list"}]
)
def test_a_persons_reply_is_not_automatic(headers: dict[str, str]) -> None:
    reply = parse_reply(mail("詳しく聞きたいです。", headers=headers))
    assert automatic_reasons(reply) == []


# ---------------------------------------------------------------- asking to stop


@pytest.mark.parametrize(
    "written",
    [
        "配信停止してください。",
        "今後のメール配信は不要です。配信不要でお願いします。",
        "お世話になっております。\n恐れ入りますが、配信を停止してください。",
        "Please unsubscribe me.",
        "Remove me from this list, thanks.",
        "ＵＮＳＵＢＳＣＲＩＢＥ",
    ],
)
def test_a_request_to_stop_in_what_the_person_wrote_is_found(written: str) -> None:
    reply = parse_reply(mail(reply_with_quote(written)))
    words = stop_request(reply)
    assert words is not None
    assert words in person_lines(reply.text)


@pytest.mark.parametrize(
    "attribution",
    [
        "2026年12月1日(火) 10:00 Example Corp <news@example.com>:",
        "On Tue, Dec 1, 2026 at 10:00 AM Example Corp <news@example.com> wrote:",
        "On Tue, Dec 1, 2026 at 10:00 AM Example Corp <news@example.com>\nwrote:",
        "-----Original Message-----\nFrom: Example Corp <news@example.com>",
        "-----元のメッセージ-----",
        "差出人: Example Corp <news@example.com>",
    ],
)
def test_a_stop_word_only_in_the_quoted_original_is_not_a_request(attribution: str) -> None:
    # The original's own footer says 配信停止 (and, unquoted below an Outlook header, too)
    body = f"詳しく聞きたいです。\n担当者を教えてください。\n\n{attribution}\n{ORIGINAL}"
    reply = parse_reply(mail(body))
    assert stop_request(reply) is None
    assert person_lines(reply.text) == ["詳しく聞きたいです。", "担当者を教えてください。"]


def test_a_stop_word_far_down_what_the_person_wrote_is_not_a_request() -> None:
    written = "\n".join(f"{n}行目の文章です。" for n in range(12)) + "\n配信停止"
    assert stop_request(parse_reply(mail(written))) is None


def test_an_automatic_reply_quoting_the_footer_asks_nothing() -> None:
    reply = parse_reply(mail(ORIGINAL, subject="自動返信: Re: x"))
    assert automatic_reasons(reply) == ["subject"]
