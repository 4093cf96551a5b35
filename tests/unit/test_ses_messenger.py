"""The SES adapter, with a fake SES v2 client: throttling retried, rejections not, rate, MIME."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tsunagu.mail.send import MAIL_SENT, MessengerError, OutgoingMail, SendRequest, send_mail
from tsunagu.settings import Settings
from tsunagu.store.ses import MAX_ATTEMPTS, SEND_BUDGET_SECONDS, SesMessenger

from .mail_fakes import (
    MemoryMailStore,
    make_clock,
    make_lead,
    make_policy,
    make_signer,
    make_template,
)


class FakeClientError(Exception):
    """Shaped like botocore's ClientError: the error code is in ``response``."""

    def __init__(self, code: str) -> None:
        super().__init__(f"An error occurred ({code}) when calling the SendEmail operation")
        self.response = {"Error": {"Code": code, "Message": code}}


class FakeSes:
    """SES v2's send_email: raises the given errors first, then accepts."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.errors:
            raise self.errors.pop(0)
        self.accepted.append(request)
        return {"MessageId": f"ses-{len(self.accepted)}"}


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    def backoff(self) -> list[float]:
        """The retry waits (the rate-keeping waits are far shorter at 1,000 mails/s)."""
        return [s for s in self.calls if s >= 0.1]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "stage": "dev",
        "region": "ap-northeast-1",
        "leads_table": "leads",
        "lead_identities_table": "identities",
        "events_table": "events",
        "consent_table": "consent",
        "forms_table": "forms",
        "idempotency_table": "idempotency",
        "sites_table": "sites",
        "tracking_secret_arn": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:k",
        "templates_table": "templates",
        "journey_waits_table": "waits",
        "journeys_table": "journeys",
        "qualification_table": "qualification",
        "lead_terms_table": "lead-terms",
        "mail_configuration_set": "tsunagu-dev",
        "max_send_rate": 1000,
    }
    return Settings(**{**values, **overrides})


def outgoing(**overrides: Any) -> OutgoingMail:
    values: dict[str, Any] = {
        "sender": "=?utf-8?b?5qCq5byP5Lya56S+44Gk44Gq44GQ?= <news@example.com>",
        "recipient": "hanako@example.com",
        "subject": "【ご案内】セミナーのお知らせ",
        "html": "<html><body><p>佐藤 花子 様</p></body></html>",
        "text": "佐藤 花子 様\n",
        "reply_to": "sales@example.com",
        "headers": {
            "List-Unsubscribe": "<https://mail.example.com/u/k1.abc.def>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Tsunagu-Message-Id": "msg_1",
        },
        "tags": {"lead_id": "lead_1", "message_id": "msg_1", "topic": "marketing"},
    }
    return OutgoingMail(**{**values, **overrides})


def messenger(client: FakeSes, sleeps: Sleeps, **overrides: Any) -> SesMessenger:
    return SesMessenger(settings(**overrides), client=client, sleep=sleeps)


def parsed(request: dict[str, Any]) -> EmailMessage:
    message = message_from_bytes(request["Content"]["Raw"]["Data"], policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("code", ["TooManyRequestsException", "ThrottlingException"])
def test_a_throttled_send_is_retried_with_backoff_and_sent_once(code: str) -> None:
    # Given SES throttling twice, then accepting
    client, sleeps = FakeSes(FakeClientError(code), FakeClientError(code)), Sleeps()
    # When one mail is sent
    message_id = messenger(client, sleeps).send(outgoing())
    # Then it was tried three times, accepted once, with growing waits in between
    assert message_id == "ses-1"
    assert len(client.calls) == 3 and len(client.accepted) == 1
    assert sleeps.backoff() == [0.2, 0.4]


def test_endless_throttling_gives_up_with_a_messenger_error() -> None:
    client = FakeSes(*[FakeClientError("TooManyRequestsException")] * (MAX_ATTEMPTS + 2))
    sleeps = Sleeps()
    with pytest.raises(MessengerError, match="TooManyRequestsException"):
        messenger(client, sleeps).send(outgoing())
    assert len(client.calls) == MAX_ATTEMPTS
    assert client.accepted == []
    waits = sleeps.backoff()
    assert len(waits) == MAX_ATTEMPTS - 1
    assert waits == sorted(waits) and max(waits) <= 5.0


def template_timeout(resource: str) -> int:
    """The Lambda Timeout of a function in template.yaml (Globals' when it sets none)."""
    text = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    block = re.split(r"\n  \w+:\n", text.split(f"\n  {resource}:\n", 1)[1])[0]
    found = re.search(r"\n      Timeout: (\d+)", block)
    assert found is not None, block[:400]
    return int(found.group(1))


def test_a_hung_ses_call_ends_as_unknown_before_the_sending_function_is_killed() -> None:
    # Given the adapter's own client, with botocore's timeouts as it sets them
    config = SesMessenger(settings())._client.meta.config
    # Then one attempt that hangs (a timeout: the "unknown" outcome) ends, and the send's
    # budget with it, while every function that sends is still running to record it
    worst = config.connect_timeout + config.read_timeout
    assert (config.connect_timeout, config.read_timeout) == (3, 10)
    assert worst <= SEND_BUDGET_SECONDS
    for function in ("SendEmailFunction", "ReceiveReplyFunction", "HandOffFunction"):
        assert template_timeout(function) >= SEND_BUDGET_SECONDS + 5, function
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}


def test_throttling_is_not_retried_past_the_sends_time() -> None:
    # Given SES that throttles every call, each answer coming only after 8 s
    now = [0.0]

    class SlowThrottling(FakeSes):
        def send_email(self, **request: Any) -> dict[str, Any]:
            now[0] += 8.0
            return super().send_email(**request)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    client = SlowThrottling(*[FakeClientError("ThrottlingException")] * MAX_ATTEMPTS)
    ses = SesMessenger(settings(), client=client, sleep=sleep, monotonic=lambda: now[0])
    # When one mail is sent, Then it gives up (definite: SES took nothing) before another
    # attempt could end past the budget, not after all MAX_ATTEMPTS
    with pytest.raises(MessengerError, match="ThrottlingException") as refused:
        ses.send(outgoing())
    assert refused.value.definite
    assert len(client.calls) == 1  # 8 s + 0.2 s backoff + 13 s worst case > 20 s
    assert now[0] <= SEND_BUDGET_SECONDS


@pytest.mark.parametrize(
    "error",
    [
        FakeClientError("MessageRejected"),
        FakeClientError("MailFromDomainNotVerifiedException"),
        FakeClientError("AccountSuspendedException"),
        ConnectionError("connection reset"),
    ],
)
def test_a_rejection_is_a_messenger_error_at_once(error: Exception) -> None:
    client, sleeps = FakeSes(error), Sleeps()
    with pytest.raises(MessengerError) as raised:
        messenger(client, sleeps).send(outgoing())
    assert len(client.calls) == 1
    assert sleeps.backoff() == []
    code = getattr(error, "response", {"Error": {"Code": type(error).__name__}})["Error"]["Code"]
    assert code in str(raised.value)


class ReadTimeoutError(Exception):
    """Named like botocore's: the request went out, the answer never came."""


class ServerError(FakeClientError):
    def __init__(self) -> None:
        super().__init__("InternalFailure")
        self.response["ResponseMetadata"] = {"HTTPStatusCode": 500}


@pytest.mark.parametrize(
    ("error", "definite"),
    [
        (FakeClientError("MessageRejected"), True),
        (ConnectionError("connection refused"), True),
        (ReadTimeoutError("read timed out"), False),
        (ServerError(), False),
    ],
)
def test_a_refusal_is_definite_and_a_timeout_is_not(error: Exception, definite: bool) -> None:
    # A refusal means no mail went out; a timeout or an SES 5xx may have sent it
    with pytest.raises(MessengerError) as raised:
        messenger(FakeSes(error), Sleeps()).send(outgoing())
    assert raised.value.definite is definite


def test_the_request_names_sender_recipient_configuration_set_and_tags() -> None:
    client = FakeSes()
    messenger(client, Sleeps()).send(outgoing())
    [request] = client.calls
    assert request["FromEmailAddress"].endswith("<news@example.com>")
    assert request["Destination"] == {"ToAddresses": ["hanako@example.com"]}
    assert request["ConfigurationSetName"] == "tsunagu-dev"
    assert request["EmailTags"] == [
        {"Name": "lead_id", "Value": "lead_1"},
        {"Name": "message_id", "Value": "msg_1"},
        {"Name": "topic", "Value": "marketing"},
    ]


def test_without_a_configuration_set_none_is_named() -> None:
    client = FakeSes()
    messenger(client, Sleeps(), mail_configuration_set=None).send(outgoing())
    assert "ConfigurationSetName" not in client.calls[0]


def test_the_mime_has_both_parts_and_the_unsubscribe_headers() -> None:
    client = FakeSes()
    messenger(client, Sleeps()).send(outgoing())
    message = parsed(client.calls[0])
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part for part in message.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert isinstance(parts["text/plain"], EmailMessage)
    assert isinstance(parts["text/html"], EmailMessage)
    assert parts["text/plain"].get_content().replace("\r\n", "\n") == "佐藤 花子 様\n"
    assert "<p>佐藤 花子 様</p>" in parts["text/html"].get_content()
    assert message["List-Unsubscribe"] == "<https://mail.example.com/u/k1.abc.def>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Tsunagu-Message-Id"] == "msg_1"
    assert message["Subject"] == "【ご案内】セミナーのお知らせ"
    assert message["To"] == "hanako@example.com"
    assert message["Reply-To"] == "sales@example.com"
    assert message["From"].addresses[0].display_name == "株式会社つなぐ"
    assert message["From"].addresses[0].addr_spec == "news@example.com"


def test_a_long_unsubscribe_url_stays_whole_on_one_line() -> None:
    # Given a signed unsubscribe URL far longer than a header line's 78 columns
    url = "https://mail.example.com/u/k1." + "A" * 180 + ".sig"
    headers = {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    client = FakeSes()
    messenger(client, Sleeps()).send(outgoing(headers=headers))
    raw: bytes = client.calls[0]["Content"]["Raw"]["Data"]
    # Then mail providers find it verbatim (not folded, not an encoded word), with CRLF endings
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert parsed(client.calls[0])["List-Unsubscribe"] == f"<{url}>"


def test_every_encoded_body_line_is_at_most_76_characters() -> None:
    # Given one long Japanese paragraph and one long ASCII line, as marketers write them
    paragraph = "佐藤様、いつもお世話になっております。" * 20
    ascii_line = "Read the guide at our site before the seminar starts next month. " * 6
    client = FakeSes()
    # When the mail is written
    messenger(client, Sleeps()).send(
        outgoing(text=f"{paragraph}\n{ascii_line}\n", html=f"<p>{paragraph}</p><p>{ascii_line}</p>")
    )
    # Then no quoted-printable line of either part is longer than RFC 2045 allows (76): longer
    # lines are a spam signal (SpamAssassin's MIME_QP_LONG_LINE)
    for part in parsed(client.calls[0]).iter_parts():
        lines = str(part.get_payload()).splitlines()
        assert max(len(line) for line in lines) <= 76, part.get_content_type()
    # And each part still reads as it was written
    parts = {p.get_content_type(): p for p in parsed(client.calls[0]).iter_parts()}
    assert isinstance(parts["text/plain"], EmailMessage)
    assert parts["text/plain"].get_content().replace("\r\n", "\n") == f"{paragraph}\n{ascii_line}\n"


def test_a_long_japanese_subject_is_encoded_words_of_at_most_75_characters() -> None:
    # Given a subject of 38 Japanese characters (about 114 bytes of UTF-8)
    subject = "【ご案内】佐藤花子様、来月開催のセミナーのご案内と資料ダウンロードのお知らせ"
    client = FakeSes()
    # When the mail is written
    messenger(client, Sleeps()).send(outgoing(subject=subject))
    raw: bytes = client.calls[0]["Content"]["Raw"]["Data"]
    head = raw.split(b"\r\n\r\n")[0].decode("ascii")
    unfolded = re.sub(r"\r\n[ \t]", " ", head)
    [line] = [line for line in unfolded.split("\r\n") if line.startswith("Subject:")]
    # Then it is folded into encoded words no longer than RFC 2047 allows (75)
    words = [word for word in line.split() if word.startswith("=?")]
    assert len(words) > 1
    assert all(len(word) <= 75 for word in words), [len(word) for word in words]
    # And every header line but List-Unsubscribe keeps to 78 columns
    folded = [line for line in head.split("\r\n") if not line.startswith("List-Unsubscribe:")]
    assert all(len(line) <= 78 for line in folded)
    # And the subject reads as written
    assert parsed(client.calls[0])["Subject"] == subject


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\r\n", "\x0b"])
def test_a_subject_is_one_line_whatever_the_stored_data_holds(separator: str) -> None:
    # A lead's name with U+2028 in it made the email package refuse every mail to the lead
    client = FakeSes()
    messenger(client, Sleeps()).send(outgoing(subject=f"[MQL A1] Taro{separator}Yamada - 75"))
    assert parsed(client.calls[0])["Subject"] == "[MQL A1] Taro Yamada - 75"


def test_no_reply_to_header_without_a_reply_to() -> None:
    client = FakeSes()
    messenger(client, Sleeps()).send(outgoing(reply_to=None))
    assert parsed(client.calls[0])["Reply-To"] is None


def test_a_header_that_cannot_be_written_is_a_messenger_error() -> None:
    # A ValueError from the email package would escape send_mail and leave its claim "sending";
    # a MessengerError is recorded as a failed send
    client = FakeSes()
    with pytest.raises(MessengerError):
        messenger(client, Sleeps()).send(
            outgoing(sender='"Taro\r\nBcc: someone@example.net" <taro@example.com>')
        )
    assert client.calls == []


def test_the_send_rate_is_kept() -> None:
    # Given a limit of one mail per second
    client, sleeps = FakeSes(), Sleeps()
    ses = messenger(client, sleeps, max_send_rate=1)
    # When three mails are sent back to back
    for _ in range(3):
        ses.send(outgoing())
    # Then the second and third each waited for (almost) a second; the first did not wait
    assert len(client.accepted) == 3
    assert len(sleeps.calls) == 2
    assert all(0.5 < wait <= 1.0 for wait in sleeps.calls), sleeps.calls


def test_through_send_mail_a_throttled_send_goes_out_once() -> None:
    # Given a consented lead and SES throttling the first attempt
    store = MemoryMailStore()
    store.add_lead(make_lead())
    store.add_template(make_template())
    store.set_consent("lead_1", "marketing", "opted_in")
    client = FakeSes(FakeClientError("TooManyRequestsException"))
    ses = messenger(client, Sleeps())
    request = SendRequest("lead_1", "welcome", "exec-1#Send welcome mail")

    def send() -> Any:
        return send_mail(
            request,
            store=store,
            messenger=ses,
            signer=make_signer(),
            clock=make_clock(),
            policy=make_policy(),
        )

    # When the journey sends, and then retries the step
    first = send()
    again = send()
    # Then SES accepted exactly one mail, recorded once
    assert (first.status, first.ses_message_id) == ("sent", "ses-1")
    assert again.replayed is True
    assert len(client.accepted) == 1
    assert len(store.events_of(MAIL_SENT)) == 1
    headers = parsed(client.accepted[0])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://mail.example.com/u/")


class LostAnswers:
    """Stands in for the network under botocore: SES took the mail, the answer never came back
    (a 500, as when SES fails after accepting). Nothing leaves the machine."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.requests += 1

        class Body:
            def stream(self, **_: Any) -> Any:
                yield b'{"message": "InternalFailure"}'

        return AWSResponse(request.url, 500, {"content-type": "application/json"}, Body())


def test_a_send_whose_answer_is_lost_goes_to_ses_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the adapter with its own botocore client (the one Lambda uses), whose every answer
    # from SES is lost after SES took the mail
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    adapter = SesMessenger(settings(), sleep=Sleeps())
    lost = LostAnswers()
    adapter._client.meta.events.register("before-send.sesv2.SendEmail", lost)
    # When one mail is sent
    with pytest.raises(MessengerError) as failure:
        adapter.send(outgoing())
    # Then SES was asked once (botocore's own retry would mail the person twice), and the
    # outcome is unknown, never "failed" (which the journey would retry)
    assert lost.requests == 1
    assert failure.value.definite is False
