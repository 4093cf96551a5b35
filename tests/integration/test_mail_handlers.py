"""send_email fed with events/send_email/*.json under moto: one mail to one lead, with consent
checked at send time, tracked links, RFC 8058 headers, exactly once per idempotency key, and
the stage's allowlist; and the CLI's ``mail send`` and ``templates create``, which reach the
same function and store. (Unsubscribing: test_mail_unsubscribe.py; SES feedback:
test_mail_feedback.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pynamodb.exceptions import TransactWriteError

from tests.conftest import AwsStack, load_event
from tests.integration.mail_helpers import (
    API_URL,
    DESTINATION,
    LEAD_EMAIL,
    PRICING,
    SENDER,
    capture,
    hrefs,
    lead_events,
    parse,
    parts,
    prepare_mail,
    save_template,
    send,
    sent_messages,
    token_of,
    unsubscribe_url,
)
from tests.integration.tracking_helpers import with_token
from tests.support.cli import runtime_here
from tests.support.leads import new_stream_records
from tests.support.shipped import install_shipped_journeys
from tsunagu import cli, services
from tsunagu.analytics.rows import encode_row, row_from_record
from tsunagu.cli_functions import FunctionCliError
from tsunagu.clock import isoformat, register_in_process
from tsunagu.commands import journeys as journey_commands
from tsunagu.commands import mail
from tsunagu.errors import ValidationFailed
from tsunagu.mail.send import MessengerError, OutgoingMail
from tsunagu.mail.templates import MailTemplate
from tsunagu.store.mail import MailRepository
from tsunagu.store.ses import SesMessenger
from tsunagu.store.tables import bind_tables
from tsunagu.tracking.tokens import TokenKind
from tsunagu_local.clocks import VirtualClock
from tsunagu_local.lambdas import FunctionError


@pytest.fixture
def stack(aws: AwsStack) -> AwsStack:
    """Given a stack ready to send and the welcome template stored (version 1)."""
    prepare_mail(aws)
    save_template(aws)
    return aws


@pytest.fixture
def lead_id(stack: AwsStack) -> str:
    """Given a lead who ticked the marketing consent box on the demo form."""
    return capture(stack)


def the_only_mail() -> Any:
    (message,) = sent_messages()
    return message


def test_a_journey_step_sends_one_mail_to_the_lead(stack: AwsStack, lead_id: str) -> None:
    # When the journey's task sends the welcome mail
    result = send(stack, lead_id)

    # Then it is sent, once, to the lead, from the template's sender
    assert result["status"] == "sent"
    assert result["reason"] is None
    assert result["message_id"].startswith("msg_")
    message = the_only_mail()
    assert result["ses_message_id"] == message.id
    mail = parse(message.raw_data)
    assert mail["To"] == LEAD_EMAIL
    assert mail["From"].addresses[0].addr_spec == SENDER
    assert mail["From"].addresses[0].display_name == "Example Corp"
    assert mail["Subject"] == "佐藤 花子 様 資料ダウンロードのお礼"
    assert mail["X-Tsunagu-Message-Id"] == result["message_id"]
    # And the send is recorded on the lead, with the links it carried
    (sent,) = lead_events(stack, lead_id, "mail_sent")
    assert sent["properties"]["message_id"] == result["message_id"]
    assert sent["properties"]["ses_message_id"] == message.id
    assert sent["properties"]["template_id"] == "welcome"
    assert sent["properties"]["template_version"] == 1
    assert [link["url"] for link in sent["properties"]["links"]] == [DESTINATION, PRICING]


def test_the_mail_offers_one_click_unsubscribe(stack: AwsStack, lead_id: str) -> None:
    result = send(stack, lead_id)

    mail = parse(the_only_mail().raw_data)
    # RFC 8058: an https URI in List-Unsubscribe, and List-Unsubscribe-Post exactly so
    url = unsubscribe_url(mail)
    assert url.startswith(f"{API_URL}/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The link names this lead and this message, and is an unsubscribe token
    token = services.token_signer(stack.settings()).verify(token_of(url))
    assert token.kind is TokenKind.UNSUBSCRIBE
    assert (token.lead_id, token.message_id) == (lead_id, result["message_id"])
    # And the same link is in the footer of both parts, untracked
    text, html = parts(mail)
    assert url in hrefs(html)
    assert url in text


def test_the_raw_list_unsubscribe_header_is_a_plain_https_uri(
    stack: AwsStack, lead_id: str
) -> None:
    send(stack, lead_id)

    raw = the_only_mail().raw_data
    # What a mail provider reads: the header's own bytes, unfolded, never encoded-words
    unfolded = re.sub(r"\r?\n[ \t]+", " ", raw.split("\n\n", 1)[0])
    (header,) = [line for line in unfolded.splitlines() if line.startswith("List-Unsubscribe:")]
    assert "=?" not in header
    assert re.fullmatch(rf"List-Unsubscribe: <{re.escape(API_URL)}/u/[A-Za-z0-9._-]+>", header)


def test_every_link_in_the_mail_is_a_tracked_link(stack: AwsStack, lead_id: str) -> None:
    send(stack, lead_id)

    mail = parse(the_only_mail().raw_data)
    text, html = parts(mail)
    unsubscribe = unsubscribe_url(mail)
    links = [h for h in hrefs(html) if h != unsubscribe]
    # Then every link (the two in the template and the hidden honeypot) goes through /c/
    assert len(links) == 3
    assert all(link.startswith(f"{API_URL}/c/") for link in links)
    # And no destination appears as a link of its own, in either part
    assert DESTINATION not in hrefs(html) and PRICING not in hrefs(html)
    text_links = re.findall(r"https?://[^\s<>\"')]+", text)
    assert text_links
    assert all(link.startswith((f"{API_URL}/c/", unsubscribe)) for link in text_links)
    # And the open pixel is there
    assert re.search(rf'<img src="{re.escape(API_URL)}/o/[A-Za-z0-9._-]+\.gif"', html)


def test_a_tracked_link_from_the_mail_redirects_to_its_destination(
    stack: AwsStack, lead_id: str
) -> None:
    # Given the first visible link of the sent mail (the hidden honeypot comes before it)
    send(stack, lead_id)
    tracked = [h for h in hrefs(parts(parse(the_only_mail().raw_data))[1]) if "/c/" in h]
    signer = services.token_signer(stack.settings())
    link = next(h for h in tracked if signer.verify(token_of(h)).link_id != "honeypot")

    # When a person follows it
    event = with_token(load_event("click_link", "browser_click"), token_of(link))
    response = stack.function("click_link").invoke(event)

    # Then they land on the destination the template linked to, and the click is the lead's
    assert response["statusCode"] == 302
    assert response["headers"]["location"] == DESTINATION
    (clicked,) = lead_events(stack, lead_id, "link_clicked")
    assert clicked["properties"]["url"] == DESTINATION


def test_a_link_that_carries_the_leads_address_leaves_it_out_of_the_analytics_rows(
    aws: AwsStack,
) -> None:
    # Given a mail whose link prefills the contact form with the lead's address (render.py
    # tracks it on purpose: it still goes to the marketer's site), with a campaign parameter
    prepare_mail(aws)
    save_template(
        aws,
        html=(
            "<p>{{ lead.name }} 様</p><p><a href="
            '"https://www.example.com/contact?utm_source=mail&email={{ lead.email }}">'
            "お問い合わせ</a></p>"
        ),
    )
    lead_id = capture(aws)
    assert send(aws, lead_id)["status"] == "sent"
    signer = services.token_signer(aws.settings())
    tracked = [h for h in hrefs(parts(parse(the_only_mail().raw_data))[1]) if "/c/" in h]
    link = next(h for h in tracked if signer.verify(token_of(h)).link_id != "honeypot")
    # When the person follows the link
    click = with_token(load_event("click_link", "browser_click"), token_of(link))
    assert aws.function("click_link").invoke(click)["statusCode"] == 302
    # Then the rows the analytics export makes of the stored events carry no address of hers
    rows = [row_from_record(r) for r in new_stream_records(aws, "EventsTable")]
    kept = [row for row in rows if row is not None]
    assert LEAD_EMAIL not in "".join(encode_row(row).decode() for row in kept)
    # and the click's row still says where it went, with the campaign
    (clicked,) = [row for row in kept if row["type"] == "link_clicked"]
    assert clicked["url"] == "https://www.example.com/contact?utm_source=mail"
    (sent,) = [row for row in kept if row["type"] == "mail_sent"]
    links = json.loads(sent["properties"])["links"]
    assert [link["url"] for link in links] == ["https://www.example.com/contact?utm_source=mail"]


def test_the_same_idempotency_key_sends_nothing_more(stack: AwsStack, lead_id: str) -> None:
    # Given a mail sent by a journey step
    first = send(stack, lead_id, key="execution-1:Send welcome mail")

    # When Step Functions retries the same task
    again = send(stack, lead_id, key="execution-1:Send welcome mail")

    # Then the first outcome comes back and no second mail goes out
    assert again == {**first, "replayed": True}
    assert first["replayed"] is False
    assert len(sent_messages()) == 1
    assert len(lead_events(stack, lead_id, "mail_sent")) == 1


def test_a_mail_whose_answer_was_lost_lets_the_journey_go_on_and_is_not_resent(
    stack: AwsStack, lead_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SES takes the mail and its answer is lost on the way back
    took_it = SesMessenger.send

    def answer_lost(self: SesMessenger, mail: OutgoingMail) -> str:
        took_it(self, mail)
        raise MessengerError("InternalFailure: the answer was lost", definite=False)

    monkeypatch.setattr(SesMessenger, "send", answer_lost)
    # When the journey's task sends, and Step Functions runs the task again
    first = send(stack, lead_id, key="execution-1:Send welcome mail")
    again = send(stack, lead_id, key="execution-1:Send welcome mail")
    # Then the step answers "unknown" (the journey goes on, its later waits match the message
    # id), and the person has one mail
    assert first["status"] == again["status"] == "unknown"
    assert first["message_id"] == again["message_id"]
    assert first["message_id"].startswith("msg_")
    assert len(sent_messages()) == 1


def test_a_mail_whose_record_failed_is_not_sent_again_by_the_retry(
    stack: AwsStack, lead_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SES takes the mail and DynamoDB throttles the write that records it
    records = MailRepository.finish_send
    throttled: list[str] = []

    def throttled_once(self: MailRepository, key: str, status: str, *args: Any) -> None:
        if status == "sent" and not throttled:
            throttled.append(key)
            raise TransactWriteError("ProvisionedThroughputExceededException")
        records(self, key, status, *args)

    monkeypatch.setattr(MailRepository, "finish_send", throttled_once)
    # When the journey's task sends
    first = send(stack, lead_id, key="execution-1:Send welcome mail")
    # Then the step answers "unknown" (the journey goes on and the alarm counts it)
    assert first["status"] == "unknown"
    assert first["message_id"].startswith("msg_")
    # And when Step Functions runs the task again, it fails loudly and mails no one
    with pytest.raises(FunctionError) as again:
        send(stack, lead_id, key="execution-1:Send welcome mail")
    assert again.value.payload["errorType"] == "SendInProgress"
    assert len(sent_messages()) == 1
    assert lead_events(stack, lead_id, "mail_failed") == []


def test_a_send_retried_during_the_emergency_stop_is_held_and_goes_back_to_its_gate(
    stack: AwsStack, lead_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a journey's mail SES refused (the state machine retries it in place, minutes later)
    def refused(self: SesMessenger, mail: OutgoingMail) -> str:
        raise MessengerError("Throttling: Maximum sending rate exceeded")

    with monkeypatch.context() as ses_refusing:
        ses_refusing.setattr(SesMessenger, "send", refused)
        with pytest.raises(FunctionError) as first:
            send(stack, lead_id, key="execution-1:Send welcome mail")
    assert first.value.payload["errorType"] == "SendFailed"
    # And the emergency stop pressed before the retry
    settings = stack.settings()
    journeys = services.journey_repository(settings)
    journeys.set_account_paused(True, isoformat(services.clock(settings).now()), "api:admin")

    # When the retry runs
    with pytest.raises(FunctionError) as retried:
        send(stack, lead_id, key="execution-1:Send welcome mail")

    # Then nothing is sent: the step fails SendHeld (its Catch leads back to the gate, which
    # parks the lead), and the lead's timeline says why the mail waits
    assert retried.value.payload["errorType"] == "SendHeld"
    assert sent_messages() == []
    [held] = lead_events(stack, lead_id, "mail_deferred")
    assert held["properties"]["reason"] == "account_paused"
    # And once the stop is lifted, the same key may send (nothing went out under it)
    journeys.set_account_paused(False, isoformat(services.clock(settings).now()), "api:admin")
    assert send(stack, lead_id, key="execution-1:Send welcome mail")["status"] == "sent"
    assert len(sent_messages()) == 1


@pytest.mark.parametrize("paused_first", [False, True], ids=["active", "paused_then_archived"])
def test_a_send_retried_after_its_journey_was_archived_is_held_and_goes_back_to_its_gate(
    stack: AwsStack, lead_id: str, monkeypatch: pytest.MonkeyPatch, paused_first: bool
) -> None:
    settings = stack.settings()
    install_shipped_journeys(settings)
    ports, operator = services.journey_commands(settings), services.operator(settings)
    step = load_event("send_email", "journey_step")
    step.update(
        lead_id=lead_id,
        idempotency_key="execution-1:Send welcome mail",
        journey={"journey_id": "welcome_nurture", "node": "welcome", "step": "Send"},
    )

    # Given a journey's mail SES refused (the state machine retries it in place, minutes later)
    def refused(self: SesMessenger, mail: OutgoingMail) -> str:
        raise MessengerError("Throttling: Maximum sending rate exceeded")

    with monkeypatch.context() as ses_refusing:
        ses_refusing.setattr(SesMessenger, "send", refused)
        with pytest.raises(FunctionError):
            stack.function("send_email").invoke(step)
    # And the journey archived before the retry (a wrong mail found), straight or after a pause
    if paused_first:
        journey_commands.pause(ports, operator, "welcome_nurture")
    journey_commands.set_status(ports, operator, "welcome_nurture", "archived")

    # When the retry runs
    with pytest.raises(FunctionError) as retried:
        stack.function("send_email").invoke(step)

    # Then nothing is sent: the step fails SendHeld, and its gate ends the lead's time there
    assert retried.value.payload["errorType"] == "SendHeld"
    assert sent_messages() == []
    [held] = lead_events(stack, lead_id, "mail_deferred")
    assert held["properties"]["reason"] == "journey_archived"


def test_a_mail_sent_before_the_stop_is_answered_as_sent_not_held(
    stack: AwsStack, lead_id: str
) -> None:
    # Given a journey's mail sent, and the emergency stop pressed after
    first = send(stack, lead_id, key="execution-1:Send welcome mail")
    settings = stack.settings()
    services.journey_repository(settings).set_account_paused(
        True, isoformat(services.clock(settings).now()), "api:admin"
    )

    # When Step Functions runs the same task again (a Lambda error on the way back)
    again = send(stack, lead_id, key="execution-1:Send welcome mail")

    # Then it is that send's outcome: held, the lead would be mailed again after the resume
    assert again == {**first, "replayed": True}
    assert len(sent_messages()) == 1


def test_another_key_sends_another_mail(stack: AwsStack, lead_id: str) -> None:
    first = send(stack, lead_id)
    second = send(stack, lead_id)

    assert first["message_id"] != second["message_id"]
    assert len(sent_messages()) == 2


def test_an_unknown_template_fails_the_task(stack: AwsStack, lead_id: str) -> None:
    # When a journey names a template that was never stored
    with pytest.raises(FunctionError) as raised:
        send(stack, lead_id, case="unknown_template")

    # Then the task fails as a Lambda function error (the journey's Catch sees NotFound)
    assert raised.value.payload["errorType"] == "NotFound"
    assert "no-such-template" in raised.value.payload["errorMessage"]
    # And nothing is sent, and the failure is on the lead's record
    assert sent_messages() == []
    (failed,) = lead_events(stack, lead_id, "mail_failed")
    assert "no-such-template" in failed["properties"]["error"]


def test_a_pinned_template_version_is_the_one_sent(stack: AwsStack, lead_id: str) -> None:
    # Given two versions of the seminar invitation
    html = "<p>{{ journey.seminar.title }} ({{ journey.seminar.date }})</p>"
    save_template(stack, template_id="seminar-invite", subject="ご招待 v1", html=html)
    save_template(stack, template_id="seminar-invite", subject="ご招待 v2", html=html)

    # When the journey sends version 1, with its own data
    result = send(stack, lead_id, case="pinned_version")

    # Then version 1 is rendered with the journey's data
    assert result["status"] == "sent"
    mail = parse(the_only_mail().raw_data)
    assert mail["Subject"] == "ご招待 v1"
    assert "DX セミナー 2026 (2026-12-10)" in parts(mail)[1]
    (sent,) = lead_events(stack, lead_id, "mail_sent")
    assert sent["properties"]["template_version"] == 1


def test_a_lead_without_consent_gets_no_marketing_mail(stack: AwsStack) -> None:
    lead_id = capture(stack, "no.consent@example.jp", consent=False)

    result = send(stack, lead_id)

    assert (result["status"], result["reason"]) == ("skipped", "no_consent")
    assert sent_messages() == []
    (skipped,) = lead_events(stack, lead_id, "mail_skipped")
    assert skipped["properties"]["reason"] == "no_consent"


def test_an_unknown_lead_is_skipped(stack: AwsStack) -> None:
    result = send(stack, "lead_01JDEXAMPLE0000000000000077")

    assert (result["status"], result["reason"]) == ("skipped", "no_address")
    assert sent_messages() == []


# ---------------------------------------------------------------- the stage's allowlist


def test_outside_production_only_allowlisted_addresses_get_mail(aws: AwsStack) -> None:
    # Given the dev stage, allowed to mail example.com only
    prepare_mail(aws, TSUNAGU_STAGE="dev", TSUNAGU_MAIL_ALLOWLIST="example.com")
    save_template(aws)
    customer = capture(aws, "customer@example.jp")
    colleague = capture(aws, "tester@example.com")

    # When the journey mails both
    to_customer = send(aws, customer)
    to_colleague = send(aws, colleague)

    # Then the customer's mail is recorded as sandboxed and never reaches SES
    assert (to_customer["status"], to_customer["reason"]) == ("skipped", "sandboxed")
    (skipped,) = lead_events(aws, customer, "mail_skipped")
    assert skipped["properties"]["reason"] == "sandboxed"
    # And the allowlisted colleague's is sent
    assert to_colleague["status"] == "sent"
    (message,) = sent_messages()
    assert parse(message.raw_data)["To"] == "tester@example.com"


# ---------------------------------------------------------------- the CLI's mail send


@pytest.fixture
def cli_here(
    stack: AwsStack, lead_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AwsStack]:
    """Given the CLI run here against the stack on the runtime's virtual clock, which stands
    still between commands (``--virtual-time``), its send_email invoked in-process."""
    clock_url = "http://127.0.0.1:9/_local/clock"
    stack.environment["TSUNAGU_CLOCK_URL"] = clock_url
    # The CLI puts the runtime's environment into the process's: taken out again afterwards
    monkeypatch.setenv("TSUNAGU_CLOCK_URL", clock_url)
    register_in_process(clock_url, VirtualClock(datetime(2026, 12, 7, 1, 0, tzinfo=UTC)))
    runtime_here(stack, tmp_path, monkeypatch)

    def invoke(args: object, logical_id: str, payload: dict[str, Any]) -> Any:
        try:
            return stack.function("send_email").invoke(payload)
        except FunctionError as error:  # as invoke_function says a function's failure
            raise FunctionCliError(f"{logical_id} failed: {error}") from None

    monkeypatch.setattr(cli, "invoke_function", invoke)
    try:
        yield stack
    finally:
        register_in_process(clock_url, None)


def test_mail_send_sends_a_correction_stored_at_the_same_virtual_instant(
    cli_here: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the welcome mail sent by hand
    assert cli.main(["mail", "send", LEAD_EMAIL, "--template", "welcome"]) == 0
    capsys.readouterr()
    # When the marketer stores a corrected version and sends it, the clock not moved between
    save_template(cli_here, subject="{{ lead.name }} 様 【訂正】資料ダウンロードのお礼")
    code = cli.main(["mail", "send", LEAD_EMAIL, "--template", "welcome"])
    # Then the correction is sent, as a second mail
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"status": "sent"' in out
    _, second = sent_messages()
    assert "【訂正】" in parse(second.raw_data)["Subject"]
    # And the same version sent again is another mail too, not the first one's outcome again
    assert cli.main(["mail", "send", LEAD_EMAIL, "--template", "welcome"]) == 0
    assert len(sent_messages()) == 3


def test_mail_send_again_with_the_same_key_says_nothing_was_sent(
    cli_here: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a mail sent by hand with a key of the sender's own (to retry it safely)
    send_it = ["mail", "send", LEAD_EMAIL, "--template", "welcome", "--key", "promo-1"]
    assert cli.main(send_it) == 0
    first, err = capsys.readouterr()
    assert err == ""
    # When the same command is run again
    assert cli.main(send_it) == 0
    # Then the first send's outcome is shown, said to be that, and no second mail goes out
    again, err = capsys.readouterr()
    assert again.replace('"replayed": true', '"replayed": false') == first
    assert err == "tsunagu: key 'promo-1' was used before: its first outcome, nothing sent now\n"
    assert len(sent_messages()) == 1


# ---------------------------------------------------------------- the CLI's templates create

PRODUCT_NEWS = {
    "template_id": "product-news",
    "name": "Product news",
    "subject": "{{ lead.name }} 様、資料をお送りします",
    "html": "<p>x</p>",
    "from_address": SENDER,
}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("", "html: String should have at least 1 character"),
        ("x" * 200_001, "html: String should have at most 200000 characters"),
        # Within the characters allowed, and more than one DynamoDB item holds: 70,000
        # Japanese characters are 210 KB of UTF-8, and 420 KB as the item stores them
        ("<p>" + "お知らせ" * 17_500 + "</p>", "more than the 350 KB a template may hold"),
    ],
    ids=["empty", "over-the-limit", "japanese-too-large-to-store"],
)
def test_an_html_file_the_template_may_not_hold_is_refused_and_listing_still_works(
    stack: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    body: str,
    problem: str,
) -> None:
    # Given a template whose HTML comes from a file that is empty (a bad redirect) or too long
    runtime_here(stack, tmp_path, monkeypatch)
    (tmp_path / "news.json").write_text(json.dumps(PRODUCT_NEWS))
    (tmp_path / "body.html").write_text(body)
    # When it is stored with --html, as the README shows
    code = cli.main(["templates", "create", "--file", "news.json", "--html", "body.html"])
    # Then it is refused in one line, as the same HTML in the JSON would be, and nothing stored
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("tsunagu: body.html is not valid: ") and problem in err, err
    assert err.count("\n") == 1
    # And the templates can still be listed
    assert cli.main(["templates", "list"]) == 0
    assert "product-news" not in capsys.readouterr().out


def test_an_html_file_that_is_not_there_is_said_in_one_line(
    stack: AwsStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a template file, and an --html file name with a typo
    runtime_here(stack, tmp_path, monkeypatch)
    (tmp_path / "news.json").write_text(json.dumps(PRODUCT_NEWS))
    # When it is stored
    code = cli.main(["templates", "create", "--file", "news.json", "--html", "bodyy.html"])
    # Then the CLI says which file it could not read, without a traceback
    assert code == 1
    assert capsys.readouterr().err == "tsunagu: cannot read bodyy.html: No such file or directory\n"


def test_a_template_changed_without_validation_is_not_stored(stack: AwsStack) -> None:
    # Given a template whose HTML was replaced without validation (pydantic's model_copy)
    template = MailTemplate.model_validate(PRODUCT_NEWS).model_copy(update={"html": ""})
    settings = stack.settings()
    # When any caller stores it
    with pytest.raises(ValidationFailed) as refused:
        mail.save_template(services.mail_commands(settings), services.operator(settings), template)
    # Then it is refused by field, and the templates stored can still be read
    assert [e.field for e in refused.value.errors] == ["html"]
    assert [t.template_id for t in services.mail_repository(settings).templates()] == ["welcome"]


def test_a_template_with_a_link_copied_from_a_sent_mail_is_refused(stack: AwsStack) -> None:
    # Given a template made from a mail Tsunagu sent: its click link, another lead's
    # unsubscribe link in the text part
    click = f"{API_URL}/c/eyJ0IjoiYyJ9.OLD-LEADS-TOKEN"
    preferences = f"{API_URL}/u/eyJ0IjoidSJ9.OLD-LEADS-TOKEN"
    template = MailTemplate.model_validate(
        {
            **PRODUCT_NEWS,
            "html": f'<p><a href="{click}">前回のご案内</a></p>',
            "text": f"配信停止: {preferences}",
        }
    )
    settings = stack.settings()
    # When it is stored
    with pytest.raises(ValidationFailed) as refused:
        mail.save_template(services.mail_commands(settings), services.operator(settings), template)
    # Then it is refused naming each link, and nothing is stored
    problems = [(e.field, e.message.split(" ")[0]) for e in refused.value.errors]
    assert problems == [("html", click), ("text", preferences)]
    assert "copied from a mail Tsunagu sent" in refused.value.errors[0].message
    assert services.mail_repository(settings).template("product-news", None) is None


def test_a_copied_link_is_refused_where_the_api_is_not_named(
    stack: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the admin API's function, which cannot name the HTTP API it sits behind (no
    # TSUNAGU_API_URL), and a click link copied from a sent mail, by the API's other domain
    monkeypatch.delitem(stack.environment, "TSUNAGU_API_URL", raising=False)
    settings = stack.settings()
    assert settings.api_url is None
    copied = (
        "https://links.example.com/c/k1.eyJ0IjoiYyIsImwiOiJsZWFkXzEifQ.c2lnbmF0dXJlMTIzNDU2Nzg5"
    )
    template = MailTemplate.model_validate(
        {**PRODUCT_NEWS, "html": f'<p><a href="{copied}">前回のご案内</a></p>'}
    )
    # When it is stored, Then it is refused by the token in its path
    with pytest.raises(ValidationFailed) as refused:
        mail.save_template(services.mail_commands(settings), services.operator(settings), template)
    assert [(e.field, e.message.split(" ")[0]) for e in refused.value.errors] == [("html", copied)]
    # And a page of the marketer's own under a /c/ path is not taken for one
    own = MailTemplate.model_validate(
        {**PRODUCT_NEWS, "html": '<p><a href="https://www.example.com/c/campaign">詳細</a></p>'}
    )
    mail.save_template(services.mail_commands(settings), services.operator(settings), own)


def test_a_version_stored_on_the_topic_all_still_loads_and_a_new_one_is_refused(
    stack: AwsStack,
) -> None:
    # Given a template version stored on the topic "all" before the topic was refused (written
    # as the store writes versions, without today's validation)
    settings = stack.settings()
    templates = services.mail_repository(settings)
    old = MailTemplate.model_construct(**{**PRODUCT_NEWS, "topic": "all", "version": 1})
    bind_tables(settings).templates(
        "product-news", 1, definition=old.model_dump(mode="json"),
        created_at="2026-11-01T00:00:00.000Z",
    ).save()  # fmt: skip

    # Then it still loads, listed and by version: a journey pinned to it keeps working
    assert [t.template_id for t in templates.templates()] == ["product-news", "welcome"]
    loaded = templates.template("product-news", 1)
    assert loaded is not None and loaded.topic == "all"
    # And a new version on it is refused, naming the topic
    with pytest.raises(ValueError, match="'all' is reserved"):
        MailTemplate.model_validate({**PRODUCT_NEWS, "topic": "all"})


def test_a_version_stored_before_the_size_rule_still_loads(stack: AwsStack) -> None:
    # Given a version that fitted one item before the rule (360,000 ASCII characters: within
    # the fields' limits, over the 350 KB a new version may take)
    settings = stack.settings()
    old = MailTemplate.model_construct(
        **{**PRODUCT_NEWS, "html": "x" * 200_000, "text": "y" * 160_000, "version": 1}
    )
    bind_tables(settings).templates(
        "product-news", 1, definition=old.model_dump(mode="json"),
        created_at="2026-11-01T00:00:00.000Z",
    ).save()  # fmt: skip
    # Then it is listed and loads (a journey pinned to it sends), and only a new one is refused
    templates = services.mail_repository(settings)
    assert "product-news" in [t.template_id for t in templates.templates()]
    assert templates.template("product-news", 1) is not None
    with pytest.raises(ValueError, match="a template may hold"):
        MailTemplate.model_validate(old.model_dump(mode="json"))


def test_a_link_of_a_kind_a_send_would_empty_is_refused_at_save_and_a_calendar_link_is_kept(
    stack: AwsStack,
) -> None:
    settings = stack.settings()
    ports, operator = services.mail_commands(settings), services.operator(settings)
    # Given a template whose own link is a file: link (a send empties it: only the data's could
    # be meant), When it is saved, Then it is refused naming the link
    bad = MailTemplate.model_validate(
        {**PRODUCT_NEWS, "html": '<p><a href="file:///C:/seminar.pdf">資料</a></p>'}
    )
    with pytest.raises(ValidationFailed) as refused:
        mail.save_template(ports, operator, bad)
    assert refused.value.errors[0].message.startswith("file:///C:/seminar.pdf: a mail's links")
    # And a seminar's calendar (webcal:) and a text message (sms:) are links a mail carries
    kept = MailTemplate.model_validate(
        {
            **PRODUCT_NEWS,
            "html": '<p><a href="webcal://www.example.com/seminar.ics">予定に追加</a>'
            ' <a href="sms:+81-3-0000-0000">SMS</a></p>',
        }
    )
    assert mail.save_template(ports, operator, kept).version == 1
