"""Sending one mail: exactly once, consent at send time, the stage guard, headers and links."""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.utils import parseaddr
from typing import Any

import pytest

from tsunagu.clock import FixedClock
from tsunagu.errors import IdempotencyConflict, NotFound, TsunaguError
from tsunagu.event_kinds import MAIL_DEFERRED
from tsunagu.leads.model import LeadEvent
from tsunagu.mail.consent import Suppression
from tsunagu.mail.send import (
    MAIL_FAILED,
    MAIL_SENT,
    MAIL_SKIPPED,
    MessengerError,
    OutgoingMail,
    SendFailed,
    SendHeld,
    SendInProgress,
    SendOutcomeUnknown,
    SendRequest,
    SendResult,
    send_mail,
)
from tsunagu.tracking.tokens import TokenKind, TokenSigner

from .mail_fakes import (
    API_URL,
    MemoryMailStore,
    MemoryMessenger,
    make_clock,
    make_lead,
    make_policy,
    make_signer,
    make_template,
    token_in,
)

KEY = "exec-1#Send welcome mail"
LINKED = (
    "<html><body><p>{{ lead.name }} 様</p>"
    '<p><a href="https://www.example.com/seminar?utm_source=mail&amp;id=7">セミナー</a></p>'
    '<p><a href="https://www.example.com/pricing">料金</a></p>'
    '<p><a href="https://www.example.com/seminar?utm_source=mail&amp;id=7">申し込む</a></p>'
    "</body></html>"
)


@pytest.fixture
def store() -> MemoryMailStore:
    store = MemoryMailStore()
    store.add_lead(make_lead("lead_1", "hanako@example.com", name="佐藤 花子"))
    store.add_template(make_template(html=LINKED))
    store.set_consent("lead_1", "marketing", "opted_in")
    return store


@pytest.fixture
def messenger() -> MemoryMessenger:
    return MemoryMessenger()


@pytest.fixture
def signer() -> TokenSigner:
    return make_signer()


@pytest.fixture
def clock() -> FixedClock:
    return make_clock()


def send(
    store: MemoryMailStore,
    messenger: MemoryMessenger,
    *,
    key: str = KEY,
    lead_id: str = "lead_1",
    template_id: str = "welcome",
    signer: TokenSigner | None = None,
    clock: FixedClock | None = None,
    **policy: object,
) -> SendResult:
    return send_mail(
        SendRequest(lead_id=lead_id, template_id=template_id, idempotency_key=key),
        store=store,
        messenger=messenger,
        signer=signer or make_signer(),
        clock=clock or make_clock(),
        policy=make_policy(**policy),
    )


def only_mail(messenger: MemoryMessenger) -> OutgoingMail:
    assert len(messenger.sent) == 1
    return messenger.sent[0]


# ------------------------------------------------------------------ exactly once


def test_a_consented_lead_gets_one_mail_and_a_record(store, messenger) -> None:
    result = send(store, messenger)
    mail = only_mail(messenger)
    assert (result.status, result.ses_message_id, result.replayed) == ("sent", "ses-1", False)
    assert mail.recipient == "hanako@example.com"
    assert mail.subject == "貴社 様へのご案内"
    assert "佐藤 花子 様" in mail.html
    assert mail.tags == {"lead_id": "lead_1", "message_id": result.message_id, "topic": "marketing"}
    assert mail.headers["X-Tsunagu-Message-Id"] == result.message_id
    assert store.sends[KEY]["status"] == "sent"
    assert store.sends[KEY]["response"].items() >= result.as_record().items()
    [event] = store.events
    assert event.type == MAIL_SENT and event.lead_id == "lead_1"
    assert event.properties["idempotency_key"] == KEY
    assert event.properties["template_version"] == 1
    assert [link["url"] for link in event.properties["links"]] == [
        "https://www.example.com/seminar?utm_source=mail&id=7",
        "https://www.example.com/pricing",
    ]


def test_a_retried_send_returns_the_first_result_and_sends_nothing(store, messenger) -> None:
    # Given a mail sent under a key
    first = send(store, messenger)
    # When the journey retries the same step
    again = send(store, messenger)
    # Then the first outcome comes back, marked as a replay, and no second mail goes out
    assert again.replayed is True
    assert (again.status, again.message_id, again.ses_message_id) == (
        first.status,
        first.message_id,
        first.ses_message_id,
    )
    assert len(messenger.sent) == 1
    assert len(store.events_of(MAIL_SENT)) == 1


def test_another_key_is_another_mail(store, messenger) -> None:
    send(store, messenger, key="exec-1#A")
    send(store, messenger, key="exec-1#B")
    assert len(messenger.sent) == 2


def test_a_key_reused_for_another_lead_sends_nothing(store, messenger) -> None:
    # Given a key already used to mail one lead
    store.add_lead(make_lead("lead_2", "taro@example.com"))
    store.set_consent("lead_2", "marketing", "opted_in")
    send(store, messenger)
    # When the same key comes with another lead, Then it is refused, not replayed as "sent"
    with pytest.raises(IdempotencyConflict):
        send(store, messenger, lead_id="lead_2")
    assert [mail.recipient for mail in messenger.sent] == ["hanako@example.com"]


def test_a_failed_send_is_recorded_and_may_be_retried(store, messenger) -> None:
    # Given SES refuses the first attempt
    messenger.fail_next()
    # When the send is made, Then it fails loudly, and the failure is recorded
    with pytest.raises(SendFailed, match="SES did not take the mail"):
        send(store, messenger)
    assert messenger.sent == []
    assert store.sends[KEY]["status"] == "failed"
    [failed] = store.events_of(MAIL_FAILED)
    assert "MessageRejected" in failed.properties["error"]
    # And a retry with the same key sends the mail, once
    result = send(store, messenger)
    assert (result.status, result.replayed) == ("sent", False)
    assert len(messenger.sent) == 1
    assert store.sends[KEY]["status"] == "sent"
    # And a further retry is a replay
    assert send(store, messenger).replayed is True
    assert len(messenger.sent) == 1


def send_held_by(
    store: MemoryMailStore, messenger: MemoryMessenger, reasons: dict[str | None, str]
) -> SendResult:
    """A journey's send, asked while ``reasons`` holds its journey (tsunagu.journeys.steps)."""
    return send_mail(
        SendRequest(
            lead_id="lead_1",
            template_id="welcome",
            idempotency_key=KEY,
            journey={"journey_id": "welcome_series", "node": "welcome"},
        ),
        store=store,
        messenger=messenger,
        signer=make_signer(),
        clock=make_clock(),
        policy=make_policy(),
        held=reasons.get,
    )


def test_a_journey_send_retried_while_its_journey_is_held_sends_nothing(store, messenger) -> None:
    # Given SES refused a journey's mail, and the journey was paused before the retry
    messenger.fail_next()
    with pytest.raises(SendFailed):
        send_held_by(store, messenger, {})
    # When the retry comes, Then it is held: nothing sent, and the key free for a later try
    with pytest.raises(SendHeld, match="journey_paused"):
        send_held_by(store, messenger, {"welcome_series": "journey_paused"})
    assert messenger.sent == []
    assert store.sends[KEY]["status"] == "failed"
    [line] = store.events_of(MAIL_DEFERRED)
    assert line.properties["reason"] == "journey_paused"
    # And once nothing holds it, the same key sends once
    assert send_held_by(store, messenger, {}).status == "sent"
    assert len(messenger.sent) == 1


def test_a_journey_send_already_made_is_answered_as_made_though_held(store, messenger) -> None:
    first = send_held_by(store, messenger, {})

    again = send_held_by(store, messenger, {"welcome_series": "account_paused"})

    assert (again.status, again.replayed, again.message_id) == ("sent", True, first.message_id)
    assert len(messenger.sent) == 1


def test_a_send_that_is_no_journeys_is_never_held(store, messenger) -> None:
    # A double opt-in confirmation or the CLI's mail send: the stop holds journeys' mail
    result = send_mail(
        SendRequest(lead_id="lead_1", template_id="welcome", idempotency_key=KEY),
        store=store,
        messenger=messenger,
        signer=make_signer(),
        clock=make_clock(),
        policy=make_policy(),
        held=lambda journey_id: "account_paused",
    )
    assert result.status == "sent"


def test_a_mail_ses_may_have_taken_is_never_sent_again(store, messenger) -> None:
    # Given SES timing out after the request went out: the mail may be on its way
    messenger.failures.append(MessengerError("ReadTimeoutError: read timed out", definite=False))
    with pytest.raises(TsunaguError):
        send(store, messenger)
    # Then the send is not released for a retry
    assert store.sends[KEY]["status"] != "failed"
    # And the journey's retry does not mail the person a second time
    with pytest.raises(TsunaguError):
        send(store, messenger)
    assert messenger.sent == []


def test_an_unknown_outcome_names_the_message_on_every_retry(store, messenger) -> None:
    # Given SES's answer lost after the request went out
    messenger.failures.append(MessengerError("InternalFailure: 500", definite=False))
    with pytest.raises(SendOutcomeUnknown) as first:
        send(store, messenger)
    # When the step is retried, Then it names the same message (the journey's later waits
    # match clicks and opens by it), and still sends nothing
    with pytest.raises(SendOutcomeUnknown) as again:
        send(store, messenger)
    assert first.value.message_id == again.value.message_id
    assert store.sends[KEY]["response"]["message_id"] == first.value.message_id
    assert messenger.sent == []


class Killed(BaseException):
    """The function's process ending mid-send (a Lambda timeout): no handler runs."""


def test_a_send_that_died_mid_send_is_not_repeated(store, messenger) -> None:
    # Given an earlier attempt that claimed the key and died while SES had the mail
    messenger.failures.append(Killed())
    with pytest.raises(Killed):
        send(store, messenger)
    assert store.sends[KEY]["status"] == "sending"
    # When the step is retried, Then it fails loudly and sends nothing: the person may
    # already have the mail
    with pytest.raises(SendInProgress):
        send(store, messenger)
    assert messenger.sent == []
    assert store.events == []
    assert store.sends[KEY]["status"] == "sending"


class RecordFailsOnce(MemoryMailStore):
    """Recording a sent mail fails once, as a throttled or timed-out DynamoDB write does."""

    def __init__(self, status: str) -> None:
        super().__init__()
        self.failing = {status}

    def finish_send(self, key: str, status: str, record: dict[str, Any], event: LeadEvent) -> None:
        if status in self.failing:
            self.failing.discard(status)
            raise RuntimeError("ProvisionedThroughputExceededException")
        super().finish_send(key, status, record, event)


@pytest.mark.parametrize(
    ("ses_answer", "unrecorded"),
    [(None, "sent"), (MessengerError("InternalFailure: 500", definite=False), "unknown")],
    ids=["ses-took-it", "ses-answer-lost"],
)
def test_a_mail_whose_record_failed_after_ses_had_it_is_not_mailed_twice(
    messenger, ses_answer, unrecorded
) -> None:
    # Given SES has (or may have) the mail, and the write that records it fails
    store = RecordFailsOnce(unrecorded)
    store.add_lead(make_lead("lead_1", "hanako@example.com", name="佐藤 花子"))
    store.add_template(make_template())
    store.set_consent("lead_1", "marketing", "opted_in")
    if ses_answer is not None:
        messenger.failures.append(ses_answer)
    # When the send is made, Then the step learns the outcome is unknown, naming the message
    with pytest.raises(SendOutcomeUnknown) as first:
        send(store, messenger)
    assert first.value.message_id == store.sends[KEY]["response"]["message_id"]
    # And the claim is kept, not released as "failed"
    assert store.sends[KEY]["status"] == "sending"
    assert store.events_of(MAIL_FAILED) == []
    # And when Step Functions retries the task, nothing more is sent
    with pytest.raises(SendInProgress):
        send(store, messenger)
    assert len(messenger.sent) == (1 if ses_answer is None else 0)


def test_an_unknown_template_fails_and_is_recorded(store, messenger) -> None:
    with pytest.raises(NotFound):
        send(store, messenger, template_id="nope")
    assert store.sends[KEY]["status"] == "failed"
    assert len(store.events_of(MAIL_FAILED)) == 1
    assert messenger.sent == []


def test_a_template_that_does_not_render_fails_and_is_recorded(store, messenger) -> None:
    store.add_template(make_template(template_id="broken", html="<p>{{ lead.update({}) }}</p>"))
    with pytest.raises(SendFailed, match="did not render"):
        send(store, messenger, template_id="broken")
    assert store.sends[KEY]["status"] == "failed"
    assert messenger.sent == []


def test_a_link_that_cannot_be_signed_never_leaves_the_send_stuck(store, messenger) -> None:
    # Given a marketer's typo: a link with no host, which no click token can carry
    store.add_template(
        make_template(template_id="typo", html='<p><a href="https:///seminar">x</a></p>')
    )
    # When the send is made, Then it either fails as a recorded, retryable failure, or goes out
    # with that link untracked: never an unrecorded crash that leaves the claim "sending"
    try:
        result = send(store, messenger, template_id="typo")
    except SendFailed:
        assert store.sends[KEY]["status"] == "failed"
        assert messenger.sent == []
    else:
        assert result.status == "sent"
        assert store.sends[KEY]["status"] == "sent"
        assert 'href="https:///seminar"' in only_mail(messenger).html


def add_lead_with_owner(store: MemoryMailStore, owner_name: str) -> None:
    """Given lead_2, owned by a rep of the verified sales domain, and a template sent as the
    owner."""
    store.add_template(make_template(template_id="from-rep", sender_is_owner=True))
    store.add_lead(
        make_lead(
            "lead_2",
            "taro@client.example.org",
            owner_email="yamada@sales.example.co.jp",
            owner_name=owner_name,
        )
    )
    store.set_consent("lead_2", "marketing", "opted_in")


def test_an_owner_name_cannot_add_headers(store, messenger) -> None:
    # Given an owner's name from a CRM with a line break in it
    add_lead_with_owner(store, "Yamada\r\nBcc: someone@example.net")
    # When the mail is sent as the owner, Then the From header stays one line
    send(store, messenger, lead_id="lead_2", template_id="from-rep")
    sender = only_mail(messenger).sender
    assert "\r" not in sender and "\n" not in sender
    assert parseaddr(sender)[1] == "yamada@sales.example.co.jp"


# ------------------------------------------------------------------ consent at send time


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"topics": {}}, "no_consent"),
        ({"topics": {"marketing": "pending"}}, "no_consent"),
        ({"topics": {"marketing": "opted_in", "all": "opted_out"}}, "opted_out"),
        ({"topics": {"marketing": "opted_out"}}, "opted_out"),
        ({"suppression": "hard_bounce"}, "bounced"),
        ({"suppression": "complaint"}, "suppressed"),
        ({"lead_id": "lead_unknown"}, "no_address"),
    ],
)
def test_a_mail_that_may_not_go_is_skipped_and_recorded(store, messenger, given, reason) -> None:
    # Given the consent, suppression or lead the case names
    if "topics" in given:
        store.topics["lead_1"] = dict(given["topics"])
    if "suppression" in given:
        store.suppressions["lead_1"] = Suppression(given["suppression"], "2026-11-19T00:00:00Z")
    # When the send is made
    result = send(store, messenger, lead_id=given.get("lead_id", "lead_1"))
    # Then nothing is sent, and the skip is recorded with its reason
    assert (result.status, result.reason) == ("skipped", reason)
    assert messenger.sent == []
    [event] = store.events
    assert event.type == MAIL_SKIPPED and event.properties["reason"] == reason
    assert store.sends[KEY]["status"] == "skipped"
    # And a retry replays the skip, still without sending
    again = send(store, messenger, lead_id=given.get("lead_id", "lead_1"))
    assert (again.status, again.reason, again.replayed) == ("skipped", reason, True)
    assert messenger.sent == []


def test_consent_is_read_at_send_time_not_before(store, messenger) -> None:
    # Given a lead who was mailed once, then opted out
    send(store, messenger, key="step-1")
    store.set_consent("lead_1", "all", "opted_out")
    # When the next step sends, Then it is skipped
    assert send(store, messenger, key="step-2").reason == "opted_out"
    assert len(messenger.sent) == 1


def test_transactional_mail_needs_no_consent_but_respects_suppression(store, messenger) -> None:
    store.add_template(make_template(template_id="confirm", kind="transactional", topic="account"))
    store.topics["lead_1"] = {"all": "opted_out"}
    assert send(store, messenger, key="t-1", template_id="confirm").status == "sent"
    store.suppressions["lead_1"] = Suppression("hard_bounce", "2026-11-19T00:00:00Z")
    assert send(store, messenger, key="t-2", template_id="confirm").reason == "bounced"
    assert len(messenger.sent) == 1


# ------------------------------------------------------------------ the stage guard


def test_outside_production_a_mail_to_an_address_not_allowlisted_is_sandboxed(
    store, messenger
) -> None:
    result = send(store, messenger, production=False, allowlist=frozenset({"qa@example.net"}))
    assert (result.status, result.reason) == ("skipped", "sandboxed")
    assert messenger.sent == []
    assert store.events_of(MAIL_SKIPPED)[0].properties["reason"] == "sandboxed"


@pytest.mark.parametrize("entry", ["hanako@example.com", "example.com"])
def test_outside_production_an_allowlisted_address_or_domain_is_mailed(
    store, messenger, entry
) -> None:
    result = send(store, messenger, production=False, allowlist=frozenset({entry}))
    assert result.status == "sent"
    assert only_mail(messenger).recipient == "hanako@example.com"


def test_in_production_the_allowlist_does_not_apply(store, messenger) -> None:
    result = send(store, messenger, production=True, allowlist=frozenset({"qa@example.net"}))
    assert result.status == "sent"


def test_the_stage_guard_never_lets_a_suppressed_address_through(store, messenger) -> None:
    store.suppressions["lead_1"] = Suppression("complaint", "2026-11-19T00:00:00Z")
    result = send(store, messenger, production=False, allowlist=frozenset({"example.com"}))
    assert result.reason == "suppressed"
    assert messenger.sent == []


# ------------------------------------------------------------------ the mail itself


def test_rfc_8058_one_click_headers(store, messenger, signer) -> None:
    result = send(store, messenger, signer=signer)
    mail = only_mail(messenger)
    match = re.fullmatch(r"<(https://[^>]+)>", mail.headers["List-Unsubscribe"])
    assert match is not None, mail.headers["List-Unsubscribe"]
    assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = match.group(1)
    token = signer.verify(token_in(url, "u"))
    assert (token.kind, token.lead_id, token.message_id, token.topic) == (
        TokenKind.UNSUBSCRIBE,
        "lead_1",
        result.message_id,
        "marketing",
    )
    # The same personal link is in the body (the footer) and in the text part
    assert f'href="{url}"' in mail.html
    assert url in mail.text


def test_a_mailto_unsubscribe_comes_after_the_https_one(store, messenger) -> None:
    send(store, messenger, unsubscribe_mailto="unsubscribe@example.com")
    value = only_mail(messenger).headers["List-Unsubscribe"]
    assert re.fullmatch(
        r"<https://mail\.example\.com/u/[^>]+>, "
        r"<mailto:unsubscribe@example\.com\?subject=unsubscribe>",
        value,
    ), value


def test_the_sender_is_the_owner_when_the_owner_domain_is_verified(store, messenger) -> None:
    add_lead_with_owner(store, "山田 一郎")
    send(store, messenger, lead_id="lead_2", template_id="from-rep")
    name, address = parseaddr(only_mail(messenger).sender)
    assert address == "yamada@sales.example.co.jp"
    assert str(make_header(decode_header(name))) == "山田 一郎"


@pytest.mark.parametrize(
    ("sender_is_owner", "owner_email"),
    [
        (True, "yamada@unverified.example.org"),
        (True, None),
        (True, "not-an-address"),
        (False, "yamada@sales.example.co.jp"),
    ],
)
def test_otherwise_the_sender_is_the_template_sender(
    store, messenger, sender_is_owner, owner_email
) -> None:
    store.add_template(make_template(template_id="from-rep", sender_is_owner=sender_is_owner))
    owner = {"owner_email": owner_email} if owner_email else {}
    store.add_lead(make_lead("lead_2", "taro@client.example.org", **owner))
    store.set_consent("lead_2", "marketing", "opted_in")
    send(store, messenger, lead_id="lead_2", template_id="from-rep")
    assert parseaddr(only_mail(messenger).sender) == ("Example Corp", "news@example.com")


def test_a_click_link_copied_from_an_earlier_mail_is_sent_untracked(store, messenger) -> None:
    # Given a stored template carrying a click link of this API, copied from a mail sent to
    # another lead (a version stored before such links were refused)
    old = f"{API_URL}/c/eyJ0IjoiYyJ9.OLD-LEADS-TOKEN"
    store.add_template(make_template(html=f'<p><a href="{old}">前回のご案内</a></p>'))
    # When it is sent, Then the link is left as written: not wrapped in this mail's click link
    send(store, messenger)
    assert f'href="{old}"' in only_mail(messenger).html
    assert store.events_of(MAIL_SENT)[0].properties["links"] == []


def test_every_link_verifies_to_this_lead_this_message_and_its_destination(
    store, messenger, signer
) -> None:
    result = send(store, messenger, signer=signer)
    mail = only_mail(messenger)
    links = {
        link["link_id"]: link["url"] for link in store.events_of(MAIL_SENT)[0].properties["links"]
    }
    clicks = re.findall(re.escape(API_URL) + r'/c/([^"\s<>]+)', mail.html)
    assert len(clicks) == 4  # three links in the template and the honeypot
    destinations = []
    for text in clicks:
        token = signer.verify(text.replace("&amp;", "&"))
        assert (token.lead_id, token.message_id) == ("lead_1", result.message_id)
        if token.kind is TokenKind.HONEYPOT:
            continue
        assert token.kind is TokenKind.CLICK
        assert links[token.link_id] == token.url
        destinations.append(token.url)
    assert destinations == [
        "https://www.example.com/seminar?utm_source=mail&id=7",
        "https://www.example.com/pricing",
        "https://www.example.com/seminar?utm_source=mail&id=7",
    ]
    # The text part carries the same signed click links
    for text in re.findall(re.escape(API_URL) + r"/c/([^\s()]+)", mail.text):
        assert signer.verify(text).kind is TokenKind.CLICK
    # And the pixel is this lead's open of this message
    pixel = re.search(r'<img src="([^"]+)"', mail.html)
    assert pixel is not None
    opened = signer.verify(token_in(pixel.group(1), "o"))
    assert (opened.kind, opened.lead_id, opened.message_id) == (
        TokenKind.OPEN,
        "lead_1",
        result.message_id,
    )
