"""Unsubscribing: RFC 8058 one-click POST, the preference page (a GET changes nothing)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tsunagu.clock import FixedClock
from tsunagu.errors import MalformedRequest, NotFound
from tsunagu.mail.consent import SkipReason, skip_reason
from tsunagu.mail.preferences import (
    CONSENT_CHANGED,
    OneClickUnsubscribe,
    PreferenceChoices,
    PreferenceContext,
    Preferences,
    SubscriptionConfirmation,
    mask,
    preferences,
    read_unsubscribe_link_post,
    stop_topic_by_reply,
    unsubscribe_one_click,
    update_preferences,
)
from tsunagu.mail.send import SendRequest, send_mail
from tsunagu.tracking.tokens import TokenKind, TokenSigner, TrackingToken

from .mail_fakes import (
    MemoryMailStore,
    MemoryMessenger,
    make_clock,
    make_lead,
    make_policy,
    make_signer,
    make_template,
    token_in,
    unsubscribe_token,
)

CONTEXT = PreferenceContext(ip="198.51.100.7", user_agent="Mozilla/5.0 (Macintosh)")
VERSION = "0123456789abcdef" * 2
"""A version of a page as its form carries it (Preferences.version)."""


@pytest.fixture
def store() -> MemoryMailStore:
    store = MemoryMailStore()
    store.add_lead(make_lead("lead_1", "hanako@example.com"))
    store.set_consent("lead_1", "marketing", "opted_in")
    store.set_consent("lead_1", "webinar", "opted_in")
    return store


@pytest.fixture
def signer() -> TokenSigner:
    return make_signer()


@pytest.fixture
def clock() -> FixedClock:
    return make_clock()


def may_send(store: MemoryMailStore, topic: str) -> SkipReason | None:
    recipient = store.recipient("lead_1", topic)
    assert recipient.lead is not None
    return skip_reason(
        address=recipient.lead.email, kind="marketing", topic=topic, consent=recipient.consent
    )


def test_one_click_unsubscribes_from_all_marketing_mail(store, signer, clock) -> None:
    # Given a lead opted in to marketing mail
    assert may_send(store, "news") is None
    # When the mail client POSTs List-Unsubscribe=One-Click to the personal link
    unsubscribe_one_click(
        unsubscribe_token(signer, topic="news"), CONTEXT, signer=signer, store=store, clock=clock
    )
    # Then the lead is opted out of all, with the evidence of how
    [(evidence, method)] = store.consent_changes
    assert (evidence.topic, evidence.status, method) == ("all", "opted_out", "one_click")
    assert (evidence.lead_id, evidence.email) == ("lead_1", "hanako@example.com")
    assert (evidence.ip, evidence.user_agent) == (CONTEXT.ip, CONTEXT.user_agent)
    assert evidence.at == "2026-11-20T09:00:00.000Z"
    [event] = store.events
    assert event.type == CONSENT_CHANGED
    assert event.properties == {
        "topic": "all",
        "status": "opted_out",
        "method": "one_click",
        "message_id": "msg_1",
    }
    # And no marketing topic may be mailed any more
    assert may_send(store, "news") is SkipReason.OPTED_OUT
    assert may_send(store, "webinar") is SkipReason.OPTED_OUT


def test_the_link_in_a_sent_mail_unsubscribes_with_one_click(store, signer, clock) -> None:
    # Given a mail actually sent to the lead
    store.add_template(make_template())
    messenger = MemoryMessenger()
    send_mail(
        SendRequest("lead_1", "welcome", "k-1"),
        store=store,
        messenger=messenger,
        signer=signer,
        clock=clock,
        policy=make_policy(),
    )
    header = messenger.sent[0].headers["List-Unsubscribe"]
    url = re.fullmatch(r"<([^>]+)>", header)
    assert url is not None
    # When its List-Unsubscribe link is POSTed
    unsubscribe_one_click(
        token_in(url.group(1), "u"), CONTEXT, signer=signer, store=store, clock=clock
    )
    # Then the next send is skipped
    assert store.topics["lead_1"]["all"] == "opted_out"
    result = send_mail(
        SendRequest("lead_1", "welcome", "k-2"),
        store=store,
        messenger=messenger,
        signer=signer,
        clock=clock,
        policy=make_policy(),
    )
    assert result.reason == "opted_out"
    assert len(messenger.sent) == 1


def test_opening_the_preference_page_changes_nothing(store, signer) -> None:
    # Given a security scanner (or the person) following the link with a GET
    shown = preferences(unsubscribe_token(signer, topic="news"), signer=signer, store=store)
    # Then the page shows the state
    assert shown.lead_id == "lead_1"
    assert shown.masked_email == "h*****@example.com"
    assert shown.topics == {"marketing": True, "webinar": True, "news": True}
    assert shown.unsubscribed_from_all is False
    # And nothing was changed or recorded
    assert store.consent_changes == []
    assert store.events == []
    assert store.topics["lead_1"] == {"marketing": "opted_in", "webinar": "opted_in"}


def test_the_page_shows_the_state_as_the_save_reads_it(store, signer, monkeypatch) -> None:
    # Given a read of the consent state that lags (DynamoDB's eventually consistent query,
    # just after a save), and the strongly consistent records the save checks against
    monkeypatch.setattr(store, "consent_state", lambda lead_id: {"marketing": "opted_out"})
    # When the page is shown, Then it is built from the records, so that its version is the one
    # the next save finds
    shown = preferences(unsubscribe_token(signer, topic="news"), signer=signer, store=store)
    assert shown.topics == {"marketing": True, "webinar": True, "news": True}


def test_the_page_submission_records_only_what_changed(store, signer, clock) -> None:
    token = unsubscribe_token(signer, topic="news")
    # When the person unticks "webinar" and submits the rest unchanged (and a made-up topic)
    shown = update_preferences(
        token,
        {"marketing": True, "webinar": False, "news": True, "made-up": False},
        False,
        CONTEXT,
        signer=signer,
        store=store,
        clock=clock,
    )
    # Then exactly one change is recorded
    assert [(e.topic, e.status, m) for e, m in store.consent_changes] == [
        ("webinar", "opted_out", "preferences")
    ]
    assert shown.topics["webinar"] is False and shown.topics["marketing"] is True
    assert "made-up" not in store.topics["lead_1"]
    # And submitting the same again changes nothing more
    update_preferences(
        token,
        {"marketing": True, "webinar": False},
        False,
        CONTEXT,
        signer=signer,
        store=store,
        clock=clock,
    )
    assert len(store.consent_changes) == 1


def test_a_topic_kept_ticked_survives_unticking_marketing(store, signer, clock) -> None:
    # Given a lead opted in to marketing only, whose news mail follows that opt-in
    store.topics["lead_1"] = {"marketing": "opted_in"}
    token = unsubscribe_token(signer, topic="news")
    assert preferences(token, signer=signer, store=store).topics == {
        "marketing": True,
        "news": True,
    }
    # When the page comes back with marketing unticked and news still ticked
    shown = update_preferences(
        token,
        {"marketing": False, "news": True},
        False,
        CONTEXT,
        signer=signer,
        store=store,
        clock=clock,
    )
    # Then news mail still goes, and nothing else does
    assert shown.topics == {"marketing": False, "news": True}
    assert may_send(store, "news") is None
    assert may_send(store, "webinar") is SkipReason.NO_CONSENT


def save(
    token: str, store: MemoryMailStore, signer: TokenSigner, clock: FixedClock, **changes: bool
) -> Preferences:
    """The preference page loaded, the boxes in ``changes`` set (``all``: the box for all
    mail), and saved."""
    page = preferences(token, signer=signer, store=store)
    topics = {**page.topics, **{t: on for t, on in changes.items() if t != "all"}}
    everything = changes.get("all", page.unsubscribed_from_all)
    return update_preferences(
        token, topics, everything, CONTEXT, signer=signer, store=store, clock=clock,
        shown=page.version,
    )  # fmt: skip


def test_unsubscribing_from_all_on_the_page_and_back(store, signer, clock) -> None:
    token = unsubscribe_token(signer)
    shown = save(token, store, signer, clock, all=True)
    assert shown.unsubscribed_from_all is True
    assert may_send(store, "marketing") is SkipReason.OPTED_OUT
    shown = save(token, store, signer, clock, all=False)
    assert shown.unsubscribed_from_all is False
    assert [(e.topic, e.status) for e, _ in store.consent_changes] == [
        ("all", "opted_out"),
        ("all", "opted_in"),
    ]
    assert may_send(store, "marketing") is None


def test_a_page_loaded_before_a_one_click_unsubscribe_does_not_undo_it(
    store, signer, clock
) -> None:
    # Given the preference page open, and the mail app's unsubscribe button pressed meanwhile
    token = unsubscribe_token(signer)
    page = preferences(token, signer=signer, store=store)
    unsubscribe_one_click(token, CONTEXT, signer=signer, store=store, clock=clock)
    before = list(store.consent_changes)

    # When the page is saved as it was shown
    shown = update_preferences(
        token, dict(page.topics), False, CONTEXT, signer=signer, store=store, clock=clock,
        shown=page.version,
    )  # fmt: skip

    # Then nothing is saved, and the page comes back saying why, with the settings now
    assert store.consent_changes == before
    assert shown.changed_meanwhile is True
    assert shown.unsubscribed_from_all is True
    assert may_send(store, "marketing") is SkipReason.OPTED_OUT
    # And the page it comes back as saves what the person chooses on it
    assert save(token, store, signer, clock, all=False).changed_meanwhile is False
    assert may_send(store, "marketing") is None


class ChangedBeforeTheWrite(MemoryMailStore):
    """The store, where another change lands just before the save's write: after the save
    read the settings it planned on."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], None] | None = None

    def change_consents(self, changes: Any, *args: Any, **kwargs: Any) -> None:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()  # (its own write comes straight here)
        super().change_consents(changes, *args, **kwargs)


@pytest.fixture
def racing(store: MemoryMailStore) -> ChangedBeforeTheWrite:
    racing = ChangedBeforeTheWrite()
    racing.leads = store.leads
    racing.set_consent("lead_1", "marketing", "opted_in")
    return racing


def test_a_one_click_landing_between_the_saves_read_and_write_is_not_undone(
    racing, signer, clock
) -> None:
    # Given the person unsubscribed from all mail, and the page open saying so
    token = unsubscribe_token(signer)
    unsubscribe_one_click(token, CONTEXT, signer=signer, store=racing, clock=clock)
    page = preferences(token, signer=signer, store=racing)
    assert page.unsubscribed_from_all is True
    # ... and the mail app's button pressed again (the same instant, the same status) as the
    # page is saved: after the save read the settings, before it writes
    racing.meanwhile = lambda: unsubscribe_one_click(
        token, CONTEXT, signer=signer, store=racing, clock=clock
    )

    # When the page is saved with the box for all mail unticked
    shown = update_preferences(
        token, dict(page.topics), False, CONTEXT, signer=signer, store=racing, clock=clock,
        shown=page.version,
    )  # fmt: skip

    # Then the save is refused as stale, and the later unsubscribe stands
    assert racing.meanwhile is None, "the change landed"
    assert shown.changed_meanwhile is True
    assert [method for _, method in racing.consent_changes] == ["one_click", "one_click"]
    assert may_send(racing, "marketing") is SkipReason.OPTED_OUT


def test_a_reply_landing_between_the_saves_read_and_write_is_not_undone(
    racing, signer, clock
) -> None:
    # Given the page of a news mail open: news follows marketing, both ticked
    token = unsubscribe_token(signer, topic="news")
    page = preferences(token, signer=signer, store=racing)
    assert page.topics == {"marketing": True, "news": True}
    # ... and a reply saying 配信停止 to that mail stored as the page is saved: after the save
    # read the settings, before it writes
    lead = racing.leads["lead_1"]

    def replied() -> None:
        changes = stop_topic_by_reply(lead, "news", "msg_1", "配信停止", store=racing, clock=clock)
        racing.change_consents(changes)

    racing.meanwhile = replied

    # When the page is saved with marketing unticked and news left ticked (which writes news
    # down as opted in, so that it does not follow marketing out)
    shown = update_preferences(
        token, {"marketing": False, "news": True}, False, CONTEXT, signer=signer,
        store=racing, clock=clock, shown=page.version,
    )  # fmt: skip

    # Then nothing of the save is stored: news stays out, marketing in
    assert racing.meanwhile is None, "the reply landed"
    assert shown.changed_meanwhile is True
    assert shown.topics == {"marketing": True, "news": False}
    assert racing.topics["lead_1"] == {"marketing": "opted_in", "news": "opted_out"}


def test_the_version_of_a_page_is_what_it_shows() -> None:
    page = Preferences("lead_1", "h*****@example.com", {"marketing": True}, False, [])
    assert len(page.version) == 32
    assert (
        page.version
        == Preferences("lead_2", "x*@example.jp", {"marketing": True}, False, ["a"]).version
    )
    assert (
        page.version
        != Preferences("lead_1", "h*****@example.com", {"marketing": False}, False, []).version
    )
    assert (
        page.version
        != Preferences("lead_1", "h*****@example.com", {"marketing": True}, True, []).version
    )


def test_a_post_that_does_not_say_what_its_page_showed_may_only_withdraw_consent(
    store, signer, clock
) -> None:
    # Given a lead unsubscribed from all mail, out of webinar mail
    token = unsubscribe_token(signer, topic="news")
    unsubscribe_one_click(token, CONTEXT, signer=signer, store=store, clock=clock)
    store.set_consent("lead_1", "webinar", "opted_out")

    # When a post without the page's version ticks webinar, leaves all mail unticked, and
    # unticks news
    update_preferences(
        token, {"marketing": True, "webinar": True, "news": False}, False, CONTEXT,
        signer=signer, store=store, clock=clock,
    )  # fmt: skip

    # Then news is opted out, and nothing is opted in
    assert store.topics["lead_1"] == {
        "marketing": "opted_in",
        "webinar": "opted_out",
        "all": "opted_out",
        "news": "opted_out",
    }


def test_mask_shows_enough_to_recognise_not_to_harvest() -> None:
    assert mask("hanako@example.com") == "h*****@example.com"
    assert mask("a@example.com") == "a*@example.com"


def bad_tokens(signer: TokenSigner) -> dict[str, str]:
    good = unsubscribe_token(signer)
    key_id, body, signature = good.split(".")
    return {
        "garbage": "not-a-token",
        "empty": "",
        "forged with another key": unsubscribe_token(make_other_signer()),
        "tampered": f"{key_id}.{body}.{'A' * len(signature)}",
        "click token": signer.sign(
            TrackingToken(TokenKind.CLICK, "msg_1", "lead_1", 0, "https://www.example.com/", "l1")
        ),
        "open token": signer.sign(TrackingToken(TokenKind.OPEN, "msg_1", "lead_1", 0)),
        "honeypot token": signer.sign(
            TrackingToken(TokenKind.HONEYPOT, "msg_1", "lead_1", 0, "https://www.example.com/")
        ),
        "unknown lead": unsubscribe_token(signer, lead_id="lead_gone"),
        "too long": good + "A" * 5000,
    }


def make_other_signer() -> TokenSigner:
    return TokenSigner({"k1": b"x" * 32}, "k1")


@pytest.mark.parametrize(
    "case",
    [
        "garbage",
        "empty",
        "forged with another key",
        "tampered",
        "click token",
        "open token",
        "honeypot token",
        "unknown lead",
        "too long",
    ],
)
def test_a_bad_link_is_not_found_and_changes_nothing(store, signer, clock, case) -> None:
    token = bad_tokens(signer)[case]
    with pytest.raises(NotFound):
        preferences(token, signer=signer, store=store)
    with pytest.raises(NotFound):
        unsubscribe_one_click(token, CONTEXT, signer=signer, store=store, clock=clock)
    with pytest.raises(NotFound):
        update_preferences(token, {}, True, CONTEXT, signer=signer, store=store, clock=clock)
    assert store.consent_changes == []
    assert store.events == []


# ---------------------------------------------------------------- what a POST to the link asks


@pytest.mark.parametrize(
    ("form", "meant"),
    [
        ({"List-Unsubscribe": ["One-Click"]}, OneClickUnsubscribe()),
        ({"List-Unsubscribe": ["One-Click"], "provider_extra": ["x"]}, OneClickUnsubscribe()),
        ({"confirm": ["1"]}, SubscriptionConfirmation()),
        ({"form": ["preferences"]}, PreferenceChoices(frozenset(), False)),
        (
            {"form": ["preferences"], "topic:seminars": ["on"], "unsubscribe_all": ["on"]},
            PreferenceChoices(frozenset({"seminars"}), True),
        ),
        (
            {"form": ["preferences"], "shown": [VERSION], "topic:seminars": ["on"]},
            PreferenceChoices(frozenset({"seminars"}), False, VERSION),
        ),
    ],
    ids=[
        "one-click",
        "one-click with a provider's field",
        "confirm",
        "nothing ticked",
        "ticked",
        "with what the page showed",
    ],
)
def test_each_form_that_posts_to_the_link_is_read_for_what_it_means(
    form: dict[str, list[str]], meant: object
) -> None:
    assert read_unsubscribe_link_post(form) == meant


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "neither a one-click unsubscribe"),
        ({"topic:marketing": ["on"]}, "neither a one-click unsubscribe"),
        ({"unsubscribe_all": ["on"]}, "neither a one-click unsubscribe"),
        ({"form": ["other"], "unsubscribe_all": ["on"]}, "neither a one-click unsubscribe"),
        ({"List-Unsubscribe": ["one-click"]}, "List-Unsubscribe must be One-Click"),
        ({"List-Unsubscribe": [""]}, "List-Unsubscribe must be One-Click"),
        ({"List-Unsubscribe": ["One-Click", "No"]}, "sent more than once"),
        ({"form": ["preferences"], "unsubscribe_all": ["yes"]}, "sends unsubscribe_all=on"),
        ({"form": ["preferences"], "topic:marketing": ["off"]}, "sends topic:marketing=on"),
        ({"form": ["preferences"], "topic:a": ["on", "on"]}, "sent more than once"),
        ({"form": ["preferences"], "email": ["x@example.com"]}, "has no field 'email'"),
        ({"confirm": ["2"]}, "sends only confirm=1"),
        ({"confirm": ["1"], "topic:a": ["on"]}, "sends only confirm=1"),
        ({"form": ["preferences"], "shown": ["abc"]}, "record of what it showed"),
        ({"form": ["preferences"], "shown": [VERSION.upper()]}, "record of what it showed"),
        ({"form": ["preferences"], "shown": [VERSION, VERSION]}, "sent more than once"),
    ],
    ids=[
        "empty",
        "boxes without the form's marker",
        "unsubscribe_all without the form's marker",
        "another form",
        "one-click in other letters",
        "one-click empty",
        "one-click twice",
        "unsubscribe_all not on",
        "topic not on",
        "a box twice",
        "a field the form does not have",
        "confirm not 1",
        "confirm with boxes",
        "shown cut",
        "shown not as the page writes it",
        "shown twice",
    ],
)
def test_a_post_that_is_none_of_the_link_forms_is_refused_saying_why(
    form: dict[str, list[str]], message: str
) -> None:
    # An empty post was read as the preference form with every box unticked: any stray POST to
    # the link opted the lead out of every topic.
    with pytest.raises(MalformedRequest) as refused:
        read_unsubscribe_link_post(form)
    assert message in refused.value.message
    assert "nothing" in refused.value.message
