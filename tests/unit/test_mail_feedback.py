"""SES feedback: bounces and complaints suppress, deliveries are recorded, strangers ignored.

The notifications are the sample events in events/ses_feedback/ (the same files feed
``sam local invoke``), unwrapped from their SNS envelope as the handler does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tsunagu.mail.consent import SkipReason, skip_reason
from tsunagu.mail.feedback import handle_ses_event
from tsunagu.qualification.handoff import Notification, notify_owner

from .mail_fakes import MemoryMailStore, MemoryMessenger, make_clock, make_lead

EVENTS = Path(__file__).resolve().parents[2] / "events" / "ses_feedback"
LEAD_ID = "lead_01JDEXAMPLE0000000000000000"
MESSAGE_ID = "msg_01JDEXAMPLE0000000000000001"


def notification(case: str) -> dict[str, Any]:
    envelope = json.loads((EVENTS / f"{case}.json").read_text(encoding="utf-8"))
    message: dict[str, Any] = json.loads(envelope["Records"][0]["Sns"]["Message"])
    return message


@pytest.fixture
def store() -> MemoryMailStore:
    store = MemoryMailStore()
    store.add_lead(make_lead(LEAD_ID, "hanako.sato@example.jp"))
    store.set_consent(LEAD_ID, "marketing", "opted_in")
    return store


def handle(store: MemoryMailStore, message: dict[str, Any], limit: int = 3) -> str:
    return handle_ses_event(message, store=store, clock=make_clock(), soft_bounce_limit=limit)


def may_send(store: MemoryMailStore, kind: str = "marketing") -> SkipReason | None:
    recipient = store.recipient(LEAD_ID, "marketing")
    assert recipient.lead is not None
    return skip_reason(
        address=recipient.lead.email, kind=kind, topic="marketing", consent=recipient.consent
    )


def test_a_permanent_bounce_suppresses_the_address(store) -> None:
    outcome = handle(store, notification("permanent_bounce"))
    assert outcome == "suppressed: hard bounce"
    assert store.suppressions[LEAD_ID].reason == "hard_bounce"
    [event] = store.events
    assert event.type == "mail_bounced" and event.lead_id == LEAD_ID
    assert event.properties["bounce_type"] == "Permanent"
    assert event.properties["message_id"] == MESSAGE_ID
    assert event.properties["ses_message_id"].startswith("010e019a7f3c1d2e")
    # And from now on no mail goes there, transactional included
    assert may_send(store) is SkipReason.BOUNCED
    assert may_send(store, "transactional") is SkipReason.BOUNCED


def test_transient_bounces_suppress_only_at_the_limit(store) -> None:
    # Given a mailbox that is full, three times in a row, with a limit of three
    outcomes = []
    for number in range(3):
        message = copy.deepcopy(notification("transient_bounce"))
        message["bounce"]["feedbackId"] = f"010e019a7f3c2a11-aaaa-01{number}"
        outcomes.append(handle(store, message, limit=3))
        if number < 2:
            # Then the first two are counted and recorded, and mail may still go
            assert LEAD_ID not in store.suppressions
            assert may_send(store) is None
    assert outcomes == ["soft bounce 1 of 3", "soft bounce 2 of 3", "suppressed: 3 soft bounces"]
    # And the third suppresses the address
    assert store.suppressions[LEAD_ID].reason == "soft_bounce_limit"
    assert [e.properties["soft_bounces"] for e in store.events_of("mail_bounced")] == [1, 2, 3]
    assert may_send(store) is SkipReason.BOUNCED


def test_a_redelivered_transient_bounce_is_counted_once(store) -> None:
    # Given SNS delivering the same notification twice (it delivers at least once)
    message = notification("transient_bounce")
    first = handle(store, message, limit=2)
    again = handle(store, message, limit=2)
    # Then one mailbox-full is still only one soft bounce, recorded once
    assert (first, again) == ("soft bounce 1 of 2", "already applied: soft bounce 1 of 2")
    assert LEAD_ID not in store.suppressions
    assert len(store.events_of("mail_bounced")) == 1


def test_a_transient_bounce_counted_before_this_release_is_not_counted_again(store) -> None:
    # Given a mailbox-full counted by an earlier release (by SES's feedback id alone), then
    # delivered again from the failure queue after the upgrade
    message = notification("transient_bounce")
    counted = store.count_soft_bounce(
        LEAD_ID, "hanako.sato@example.jp", "2026-12-01T00:00:00Z", message["bounce"]["feedbackId"]
    )
    assert counted == 1
    # Then it is still one soft bounce
    assert handle(store, message, limit=3) == "soft bounce 1 of 3"


@pytest.mark.parametrize(
    ("case", "recorded"),
    [
        ("permanent_bounce", ["mail_bounced"]),
        ("complaint", ["mail_complained", "consent_changed"]),
        ("delivery", ["mail_delivered"]),
    ],
)
def test_a_notification_delivered_twice_is_applied_and_recorded_once(
    store, case: str, recorded: list[str]
) -> None:
    # Given SNS delivering the same notification twice, the second a minute later
    clock = make_clock()
    first = handle_ses_event(notification(case), store=store, clock=clock, soft_bounce_limit=3)
    clock.advance(minutes=1)
    again = handle_ses_event(notification(case), store=store, clock=clock, soft_bounce_limit=3)

    # Then the second changes nothing and records nothing: one event each on the lead's
    # timeline (each counted once by the reports), one consent change
    assert again == f"already applied: {first}"
    assert [e.type for e in store.events] == recorded
    assert len(store.consent_changes) == (1 if case == "complaint" else 0)


def test_the_events_of_a_notification_have_the_same_ids_whenever_it_arrives() -> None:
    # Given the same hard bounce applied to two stores (a first delivery and a later one)
    ids = []
    for minutes in (0, 90):
        store = MemoryMailStore()
        store.add_lead(make_lead(LEAD_ID, "hanako.sato@example.jp"))
        clock = make_clock()
        clock.advance(minutes=minutes)
        handle_ses_event(
            notification("permanent_bounce"), store=store, clock=clock, soft_bounce_limit=3
        )
        ids.append([e.event_id for e in store.events])
    # Then its event has one id (the counters count an event id once)
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_a_delivery_between_transient_bounces_starts_the_count_again(store) -> None:
    # Given a full mailbox, then a delivery, then a full mailbox again (limit two in a row)
    first = copy.deepcopy(notification("transient_bounce"))
    second = copy.deepcopy(first)
    second["bounce"]["feedbackId"] = "010e019a7f3c2a11-aaaa-0099"
    handle(store, first, limit=2)
    handle(store, notification("delivery"), limit=2)
    # Then the second bounce is the first in a row, and the address stays mailable
    assert handle(store, second, limit=2) == "soft bounce 1 of 2"
    assert LEAD_ID not in store.suppressions


def test_a_complaint_suppresses_and_opts_out_of_everything(store) -> None:
    outcome = handle(store, notification("complaint"))
    assert outcome == "suppressed and opted out: complaint"
    assert store.suppressions[LEAD_ID].reason == "complaint"
    [(evidence, method)] = store.consent_changes
    assert (evidence.topic, evidence.status, method) == ("all", "opted_out", "complaint")
    assert store.topics[LEAD_ID]["all"] == "opted_out"
    complained = store.events_of("mail_complained")
    assert complained[0].properties["feedback_type"] == "abuse"
    assert may_send(store) is SkipReason.SUPPRESSED
    assert may_send(store, "transactional") is SkipReason.SUPPRESSED


def test_a_delivery_is_recorded_and_suppresses_nothing(store) -> None:
    assert handle(store, notification("delivery")) == "delivery recorded"
    [event] = store.events
    assert event.type == "mail_delivered"
    assert event.properties["message_id"] == MESSAGE_ID
    assert store.suppressions == {}
    assert may_send(store) is None


@pytest.mark.parametrize("case", ["permanent_bounce", "complaint", "delivery"])
def test_mail_without_a_lead_tag_is_ignored(store, case) -> None:
    # Given SES feedback for a mail Tsunagu did not send (no lead_id tag)
    message = copy.deepcopy(notification(case))
    del message["mail"]["tags"]["lead_id"]
    # Then nothing is changed or recorded
    assert handle(store, message).startswith("ignored")
    assert store.events == [] and store.suppressions == {} and store.consent_changes == []


def test_mail_to_a_lead_that_no_longer_exists_is_ignored(store) -> None:
    message = copy.deepcopy(notification("permanent_bounce"))
    message["mail"]["tags"]["lead_id"] = ["lead_gone"]
    assert handle(store, message).startswith("ignored")
    assert store.suppressions == {}


def test_an_sns_notification_form_works_like_event_publishing(store) -> None:
    # Given the older notification format (notificationType instead of eventType)
    message = copy.deepcopy(notification("permanent_bounce"))
    message["notificationType"] = message.pop("eventType")
    assert handle(store, message) == "suppressed: hard bounce"


def test_other_event_types_are_ignored(store) -> None:
    message = copy.deepcopy(notification("delivery"))
    message["eventType"] = "Open"
    assert handle(store, message) == "ignored: Open event"
    assert store.events == []


def about(message: dict[str, Any], address: str) -> dict[str, Any]:
    """The notification as SES reports it for mail to ``address``."""
    changed = copy.deepcopy(message)
    changed["mail"]["destination"] = [address]
    for kind, listed in (("bounce", "bouncedRecipients"), ("complaint", "complainedRecipients")):
        for recipient in changed.get(kind, {}).get(listed, []):
            recipient["emailAddress"] = address
    if "delivery" in changed:
        changed["delivery"]["recipients"] = [address]
    return changed


@pytest.mark.parametrize("case", ["permanent_bounce", "transient_bounce", "complaint", "delivery"])
def test_feedback_on_another_address_than_the_leads_changes_nothing(store, case: str) -> None:
    # Given SES reporting on a mail tagged with the lead's id but sent to someone else
    message = about(notification(case), "sales.rep@example.com")

    # Then the lead is left alone, and the outcome (logged) says why
    outcome = handle(store, message)
    assert outcome.startswith("ignored: ") and "not" in outcome and "lead's" in outcome
    assert store.events == [] and store.suppressions == {} and store.consent_changes == []
    assert may_send(store) is None


def test_the_leads_address_as_ses_writes_it_is_the_leads(store) -> None:
    # Given a bounce that names the lead's address in other letter case, with a display name
    message = about(notification("permanent_bounce"), '"Hanako" <Hanako.Sato@EXAMPLE.jp>')

    # Then it is the lead's bounce
    assert handle(store, message) == "suppressed: hard bounce"
    assert store.suppressions[LEAD_ID].reason == "hard_bounce"


def test_a_bounce_naming_no_recipient_is_not_taken_as_the_leads(store) -> None:
    message = copy.deepcopy(notification("permanent_bounce"))
    message["bounce"]["bouncedRecipients"] = []
    message["mail"]["destination"] = []

    assert handle(store, message).startswith("ignored: ")
    assert store.suppressions == {}


def owners_notice(store: MemoryMailStore) -> dict[str, Any]:
    """The owner's notice about the lead as notify_owner sends it (its tags), sent to the lead's
    own address: a rep who filed the lead under their own mailbox, say."""
    messenger = MemoryMessenger()
    notify_owner(
        store.leads[LEAD_ID],
        "hanako.sato@example.jp",
        Notification("New MQL", "text", "<p>html</p>"),
        key="exec:notify",
        sender="news@example.com",
        production=True,
        allowlist=frozenset(),
        ledger=store,
        messenger=messenger,
        now=make_clock().now(),
    )
    (mail,) = messenger.sent
    message = copy.deepcopy(notification("delivery"))
    message["mail"]["tags"] = {name: [value] for name, value in mail.tags.items()}
    return message


def test_feedback_on_the_owners_notice_is_never_the_leads(store) -> None:
    # Given a full mailbox counted once for the lead (limit two in a row)
    handle(store, notification("transient_bounce"), limit=2)
    delivered = owners_notice(store)
    bounced = copy.deepcopy(notification("permanent_bounce"))
    bounced["mail"]["tags"] = delivered["mail"]["tags"]

    # When the owner's notice is delivered, and bounces
    outcomes = [handle(store, delivered, limit=2), handle(store, bounced, limit=2)]

    # Then neither is the lead's: the lead's run of soft bounces goes on, nothing is suppressed
    assert all("owner's notice" in outcome for outcome in outcomes), outcomes
    assert LEAD_ID not in store.suppressions
    second = copy.deepcopy(notification("transient_bounce"))
    second["bounce"]["feedbackId"] = "010e019a7f3c2a11-aaaa-0098"
    assert handle(store, second, limit=2) == "suppressed: 2 soft bounces"
