"""receive_reply fed with events/receive_reply/*.json under moto, for replies to a mail send_email
really sent: the reply lands on the lead as an event (once however often SES delivers it), a
person hears of it, an automatic reply is kept apart, a request to stop is honoured at the next
send, and what is not a reply to a mail of ours is recorded nowhere. Then route_events: a
journey waiting for ``email_replied`` resumes on a person's reply, never on an auto-reply."""

from __future__ import annotations

import json
import re
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AwsStack, load_event, moto_client
from tests.integration.mail_helpers import (
    LEAD_EMAIL,
    capture,
    consent_records,
    consent_state,
    lead_events,
    parse,
    prepare_mail,
    save_template,
    send,
    sent_messages,
    snapshot,
    token_of,
    unsubscribe,
    unsubscribe_url,
    with_body,
    with_token,
)
from tests.support.cli import runtime_here
from tests.support.leads import new_stream_records
from tests.unit.test_journey_waits import RecordingResumer
from tsunagu import cli, services
from tsunagu.journeys.waits import EventMatch, register_wait

REPLY_DOMAIN = "reply.example.com"
BUCKET = "tsunagu-test-repliesbucket"
SALES = "sales@example.com"
CONSOLE = "https://console.example.com/console"


def replies_on(aws: AwsStack) -> None:
    prepare_mail(
        aws,
        TSUNAGU_REPLY_DOMAIN=REPLY_DOMAIN,
        TSUNAGU_REPLIES_BUCKET=BUCKET,
        TSUNAGU_REPLIES_PREFIX="replies/",
        TSUNAGU_CONSOLE_URL=CONSOLE,
    )


class Sent:
    """A lead sent the welcome mail with replies on: its Reply-To, and what answering it does."""

    def __init__(self, aws: AwsStack, lead_id: str, result: dict[str, Any]) -> None:
        self.aws = aws
        self.lead_id = lead_id
        self.message_id = result["message_id"]
        message = parse(sent_messages()[-1].raw_data)
        self.reply_to = str(message["Reply-To"])
        self.subject = str(message["Subject"])

    def reply(
        self,
        body: str = "詳しく聞きたいです。\n担当者を教えてください。",
        *,
        sender: str = LEAD_EMAIL,
        to: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        ses_message_id: str | None = None,
        charset: str = "utf-8",
        verdicts: dict[str, str] | None = None,
    ) -> list[str]:
        """SES receives a reply: the receipt rule's S3 action, then its Lambda action."""
        if raw is None:
            message = EmailMessage()
            message["From"] = sender
            message["To"] = to or self.reply_to
            message["Subject"] = f"Re: {self.subject}"
            message["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.jp>"
            for name, value in (headers or {}).items():
                message[name] = value
            message.set_content(body, charset=charset)
            raw = message.as_bytes()
        return deliver(self.aws, raw, [to or self.reply_to], ses_message_id, verdicts)


def deliver(
    aws: AwsStack,
    raw: bytes,
    recipients: list[str],
    ses_message_id: str | None = None,
    verdicts: dict[str, str] | None = None,
) -> list[str]:
    """``verdicts``: SES's scan, e.g. {"spam": "FAIL"} (the example event passes everything)."""
    ses_id = ses_message_id or uuid.uuid4().hex
    moto_client("s3").put_object(Bucket=BUCKET, Key=f"replies/{ses_id}", Body=raw)
    event = load_event("receive_reply", "reply")
    record = event["Records"][0]["ses"]
    record["mail"]["messageId"] = ses_id
    record["mail"]["destination"] = record["receipt"]["recipients"] = recipients
    for name, status in (verdicts or {}).items():
        record["receipt"][f"{name}Verdict"] = {"status": status}
    result = aws.function("receive_reply").invoke(event)
    outcomes: list[str] = result["outcomes"]
    return outcomes


@pytest.fixture
def sent(aws: AwsStack) -> Sent:
    """Given a consenting lead who was sent the welcome mail (Reply-To: sales) with replies on."""
    replies_on(aws)
    save_template(aws, reply_to=SALES)
    lead_id = capture(aws)
    result = send(aws, lead_id)
    assert result["status"] == "sent"
    return Sent(aws, lead_id, result)


def forwarded() -> list[EmailMessage]:
    return [parse(m.raw_data) for m in sent_messages()[1:]]


def test_the_mail_says_to_reply_to_its_own_reply_address(sent: Sent) -> None:
    local, _, domain = sent.reply_to.partition("@")
    assert domain == REPLY_DOMAIN
    assert local.startswith("reply+") and len(local) == len("reply+") + 26
    # And another send gets another address
    send(sent.aws, sent.lead_id)
    assert str(parse(sent_messages()[-1].raw_data)["Reply-To"]) != sent.reply_to


def test_without_a_reply_domain_the_templates_reply_to_stays(aws: AwsStack) -> None:
    prepare_mail(aws)
    save_template(aws, reply_to=SALES)
    assert send(aws, capture(aws))["status"] == "sent"
    assert str(parse(sent_messages()[-1].raw_data)["Reply-To"]) == SALES


def test_a_reply_is_recorded_on_the_lead_and_passed_on_to_the_templates_reply_to(
    sent: Sent,
) -> None:
    # When the lead answers the mail
    outcomes = sent.reply()

    # Then the reply is on the lead's record: which send and template it answers, where the
    # message is kept, and nothing of what it says
    assert outcomes == [f"recorded: reply; forward to {SALES}: sent"]
    (replied,) = lead_events(sent.aws, sent.lead_id, "email_replied")
    props = replied["properties"]
    assert props["message_id"] == sent.message_id
    assert (props["template_id"], props["topic"]) == ("welcome", "marketing")
    assert props["raw"].startswith(f"s3://{BUCKET}/replies/")
    assert props["from_lead"] is True and "sender" not in props
    assert props["classification"] == "reply"
    assert "詳しく" not in json.dumps(replied, ensure_ascii=False, default=str)

    # And the template's Reply-To gets it: who, which mail, the link to the lead, the words
    (notice,) = forwarded()
    assert str(notice["To"]) == SALES
    assert str(notice["Reply-To"]) == LEAD_EMAIL
    text = str(notice.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert LEAD_EMAIL in text and "Welcome" in text
    # ... the lead's page in the hash-routed console (the console's one document, the route in
    # the fragment: a path under it names no file)
    assert f"Lead: {CONSOLE}/#/leads/hanako.sato%40example.jp" in text.splitlines()
    assert "詳しく聞きたいです。" in text
    (told,) = lead_events(sent.aws, sent.lead_id, "owner_notified")
    assert told["properties"]["about"] == "reply" and told["properties"]["owner"] == SALES


def test_without_the_templates_reply_to_the_lead_owner_hears_of_it(aws: AwsStack) -> None:
    replies_on(aws)
    save_template(aws)
    lead_id = capture(aws)
    services.lead_repository(aws.settings())  # the owner set as sales would set it
    from tsunagu.leads.merge import Channel
    from tsunagu.leads.updates import LeadUpdate, update_lead

    settings = aws.settings()
    update_lead(
        lead_id,
        LeadUpdate(fields={"owner_email": "owner@example.com"}),
        by="test",
        source=Channel.SALES,
        store=services.lead_repository(settings),
        now=services.clock(settings).now(),
    )
    Sent(aws, lead_id, send(aws, lead_id)).reply()
    assert [str(m["To"]) for m in forwarded()] == ["owner@example.com"]


def test_a_reply_delivered_twice_is_recorded_and_passed_on_once(sent: Sent) -> None:
    first = sent.reply(ses_message_id="o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1")
    again = sent.reply(ses_message_id="o3vrnil0e2ic28trm7dfhrc2v0cnbeccl4nbp0g1")
    assert first == [f"recorded: reply; forward to {SALES}: sent"]
    assert again == [f"already: recorded: reply; forward to {SALES}: already_sent"]
    assert len(lead_events(sent.aws, sent.lead_id, "email_replied")) == 1
    assert len(forwarded()) == 1


def test_a_colleagues_reply_is_recorded_on_the_lead_with_who_sent_it(sent: Sent) -> None:
    sent.reply("佐藤に代わりご連絡します。", sender="jiro.suzuki@example.jp")
    (replied,) = lead_events(sent.aws, sent.lead_id, "email_replied")
    assert replied["properties"]["from_lead"] is False
    assert replied["properties"]["sender"] == "jiro.suzuki@example.jp"
    text = str(forwarded()[0].get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "Sent by jiro.suzuki@example.jp, not the lead's own address." in text


def test_what_ses_found_a_virus_in_is_nothing_at_all(sent: Sent) -> None:
    before = snapshot(sent.aws)
    outcomes = sent.reply("配信停止してください", verdicts={"virus": "FAIL"})
    assert outcomes == ["ignored: SES found a virus in it"]
    assert snapshot(sent.aws) == before
    assert forwarded() == []


def test_spam_is_nobodys_reply_but_a_request_to_stop_in_it_is_honoured(sent: Sent) -> None:
    # Whoever has one mail has its reply address: their spam must not score the lead or
    # resume its journey, nor reach a colleague's inbox
    before = snapshot(sent.aws)
    assert sent.reply(verdicts={"spam": "FAIL"}) == ["ignored: SES judged it spam"]
    assert snapshot(sent.aws) == before
    # A stop request SES took for spam still stops the mail (less mail, never more)
    assert sent.reply("配信停止してください", verdicts={"spam": "FAIL"}) == [
        "SES judged it spam: not recorded as a reply; opted out of 'marketing'"
    ]
    assert consent_state(sent.aws, sent.lead_id)["marketing"] == "opted_out"
    assert lead_events(sent.aws, sent.lead_id, "email_replied") == []
    assert forwarded() == []
    # A grey verdict is no verdict: the reply counts
    assert sent.reply(verdicts={"spam": "GRAY"}) == [f"recorded: reply; forward to {SALES}: sent"]


def test_a_reply_from_the_leads_address_that_fails_dmarc_is_not_taken_as_the_leads(
    sent: Sent,
) -> None:
    sent.reply(verdicts={"dmarc": "FAIL"})
    (replied,) = lead_events(sent.aws, sent.lead_id, "email_replied")
    props = replied["properties"]
    assert props["from_lead"] is False and props["sender_unverified"] is True
    assert props["sender"] == LEAD_EMAIL
    text = str(forwarded()[0].get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert f"Its sender ({LEAD_EMAIL}) could not be verified (DMARC failed)" in text


@pytest.mark.parametrize(
    ("headers", "subject_prefix"),
    [({"Auto-Submitted": "auto-replied"}, ""), ({}, "自動返信: "), ({"X-Autoreply": "yes"}, "")],
)
def test_an_automatic_reply_is_kept_apart_and_told_to_nobody(
    sent: Sent, headers: dict[str, str], subject_prefix: str
) -> None:
    message = EmailMessage()
    message["From"] = LEAD_EMAIL
    message["To"] = sent.reply_to
    message["Subject"] = f"{subject_prefix}Re: {sent.subject}"
    for name, value in headers.items():
        message[name] = value
    message.set_content("不在にしております。12月3日に戻ります。", charset="iso-2022-jp")
    assert sent.reply(raw=message.as_bytes()) == ["recorded: automatic reply"]
    assert lead_events(sent.aws, sent.lead_id, "email_replied") == []
    (auto,) = lead_events(sent.aws, sent.lead_id, "email_auto_replied")
    assert auto["properties"]["automated"] is True and auto["properties"]["reasons"]
    assert forwarded() == []


def test_a_reply_asking_to_stop_opts_out_of_the_topic_and_the_next_send_is_skipped(
    sent: Sent,
) -> None:
    # When the lead answers "please stop", the original (with its own 配信停止 footer) quoted
    outcomes = sent.reply(
        "配信停止してください。\n\n2026年12月1日(火) 10:00 Example Corp <news@example.com>:\n"
        "> 配信停止: https://api.example.com/u/x\n",
        charset="iso-2022-jp",
    )

    # Then the lead is opted out of the mail's topic, with their words as the evidence
    assert outcomes == [f"recorded: reply; opted out of 'marketing'; forward to {SALES}: sent"]
    assert consent_state(sent.aws, sent.lead_id)["marketing"] == "opted_out"
    (evidence,) = [
        item
        for record, item in consent_records(sent.aws, sent.lead_id).items()
        if record.startswith("evidence#") and item["status"] == "opted_out"
    ]
    assert "配信停止してください。" in evidence["text"] and evidence["method"] == "reply"
    (changed,) = lead_events(sent.aws, sent.lead_id, "consent_changed")
    assert changed["properties"]["message_id"] == sent.message_id
    assert changed["properties"]["method"] == "reply"
    (replied,) = lead_events(sent.aws, sent.lead_id, "email_replied")
    assert replied["properties"]["classification"] == "stop"

    # And the next send of that topic is skipped for consent
    result = send(sent.aws, sent.lead_id)
    assert (result["status"], result["reason"]) == ("skipped", "opted_out")


def test_a_preference_page_loaded_before_a_reply_asking_to_stop_does_not_undo_it(
    sent: Sent,
) -> None:
    # Given the preference page open from the mail (marketing ticked)
    token = token_of(unsubscribe_url(parse(sent_messages()[0].raw_data)))
    page = unsubscribe(sent.aws, with_token(load_event("unsubscribe", "preference_page"), token))
    version = re.search(r"name=shown value=([0-9a-f]+)>", page["body"])
    assert version is not None and "name='topic:marketing' checked" in page["body"]
    # ... and a reply asking to stop sent meanwhile
    sent.reply("配信停止してください")
    assert consent_state(sent.aws, sent.lead_id) == {"marketing": "opted_out"}

    # When the page still open is saved as it was
    post = with_body(
        with_token(load_event("unsubscribe", "preferences_form"), token),
        f"form=preferences&shown={version.group(1)}&topic%3Amarketing=on",
        "application/x-www-form-urlencoded",
    )
    saved = unsubscribe(sent.aws, post)

    # Then the reply's opt-out holds, and the page says the settings changed meanwhile
    assert saved["statusCode"] == 409 and "Nothing was saved" in saved["body"]
    assert consent_state(sent.aws, sent.lead_id) == {"marketing": "opted_out"}
    assert send(sent.aws, sent.lead_id)["reason"] == "opted_out"


def test_a_stop_word_only_in_the_quoted_original_changes_no_consent(sent: Sent) -> None:
    sent.reply(
        "ありがとうございます。検討します。\n\nOn Tue, Dec 1, 2026 Example <news@example.com> "
        "wrote:\n> Unsubscribe / 配信停止: https://api.example.com/u/x\n"
    )
    assert consent_state(sent.aws, sent.lead_id)["marketing"] == "opted_in"
    assert send(sent.aws, sent.lead_id)["status"] == "sent"


def test_what_is_not_a_reply_to_a_mail_of_ours_is_recorded_nowhere(sent: Sent) -> None:
    before = snapshot(sent.aws)
    forged = f"reply+{'a' * 26}@{REPLY_DOMAIN}"
    outcomes = [
        *sent.reply(to=f"info@{REPLY_DOMAIN}"),
        *sent.reply(to=forged),
        *sent.reply(raw=b"\x00\x01 not a mail \xff"),
        *sent.reply(raw=b"From: x@example.jp\n\n" + b"a" * (10 * 1024 * 1024 + 1)),
    ]
    assert outcomes == [
        "ignored: not sent to a reply address",
        "ignored: no mail has this reply address (unknown or forged)",
        "ignored: not a mail message (no sender address (not a mail message))",
        f"ignored: the message is too large ({10 * 1024 * 1024 + 21} bytes)",
    ]
    assert snapshot(sent.aws) == before
    assert forwarded() == []


def test_a_reply_for_an_erased_lead_is_recorded_nowhere(sent: Sent) -> None:
    table = sent.aws.tables["LeadsTable"]
    moto_client("dynamodb").delete_item(TableName=table, Key={"lead_id": {"S": sent.lead_id}})
    before = snapshot(sent.aws)
    assert sent.reply() == ["ignored: the lead the reply is for is gone"]
    assert snapshot(sent.aws) == before


def test_a_receipt_that_is_not_one_raises_nothing(sent: Sent) -> None:
    result = sent.aws.function("receive_reply").invoke({"Records": [{"ses": {}}, "x"]})
    assert result == {"outcomes": ["ignored: not an SES receipt"] * 2}
    assert sent.aws.function("receive_reply").invoke({}) == {"outcomes": []}


# ---------------------------------------------------------------- journeys


def route(aws: AwsStack) -> None:
    records = new_stream_records(aws, "EventsTable")
    answer = aws.function("route_events").invoke({"Records": records})
    assert answer == {"batchItemFailures": []}, answer


def wait_for_reply(aws: AwsStack, lead_id: str, resumer: RecordingResumer) -> None:
    settings = aws.settings()
    register_wait(
        lead_id,
        "exec-1:Wait for a reply",
        "token-exec-1",
        [EventMatch(type="email_replied", label="replied")],
        3 * 24 * 3600,
        store=services.wait_repository(settings),
        clock=services.clock(settings),
    )
    # The waits route_events resumes through, made for these settings (services caches it):
    # recording, not calling Step Functions
    services.journey_waits(settings)._resumer = resumer  # type: ignore[assignment]


def test_a_journey_waiting_for_a_reply_resumes_on_a_persons_reply_not_an_auto_reply(
    sent: Sent,
) -> None:
    # Given a journey execution waiting for the lead to reply
    resumer = RecordingResumer()
    wait_for_reply(sent.aws, sent.lead_id, resumer)
    route(sent.aws)

    # When an out-of-office answers first, the wait goes on
    sent.reply("不在です。", headers={"Auto-Submitted": "auto-replied"})
    route(sent.aws)
    assert resumer.resumed == []

    # When the lead replies, the execution resumes with the reply
    sent.reply()
    route(sent.aws)
    ((token, output),) = resumer.resumed
    assert token == "token-exec-1"
    assert output["matched"] == "replied"


def test_the_timeline_counts_a_reply_as_the_persons_and_an_automatic_one_as_automated(
    sent: Sent,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a person's reply, and an out-of-office answer to the same mail
    sent.reply()
    sent.reply("不在にしております。", headers={"Auto-Submitted": "auto-replied"})

    # When the marketer reads the lead's timeline
    runtime_here(sent.aws, tmp_path, monkeypatch)
    assert cli.main(["leads", "timeline", LEAD_EMAIL]) == 0
    printed = capsys.readouterr().out

    # Then the reply is the person's activity, and the automatic one is marked as such
    assert "email_replied" in printed and "email_auto_replied" in printed
    assert "mail and site activity: 1 by people, 1 automated" in printed
