"""unsubscribe (GET and POST /u/{token}) fed with events/unsubscribe/*.json under moto, with the
token of a mail send_email really sent: the page changes nothing, RFC 8058 one-click (both
encodings) unsubscribes, the preference form changes only what the person changed, and a link
that is not genuine changes nothing."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import AwsStack, load_event
from tests.integration.mail_helpers import (
    API_URL,
    LEAD_EMAIL,
    SENDER,
    capture,
    confirm,
    consent_records,
    consent_state,
    hrefs,
    lead_events,
    parse,
    parts,
    prepare_mail,
    save_template,
    send,
    sent_messages,
    snapshot,
    stream_batch_of_lead_events,
    token_of,
    unsubscribe,
    unsubscribe_url,
    with_body,
    with_token,
)
from tsunagu import services
from tsunagu.journeys.shipped import CONFIRMATION_MAIL, shipped_template
from tsunagu.leads.capture import RequestContext, capture_submission, open_form
from tsunagu.leads.model import ConsentEvidence, LeadEvent
from tsunagu.mail.consent import TopicRecord
from tsunagu.store.leads import LeadRepository
from tsunagu.store.mail import MailRepository
from tsunagu.store.tables import bind_tables
from tsunagu.tracking.tokens import TokenKind, TokenSigner, TrackingToken


class Mailed:
    """A lead who consented on the demo form and was sent the welcome mail."""

    def __init__(self, stack: AwsStack, lead_id: str, message_id: str, mail: Any) -> None:
        self.stack = stack
        self.lead_id = lead_id
        self.message_id = message_id
        self.mail = mail

    @property
    def token(self) -> str:
        return token_of(unsubscribe_url(self.mail))

    def request(self, case: str, token: str | None = None, **body: Any) -> dict[str, Any]:
        event = with_token(load_event("unsubscribe", case), token or self.token)
        if body:
            event = with_body(event, **body)
        return unsubscribe(self.stack, event)

    def send(self, template_id: str = "welcome") -> dict[str, Any]:
        return send(self.stack, self.lead_id, template_id=template_id)


def mail_to(stack: AwsStack, lead_id: str, template_id: str = "welcome") -> Mailed:
    before = len(sent_messages())
    result = send(stack, lead_id, template_id=template_id)
    assert result["status"] == "sent", result
    message = sent_messages()[before]
    return Mailed(stack, lead_id, result["message_id"], parse(message.raw_data))


@pytest.fixture
def mailed(aws: AwsStack) -> Mailed:
    prepare_mail(aws)
    save_template(aws)
    return mail_to(aws, capture(aws))


def consent_events(mailed: Mailed) -> list[dict[str, Any]]:
    return lead_events(mailed.stack, mailed.lead_id, "consent_changed")


# ---------------------------------------------------------------- the page


def test_the_preference_page_shows_the_choices_and_changes_nothing(mailed: Mailed) -> None:
    before = snapshot(mailed.stack)

    # When a person (or a scanner) opens the link
    response = mailed.request("preference_page")

    # Then the page shows their masked address and the topic they are subscribed to
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/html")
    assert response["headers"]["cache-control"] == "no-store"
    assert response["headers"]["referrer-policy"] == "no-referrer"
    page = response["body"]
    assert "h**********@example.jp" in page
    assert LEAD_EMAIL not in page
    assert "name='topic:marketing' checked" in page
    assert "name=unsubscribe_all>" in page
    # And nothing was written
    assert snapshot(mailed.stack) == before
    assert consent_state(mailed.stack, mailed.lead_id) == {"marketing": "opted_in"}


@pytest.mark.parametrize(
    "case", ["preference_page", "preferences_form", "one_click_urlencoded", "not_genuine"]
)
def test_no_page_of_the_link_can_be_framed_or_run_a_script(mailed: Mailed, case: str) -> None:
    # When any page of the link is shown (the page, its save, one-click, a link not genuine)
    token = mailed.token if case != "not_genuine" else mailed.token[:-2] + "xx"
    response = mailed.request("preference_page" if case == "not_genuine" else case, token)

    # Then no other site may frame it (a consent button pressed through a frame), and it
    # loads nothing: its inline style only, its form posting back to itself
    headers = response["headers"]
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "form-action 'self'" in policy and "style-src 'unsafe-inline'" in policy
    assert "<script" not in response["body"]
    assert " action=" not in response["body"]  # a form posts to the page's own URL


def test_the_link_in_the_mail_footer_is_the_list_unsubscribe_link(mailed: Mailed) -> None:
    text, html = parts(mailed.mail)
    assert unsubscribe_url(mailed.mail) in hrefs(html)
    assert unsubscribe_url(mailed.mail) in text


# ---------------------------------------------------------------- one-click


@pytest.mark.parametrize("case", ["one_click_urlencoded", "one_click_multipart"])
def test_one_click_unsubscribes_from_all_marketing_mail(mailed: Mailed, case: str) -> None:
    # When the mail provider posts List-Unsubscribe=One-Click to the List-Unsubscribe URL
    response = mailed.request(case)

    # Then the person is unsubscribed from everything, with the evidence kept
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/html")
    assert response["headers"]["cache-control"] == "no-store"
    assert "You are unsubscribed" in response["body"]
    assert consent_state(mailed.stack, mailed.lead_id) == {
        "marketing": "opted_in",
        "all": "opted_out",
    }
    (changed,) = consent_events(mailed)
    assert changed["properties"] == {
        "topic": "all",
        "status": "opted_out",
        "method": "one_click",
        "message_id": mailed.message_id,
    }
    evidence = [
        item
        for record, item in consent_records(mailed.stack, mailed.lead_id).items()
        if record.startswith("evidence#") and item["topic"] == "all"
    ]
    assert len(evidence) == 1
    assert evidence[0]["ip"].startswith("203.0.113.")
    assert "ExampleMail-OneClick" in evidence[0]["user_agent"]

    # And the next mail the journey sends is skipped
    result = mailed.send()
    assert (result["status"], result["reason"]) == ("skipped", "opted_out")
    assert len(sent_messages()) == 1


def test_one_click_again_still_answers_unsubscribed(mailed: Mailed) -> None:
    mailed.request("one_click_urlencoded")
    again = mailed.request("one_click_multipart")

    assert again["statusCode"] == 200
    assert consent_state(mailed.stack, mailed.lead_id)["all"] == "opted_out"


# ---------------------------------------------------------------- after an unsubscribe from all


def evidence_of(mailed: Mailed, topic: str) -> dict[str, Any]:
    """The evidence the topic's state now rests on."""
    records = consent_records(mailed.stack, mailed.lead_id)
    rests_on = records[f"topic#{topic}"]["evidence"]
    (evidence,) = [
        r for k, r in records.items() if k.startswith("evidence#") and k.endswith(rests_on)
    ]
    return evidence


def install_confirmation_mail(mailed: Mailed) -> None:
    """The confirmation mail Tsunagu ships (the forms' default confirmation_template)."""
    settings = mailed.stack.settings()
    template = shipped_template(CONFIRMATION_MAIL, site_url=API_URL, sender=SENDER)
    services.mail_repository(settings).save_template(template, services.clock(settings))


def confirmations_to(address: str) -> list[Any]:
    return [
        m
        for m in sent_messages()
        if "ご登録の確認" in str(parse(m.raw_data)["Subject"])
        and address in str(parse(m.raw_data)["To"])
    ]


def test_an_opt_in_to_one_topic_after_unsubscribing_from_all_renews_that_topic_only(
    mailed: Mailed,
) -> None:
    # Given the person unsubscribed from all mail with the button in their mail client
    assert mailed.request("one_click_urlencoded")["statusCode"] == 200
    save_template(mailed.stack, template_id="seminar-news", topic="seminars")
    install_confirmation_mail(mailed)

    # When, months later, they sign up for a seminar ticking "Send me seminars news" (a form
    # without double opt-in), and confirm it from the mail that asks
    assert capture(mailed.stack, form_id="seminar") == mailed.lead_id
    assert mailed.send("seminar-news")["reason"] == "opted_out"  # not before the confirmation
    assert confirm(mailed.stack, mailed.lead_id)["statusCode"] == 200

    # Then seminar news may go, and the newsletter they left stays stopped
    assert consent_state(mailed.stack, mailed.lead_id) == {
        "marketing": "opted_out",
        "seminars": "opted_in",
    }
    assert mailed.send("seminar-news")["status"] == "sent"
    result = mailed.send("welcome")
    assert (result["status"], result["reason"]) == ("skipped", "opted_out")
    # And the evidence says why marketing is out, naming the unsubscribe
    kept_out = evidence_of(mailed, "marketing")
    assert kept_out["method"] == "kept_unsubscribed"
    assert "unsubscribed from all mail" in kept_out["text"]
    assert "seminars" in kept_out["text"]


def test_the_same_box_ticked_again_after_unsubscribing_from_all_renews_it_once_confirmed(
    mailed: Mailed,
) -> None:
    # Given the person unsubscribed from all mail
    mailed.request("one_click_urlencoded")
    install_confirmation_mail(mailed)

    # When the marketing box is ticked again on the form they first used (by them or by anyone
    # who knows the address: the form cannot tell)
    capture(mailed.stack)

    # Then nothing resumes yet: the opt-in waits, and the confirmation mail goes to the address
    assert consent_state(mailed.stack, mailed.lead_id)["all"] == "opted_out"
    assert mailed.send()["reason"] == "opted_out"
    assert confirm(mailed.stack, mailed.lead_id)["statusCode"] == 200
    assert len(confirmations_to(LEAD_EMAIL)) == 1

    # And once the person confirms, marketing mail may go again: the consent they gave now
    assert consent_state(mailed.stack, mailed.lead_id) == {"marketing": "opted_in"}
    assert mailed.send()["status"] == "sent"


def test_a_strangers_form_post_does_not_end_an_unsubscribe(mailed: Mailed) -> None:
    # Given the person pressed "unsubscribe" in their mail client
    assert mailed.request("one_click_urlencoded")["statusCode"] == 200
    install_confirmation_mail(mailed)

    # When someone else, anywhere, posts the public form for that address with the box ticked
    # (a server post: no Origin, curl's user agent, another IP)
    event = load_event("capture_form", "new_lead_json")
    event["headers"].pop("origin", None)
    event["headers"]["user-agent"] = "curl/8.5.0"
    event["requestContext"]["http"]["sourceIp"] = "192.0.2.250"
    event["body"] = json.dumps({"email": LEAD_EMAIL, "consent": True})
    assert mailed.stack.function("capture_form").invoke(event)["statusCode"] == 201

    # Then marketing mail does not resume: the consent waits for the person, pending
    assert mailed.send()["reason"] == "opted_out"
    records = consent_records(mailed.stack, mailed.lead_id)
    assert records["pending#marketing"]["status"] == "pending"
    assert records["topic#all"]["status"] == "opted_out"
    # And the only mail it causes is the confirmation, to the person's own address
    before = len(sent_messages())
    route = mailed.stack.function("route_events")
    assert route.invoke(stream_batch_of_lead_events(mailed.stack, mailed.lead_id)) == {
        "batchItemFailures": []
    }
    assert len(sent_messages()) == before + 1
    assert len(confirmations_to(LEAD_EMAIL)) == 1
    assert mailed.send()["reason"] == "opted_out"


def said(mailed: Mailed, topic: str, status: str, at: str) -> None:
    """The consent to ``topic`` set to ``status`` at ``at``, as the preference page sets it."""
    evidence = ConsentEvidence(f"cns_{topic}_{at}", mailed.lead_id, LEAD_EMAIL, topic, status, at)
    properties = {"topic": topic, "status": status, "method": "preferences"}
    event = LeadEvent(
        f"evt_{topic}_{at}", "consent_changed", at, mailed.lead_id, properties=properties
    )
    services.mail_repository(mailed.stack.settings()).change_consent(evidence, "preferences", event)


class NoMeanwhile(LeadRepository):
    """The lead store, where the person says no (``no``) just after the form's capture read
    their topics: between its read and its write."""

    def __init__(self, mailed: Mailed, no: Callable[[], None]) -> None:
        super().__init__(bind_tables(mailed.stack.settings()))
        self.no = no
        self.reads = 0

    def topic_records(self, lead_id: str) -> dict[str, TopicRecord]:
        records = super().topic_records(lead_id)
        self.reads += 1
        if self.reads == 1:
            self.no()
        return records


def submit_seminar_form(mailed: Mailed, store: NoMeanwhile) -> None:
    """The seminar form posted for the lead with its box ("Send me seminars news") ticked."""
    form = open_form("seminar", None, store=store)
    capture_submission(
        form, {"email": LEAD_EMAIL, "consent": True}, RequestContext(),
        store=store, clock=services.clock(mailed.stack.settings()),
    )  # fmt: skip


def form_evidence(mailed: Mailed, topic: str) -> list[str]:
    """The statuses of the evidence forms recorded for ``topic``, oldest first."""
    records = consent_records(mailed.stack, mailed.lead_id)
    return [
        r["status"]
        for k, r in sorted(records.items())
        if k.startswith("evidence#") and r["topic"] == topic and r.get("form_id")
    ]


def test_an_opt_in_planned_before_an_unsubscribe_from_all_is_decided_again(
    mailed: Mailed,
) -> None:
    # Given marketing opted in (on the demo form) and news ticked on the page, nothing stopped
    said(mailed, "news", "opted_in", "2030-02-01T00:00:00.000Z")
    save_template(mailed.stack, template_id="seminar-news", topic="seminars")
    store = NoMeanwhile(
        mailed, lambda: said(mailed, "all", "opted_out", "2030-03-01T00:00:00.000Z")
    )

    # When the seminar form's box is ticked, and the person unsubscribes from all mail between
    # the capture's read of their topics (no "no" in them: an opt-in at once) and its write
    submit_seminar_form(mailed, store)

    # Then the write planned on a lead who had not said no is refused, and decided again on
    # the lead as it is now: the box of a lead unsubscribed from all mail waits for the
    # person's confirmation, and the unsubscribe stands
    state = consent_state(mailed.stack, mailed.lead_id)
    assert state["all"] == "opted_out" and "seminars" not in state
    assert store.reads == 2
    assert form_evidence(mailed, "seminars") == ["pending"]
    assert consent_records(mailed.stack, mailed.lead_id)["pending#seminars"]["status"] == "pending"
    assert mailed.send("seminar-news")["reason"] == "opted_out"


def test_a_topic_opt_out_on_the_page_between_a_forms_read_and_its_write_stands(
    two_topics: Mailed,
) -> None:
    # Given the lead opted in to seminars on the seminar form, and the preference page open
    mailed = two_topics
    save_template(mailed.stack, template_id="seminar-news", topic="seminars")
    page = mailed.request("preference_page")["body"]
    assert "name='topic:seminars' checked" in page
    submissions = len(lead_events(mailed.stack, mailed.lead_id, "form_submitted"))

    def untick_seminars() -> None:
        saved = mailed.request("preferences_form", **page_form(page, "topic%3Amarketing=on"))
        assert saved["statusCode"] == 200, saved["body"]

    store = NoMeanwhile(mailed, untick_seminars)

    # When the seminar form's box is ticked again, and the person unticks seminars on the page
    # between the capture's read of their topics (seminars opted in) and its write
    submit_seminar_form(mailed, store)

    # Then the later opt-out stands: the form's opt-in, decided again on it, waits for the
    # person's confirmation - and the submission is stored whole, once: its event, its pending
    # evidence and the pending record, nothing of the refused write
    assert consent_state(mailed.stack, mailed.lead_id)["seminars"] == "opted_out"
    assert mailed.send("seminar-news")["reason"] == "opted_out"
    assert store.reads == 2
    assert form_evidence(mailed, "seminars") == ["opted_in", "pending"]
    assert consent_records(mailed.stack, mailed.lead_id)["pending#seminars"]["status"] == "pending"
    after = lead_events(mailed.stack, mailed.lead_id, "form_submitted")
    assert len(after) == submissions + 1


# ---------------------------------------------------------------- the preference form


@pytest.fixture
def two_topics(mailed: Mailed) -> Mailed:
    """Given the lead also signed up for seminar news on the seminar form."""
    assert capture(mailed.stack, form_id="seminar") == mailed.lead_id
    assert consent_state(mailed.stack, mailed.lead_id) == {
        "marketing": "opted_in",
        "seminars": "opted_in",
    }
    save_template(mailed.stack, template_id="seminar-news", topic="seminars")
    return mailed


def form(body: str) -> dict[str, str]:
    """The preference page's form post with these boxes ticked (urlencoded)."""
    fields = "&".join(part for part in ("form=preferences", body) if part)
    return {"body": fields, "content_type": "application/x-www-form-urlencoded"}


def test_the_page_form_says_it_is_the_preference_form(mailed: Mailed) -> None:
    page = mailed.request("preference_page")["body"]

    assert "<input type=hidden name=form value=preferences>" in page


def test_the_page_lists_every_topic_the_lead_has(two_topics: Mailed) -> None:
    page = two_topics.request("preference_page")["body"]

    assert "name='topic:marketing' checked" in page
    assert "name='topic:seminars' checked" in page


def test_the_preference_form_changes_only_what_changed(two_topics: Mailed) -> None:
    # When the person keeps seminar news and unticks marketing
    response = two_topics.request("preferences_form", **form("topic%3Aseminars=on"))

    # Then only marketing changes, and the page shows the result
    assert response["statusCode"] == 200
    assert "Saved" in response["body"]
    assert "name='topic:marketing'>" in response["body"]
    assert "name='topic:seminars' checked" in response["body"]
    assert consent_state(two_topics.stack, two_topics.lead_id) == {
        "marketing": "opted_out",
        "seminars": "opted_in",
    }
    (changed,) = consent_events(two_topics)
    assert changed["properties"]["topic"] == "marketing"
    assert changed["properties"]["method"] == "preferences"

    # And marketing mail stops while seminar news still goes out
    assert two_topics.send("welcome")["reason"] == "opted_out"
    assert two_topics.send("seminar-news")["status"] == "sent"


def test_submitting_the_form_unchanged_records_nothing(two_topics: Mailed) -> None:
    before = snapshot(two_topics.stack)

    response = two_topics.request(
        "preferences_form", **form("topic%3Amarketing=on&topic%3Aseminars=on")
    )

    assert response["statusCode"] == 200
    assert snapshot(two_topics.stack) == before


def test_the_sample_preferences_post_keeps_marketing(mailed: Mailed) -> None:
    # events/unsubscribe/preferences_form.json ticks marketing: nothing to change
    before = snapshot(mailed.stack)

    response = mailed.request("preferences_form")

    assert response["statusCode"] == 200
    assert snapshot(mailed.stack) == before


def test_unsubscribe_all_on_the_form_stops_everything(two_topics: Mailed) -> None:
    response = two_topics.request(
        "preferences_form",
        **form("topic%3Amarketing=on&topic%3Aseminars=on&unsubscribe_all=on"),
    )

    assert response["statusCode"] == 200
    assert "name=unsubscribe_all checked" in response["body"]
    assert consent_state(two_topics.stack, two_topics.lead_id) == {
        "marketing": "opted_in",
        "seminars": "opted_in",
        "all": "opted_out",
    }
    assert [e["properties"]["topic"] for e in consent_events(two_topics)] == ["all"]
    assert two_topics.send("seminar-news")["reason"] == "opted_out"


def test_a_topic_not_on_the_page_cannot_be_added_by_the_form(mailed: Mailed) -> None:
    before = snapshot(mailed.stack)

    mailed.request("preferences_form", **form("topic%3Amarketing=on&topic%3Aanything=on"))

    assert snapshot(mailed.stack) == before


def test_a_topic_kept_ticked_stays_subscribed_when_marketing_is_unticked(aws: AwsStack) -> None:
    # Given a lead subscribed to marketing, mailed a seminar-topic mail: the page shows
    # "seminars" ticked (marketing consent covers it)
    prepare_mail(aws)
    save_template(aws, template_id="seminar-news", topic="seminars")
    mailed = mail_to(aws, capture(aws), "seminar-news")
    page = mailed.request("preference_page")["body"]
    assert "name='topic:seminars' checked" in page

    # When the person keeps seminars ticked and unticks marketing
    response = mailed.request("preferences_form", **form("topic%3Aseminars=on"))

    # Then seminars stays ticked, and seminar mail still goes out
    assert "name='topic:seminars' checked" in response["body"]
    assert mailed.send("seminar-news")["status"] == "sent"


# ---------------------------------------------------------------- a page loaded earlier


def page_form(page: str, body: str) -> dict[str, str]:
    """The form of this preference page posted with these boxes ticked: with the version of
    what the page showed, as a browser posts it."""
    version = re.search(r"<input type=hidden name=shown value=([0-9a-f]+)>", page)
    assert version is not None, page
    return form(f"shown={version.group(1)}&{body}" if body else f"shown={version.group(1)}")


def test_a_page_loaded_before_a_one_click_unsubscribe_does_not_undo_it(mailed: Mailed) -> None:
    # Given the preference page open (marketing ticked, all mail not stopped) ...
    page = mailed.request("preference_page")["body"]
    assert "name=unsubscribe_all>" in page
    # ... and the mail client's unsubscribe button pressed meanwhile
    assert mailed.request("one_click_urlencoded")["statusCode"] == 200
    before = snapshot(mailed.stack)

    # When the person saves the page still open, changing nothing on it
    saved = mailed.request("preferences_form", **page_form(page, "topic%3Amarketing=on"))

    # Then nothing is saved, and the page comes back saying so, with the settings now
    assert saved["statusCode"] == 409
    assert "何も保存していません" in saved["body"] and "Nothing was saved" in saved["body"]
    assert "name=unsubscribe_all checked" in saved["body"]
    assert snapshot(mailed.stack) == before
    assert mailed.send()["reason"] == "opted_out"

    # And the page it came back as saves what the person chooses on it
    again = mailed.request("preferences_form", **page_form(saved["body"], "topic%3Amarketing=on"))
    assert again["statusCode"] == 200 and "Saved" in again["body"]
    assert mailed.send()["status"] == "sent"


class OneClickBeforeTheWrite:
    """The mail client's unsubscribe button pressed just as the page is saved: after the save
    read the settings it compares with the page, before it writes. ``answer`` is the one-click's
    response, ``after`` everything stored just after it."""

    def __init__(self, mailed: Mailed, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answer: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        write = MailRepository.change_consents
        pressed = False

        def unsubscribed_first(repository: MailRepository, *args: Any, **kwargs: Any) -> None:
            nonlocal pressed
            if not pressed:  # (the one-click's own write goes straight through)
                pressed = True
                self.answer = mailed.request("one_click_urlencoded")
                self.after = snapshot(mailed.stack)
            write(repository, *args, **kwargs)

        monkeypatch.setattr(MailRepository, "change_consents", unsubscribed_first)


def test_an_unsubscribe_landing_between_the_saves_read_and_its_write_is_not_undone(
    mailed: Mailed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the person unsubscribed from all mail, and the preference page open saying so ...
    assert mailed.request("one_click_urlencoded")["statusCode"] == 200
    page = mailed.request("preference_page")["body"]
    assert "name=unsubscribe_all checked" in page
    # ... and the unsubscribe button pressed again as the page is saved
    race = OneClickBeforeTheWrite(mailed, monkeypatch)

    # When the person saves the page with the box for all mail unticked (subscribing again)
    saved = mailed.request("preferences_form", **page_form(page, "topic%3Amarketing=on"))

    # Then the later unsubscribe stands: nothing of the save is stored, and the page comes
    # back as a stale one, with the settings now
    assert race.answer is not None and race.answer["statusCode"] == 200
    assert saved["statusCode"] == 409, saved["body"]
    assert "name=unsubscribe_all checked" in saved["body"]
    assert snapshot(mailed.stack) == race.after
    assert mailed.send()["reason"] == "opted_out"


def test_a_save_of_another_box_is_stale_too_when_an_unsubscribe_lands_before_its_write(
    two_topics: Mailed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the page open (marketing and seminars ticked, all mail not stopped), and the
    # unsubscribe button pressed as it is saved
    page = two_topics.request("preference_page")["body"]
    race = OneClickBeforeTheWrite(two_topics, monkeypatch)

    # When the person saves the page with seminars unticked (a change of seminars only)
    saved = two_topics.request("preferences_form", **page_form(page, "topic%3Amarketing=on"))

    # Then the save, planned on a lead not unsubscribed from all mail (the record it checks,
    # not one it writes), is refused as stale: the page comes back saying all mail is stopped
    assert race.answer is not None and race.answer["statusCode"] == 200
    assert saved["statusCode"] == 409, saved["body"]
    assert "name=unsubscribe_all checked" in saved["body"]
    assert snapshot(two_topics.stack) == race.after


def test_a_post_without_the_pages_version_never_opts_in(mailed: Mailed) -> None:
    # Given the person unsubscribed from all mail
    mailed.request("one_click_urlencoded")
    before = snapshot(mailed.stack)

    # When a post that does not say what its page showed (a page served before pages said it)
    # comes with marketing ticked and the box for all mail unticked
    saved = mailed.request("preferences_form", **form("topic%3Amarketing=on"))

    # Then it opts in to nothing: the unsubscribe holds
    assert saved["statusCode"] == 200
    assert snapshot(mailed.stack) == before
    assert mailed.send()["reason"] == "opted_out"


def test_a_page_with_a_version_it_did_not_write_is_refused(mailed: Mailed) -> None:
    before = snapshot(mailed.stack)

    response = mailed.request("preferences_form", **form("shown=not-a-version"))

    assert response["statusCode"] == 400
    assert snapshot(mailed.stack) == before


# ---------------------------------------------------------------- links that are not genuine


def other_first_character(text: str) -> str:
    """The text with its first character changed. (Not its last: base64's last character may
    carry unused bits, and a changed one can decode to the same bytes.)"""
    return ("B" if text[0] == "A" else "A") + text[1:]


def not_genuine(mailed: Mailed) -> dict[str, str]:
    signer = services.token_signer(mailed.stack.settings())
    key_id, body, signature = mailed.token.split(".")
    genuine = signer.verify(mailed.token)
    click = next(h for h in hrefs(parts(mailed.mail)[1]) if "/c/" in h)
    return {
        "placeholder": "SIGNED_TOKEN",
        "garbage": "not-a-token",
        "signature changed": f"{key_id}.{body}.{other_first_character(signature)}",
        "another key": TokenSigner({key_id: secrets.token_bytes(48)}, key_id).sign(genuine),
        "a click token": token_of(click),
        "an unknown lead": signer.sign(
            TrackingToken(
                TokenKind.UNSUBSCRIBE,
                mailed.message_id,
                "lead_01JDEXAMPLE0000000000000099",
                genuine.sent_at,
            )
        ),
    }


@pytest.mark.parametrize(
    "how",
    [
        "placeholder",
        "garbage",
        "signature changed",
        "another key",
        "a click token",
        "an unknown lead",
    ],
)
@pytest.mark.parametrize(
    "case", ["preference_page", "one_click_urlencoded", "one_click_multipart", "preferences_form"]
)
def test_a_link_that_is_not_genuine_gets_404_and_changes_nothing(
    mailed: Mailed, case: str, how: str
) -> None:
    before = snapshot(mailed.stack)

    response = mailed.request(case, not_genuine(mailed)[how])

    assert response["statusCode"] == 404
    assert response["headers"]["content-type"].startswith("text/html")
    assert response["headers"]["cache-control"] == "no-store"
    # And the page says, in Japanese first and in English, what the person can still do
    page = response["body"]
    assert page.startswith("<!doctype html><html lang=ja>")
    assert "リンクが無効です" in page and "Link not valid" in page
    assert "最新のメール" in page and "「配信停止」と返信" in page
    assert "open the link in the latest mail again" in page and "reply" in page
    assert snapshot(mailed.stack) == before


# ---------------------------------------------------------------- bad requests

URLENCODED = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ("List-Unsubscribe=One-Click", "text/plain", 415, "send application/x-www-form-urlencoded"),
        (
            '{"List-Unsubscribe": "One-Click"}',
            "application/json",
            415,
            "send application/x-www-form-urlencoded",
        ),
        (
            '--b\r\nContent-Disposition: form-data; name="unsubscribe_all"\r\n\r\non\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            415,
            "send application/x-www-form-urlencoded",
        ),
        # Each one the preference form but for the one flaw, so the 400 is that flaw's.
        (
            "form=preferences&topic%3Amarketing=on&" + "x" * 9000,
            URLENCODED,
            400,
            "the form is too large",
        ),
        (b"form=preferences&topic%3Amarketing=\xff\xfe", URLENCODED, 400, "cannot be read"),
        # A percent-encoded byte that is not UTF-8 (a box's name, a value): read as U+FFFD, the
        # name was no topic's any more and the box counted as unticked - an opt-out, with 200
        ("form=preferences&topic%3Amarketing%FF=on", URLENCODED, 400, "is not UTF-8"),
        ("form=preferences&topic%3Amarketing=on&unsubscribe_all=%FF", URLENCODED, 400, "UTF-8"),
        (
            "form=preferences&" + "&".join(f"topic%3Af{i}=on" for i in range(60)),
            URLENCODED,
            400,
            "cannot be read",
        ),
    ],
    ids=[
        "text/plain",
        "json",
        "multipart form",
        "too large",
        "not utf-8",
        "a name not utf-8 once decoded",
        "a value not utf-8 once decoded",
        "too many fields",
    ],
)
def test_a_post_that_cannot_be_read_gets_4xx_and_changes_nothing(
    mailed: Mailed, body: str | bytes, content_type: str, status: int, message: str
) -> None:
    before = snapshot(mailed.stack)

    response = mailed.request("preferences_form", body=body, content_type=content_type)

    assert response["statusCode"] == status
    assert response["headers"]["content-type"].startswith("text/html")
    assert message in response["body"]
    assert snapshot(mailed.stack) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "neither a one-click unsubscribe"),
        ("topic%3Amarketing=on", "neither a one-click unsubscribe"),
        ("List-Unsubscribe=one-click", "List-Unsubscribe must be One-Click"),
    ],
    ids=["empty", "boxes without the form's marker", "one-click in other letters"],
)
def test_a_post_that_is_not_one_of_the_link_forms_gets_400_and_changes_nothing(
    two_topics: Mailed, body: str, message: str
) -> None:
    # A stray or forged POST is never read as "untick every box": an empty body was, and opted
    # the lead out of every topic (found by make proof's api run). Every rule of the three
    # forms: tests/unit/test_mail_preferences.py.
    before = snapshot(two_topics.stack)

    response = two_topics.request("preferences_form", **form_body(body))

    assert response["statusCode"] == 400
    assert "Nothing was changed" in response["body"]
    assert message in response["body"]
    assert snapshot(two_topics.stack) == before


def form_body(body: str) -> dict[str, str]:
    return {"body": body, "content_type": "application/x-www-form-urlencoded"}


def test_the_form_with_every_box_unticked_opts_out_of_each_topic(two_topics: Mailed) -> None:
    # The marker alone is the page submitted with nothing ticked: a real choice, honoured.
    response = two_topics.request("preferences_form", **form(""))

    assert response["statusCode"] == 200
    assert consent_state(two_topics.stack, two_topics.lead_id) == {
        "marketing": "opted_out",
        "seminars": "opted_out",
    }
