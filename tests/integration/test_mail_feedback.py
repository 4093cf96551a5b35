"""ses_feedback fed with events/ses_feedback/*.json (SES events through SNS) under moto, tagged
with a mail send_email really sent: bounces and complaints suppress, a delivery is recorded, and
the next send_email honours the suppression."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import AwsStack, load_event
from tests.integration.mail_helpers import (
    LEAD_EMAIL,
    capture,
    consent_state,
    feedback,
    lead_events,
    prepare_mail,
    save_template,
    send,
    sent_messages,
    snapshot,
    suppression,
)
from tests.support.admin import event
from tsunagu.api import admin
from tsunagu.commands.access import Role


class Sent:
    def __init__(self, stack: AwsStack, lead_id: str, message_id: str) -> None:
        self.stack = stack
        self.lead_id = lead_id
        self.message_id = message_id

    def feedback(self, case: str, feedback_id: str | None = None) -> list[str]:
        return feedback(self.stack, case, self.lead_id, self.message_id, feedback_id)


@pytest.fixture
def sent(aws: AwsStack) -> Sent:
    """Given a consenting lead who was sent the welcome mail."""
    prepare_mail(aws)
    save_template(aws)
    lead_id = capture(aws)
    result = send(aws, lead_id)
    assert result["status"] == "sent"
    return Sent(aws, lead_id, result["message_id"])


def test_a_permanent_bounce_suppresses_the_address(sent: Sent) -> None:
    # When SES reports a hard bounce for the mail
    outcomes = sent.feedback("permanent_bounce")

    # Then the address is suppressed, with the bounce on the lead's record
    assert outcomes == ["suppressed: hard bounce"]
    assert suppression(sent.stack, sent.lead_id) == "hard_bounce"
    (bounced,) = lead_events(sent.stack, sent.lead_id, "mail_bounced")
    assert bounced["properties"]["message_id"] == sent.message_id
    assert bounced["properties"]["bounce_type"] == "Permanent"
    assert bounced["properties"]["bounce_subtype"] == "General"

    # And the next send is skipped as bounced, and reaches no one
    result = send(sent.stack, sent.lead_id)
    assert (result["status"], result["reason"]) == ("skipped", "bounced")
    assert len(sent_messages()) == 1


def test_a_permanent_bounce_delivered_twice_suppresses_and_is_recorded_once(sent: Sent) -> None:
    # When SNS delivers the same hard bounce twice
    outcomes = sent.feedback("permanent_bounce") + sent.feedback("permanent_bounce")

    # Then the second is known as applied: one bounce on the lead's record
    assert outcomes == ["suppressed: hard bounce", "already applied: suppressed: hard bounce"]
    assert suppression(sent.stack, sent.lead_id) == "hard_bounce"
    assert len(lead_events(sent.stack, sent.lead_id, "mail_bounced")) == 1
    assert send(sent.stack, sent.lead_id)["reason"] == "bounced"


def test_a_complaint_delivered_twice_opts_out_once(sent: Sent) -> None:
    # When SNS delivers the same complaint twice
    outcomes = sent.feedback("complaint") + sent.feedback("complaint")

    # Then one complaint and one opt-out are on the lead's record
    assert outcomes[1] == "already applied: suppressed and opted out: complaint"
    assert len(lead_events(sent.stack, sent.lead_id, "mail_complained")) == 1
    assert len(lead_events(sent.stack, sent.lead_id, "consent_changed")) == 1
    assert suppression(sent.stack, sent.lead_id) == "complaint"


def test_a_complaint_suppresses_and_opts_out(sent: Sent) -> None:
    # When the person marks the mail as spam
    outcomes = sent.feedback("complaint")

    # Then the address is suppressed and the lead opted out of all marketing mail
    assert outcomes == ["suppressed and opted out: complaint"]
    assert suppression(sent.stack, sent.lead_id) == "complaint"
    assert consent_state(sent.stack, sent.lead_id)["all"] == "opted_out"
    (complained,) = lead_events(sent.stack, sent.lead_id, "mail_complained")
    assert complained["properties"]["feedback_type"] == "abuse"
    (changed,) = lead_events(sent.stack, sent.lead_id, "consent_changed")
    assert changed["properties"]["method"] == "complaint"

    # And nothing more is sent, transactional mail included
    result = send(sent.stack, sent.lead_id)
    assert (result["status"], result["reason"]) == ("skipped", "suppressed")
    save_template(sent.stack, template_id="receipt", kind="transactional")
    receipt = send(sent.stack, sent.lead_id, template_id="receipt")
    assert (receipt["status"], receipt["reason"]) == ("skipped", "suppressed")
    assert len(sent_messages()) == 1


def lift(stack: AwsStack, role: Role) -> tuple[int, Any]:
    """An admin API DELETE of the lead's suppression, by ``role``."""
    request = event(
        "DELETE", f"/admin/leads/{LEAD_EMAIL}/suppression", role=role, body={"note": "x"}
    )
    response = admin.handle(request, stack.settings())
    return response["statusCode"], json.loads(response.get("body") or "null")


@pytest.fixture
def complained_after_another_mail(sent: Sent) -> Sent:
    """Given a lead sent two mails, who marked the first as spam: the second, on its way
    meanwhile, may still bounce."""
    second = send(sent.stack, sent.lead_id)
    assert second["status"] == "sent"
    assert sent.feedback("complaint") == ["suppressed and opted out: complaint"]
    return Sent(sent.stack, sent.lead_id, second["message_id"])


def test_a_late_hard_bounce_leaves_a_complaint_in_place(
    complained_after_another_mail: Sent,
) -> None:
    # (found by an audit: the bounce replaced the complaint, an admin could then lift it, and
    # transactional mail reached the person who had marked ours as spam)
    late = complained_after_another_mail

    # When the second mail hard-bounces after the complaint (and SNS delivers that twice)
    outcomes = late.feedback("permanent_bounce") + late.feedback("permanent_bounce")

    # Then the bounce is recorded once, and the complaint stays the reason
    kept = "recorded; not suppressed for hard_bounce: a suppression as strong or stronger stands"
    assert outcomes == [kept, "already applied: " + kept]
    assert suppression(late.stack, late.lead_id) == "complaint"
    (bounced,) = lead_events(late.stack, late.lead_id, "mail_bounced")
    assert bounced["properties"]["message_id"] == late.message_id

    # And no one lifts it, nor does a transactional mail reach the address
    status, body = lift(late.stack, Role.ADMIN)
    assert status == 403 and "complained" in body["message"], body
    save_template(late.stack, template_id="receipt", kind="transactional")
    receipt = send(late.stack, late.lead_id, template_id="receipt")
    assert (receipt["status"], receipt["reason"]) == ("skipped", "suppressed")
    assert len(sent_messages()) == 2


def test_a_late_run_of_soft_bounces_leaves_a_complaint_in_place(
    complained_after_another_mail: Sent,
) -> None:
    late = complained_after_another_mail

    outcomes = [late.feedback("transient_bounce", f"fb-{n}")[0] for n in (1, 2, 3)]

    assert outcomes[-1] == (
        "recorded; not suppressed for soft_bounce_limit: a suppression as strong or stronger stands"
    )
    assert suppression(late.stack, late.lead_id) == "complaint"
    assert len(lead_events(late.stack, late.lead_id, "mail_bounced")) == 3
    assert lift(late.stack, Role.ADMIN)[0] == 403


def test_a_hard_bounce_replaces_a_manual_suppression(sent: Sent) -> None:
    # Given a lead a marketer suppressed by hand
    request = event("POST", f"/admin/leads/{LEAD_EMAIL}/suppression", role=Role.MARKETER, body={})
    assert admin.handle(request, sent.stack.settings())["statusCode"] == 200

    # When the mail sent before hard-bounces
    assert sent.feedback("permanent_bounce") == ["suppressed: hard bounce"]

    # Then the stronger reason is the suppression's: an admin's to lift, not a marketer's
    assert suppression(sent.stack, sent.lead_id) == "hard_bounce"
    assert lift(sent.stack, Role.MARKETER)[0] == 403
    assert lift(sent.stack, Role.ADMIN)[0] == 200


def test_transient_bounces_suppress_only_after_three(sent: Sent) -> None:
    # When the mailbox is full twice (and SNS delivers the second notification twice)
    assert sent.feedback("transient_bounce", "fb-1") == ["soft bounce 1 of 3"]
    assert sent.feedback("transient_bounce", "fb-2") == ["soft bounce 2 of 3"]
    assert sent.feedback("transient_bounce", "fb-2") == ["already applied: soft bounce 2 of 3"]

    # Then the address is not suppressed yet, and mail still goes out
    assert suppression(sent.stack, sent.lead_id) is None
    assert send(sent.stack, sent.lead_id)["status"] == "sent"

    # When it bounces a third time
    assert sent.feedback("transient_bounce", "fb-3") == ["suppressed: 3 soft bounces"]

    # Then it is suppressed, and the next send is skipped as bounced
    assert suppression(sent.stack, sent.lead_id) == "soft_bounce_limit"
    assert len(lead_events(sent.stack, sent.lead_id, "mail_bounced")) == 3
    result = send(sent.stack, sent.lead_id)
    assert (result["status"], result["reason"]) == ("skipped", "bounced")
    assert len(sent_messages()) == 2


def test_a_delivery_is_recorded(sent: Sent) -> None:
    outcomes = sent.feedback("delivery")

    assert outcomes == ["delivery recorded"]
    (delivered,) = lead_events(sent.stack, sent.lead_id, "mail_delivered")
    assert delivered["properties"]["message_id"] == sent.message_id
    assert delivered["properties"]["ses_message_id"].startswith("010e019a")
    assert suppression(sent.stack, sent.lead_id) is None
    assert send(sent.stack, sent.lead_id)["status"] == "sent"


@pytest.mark.parametrize("case", ["permanent_bounce", "transient_bounce", "complaint", "delivery"])
def test_an_event_for_a_mail_tsunagu_did_not_send_changes_nothing(sent: Sent, case: str) -> None:
    # The sample events name a lead that does not exist here
    before = snapshot(sent.stack)

    result = sent.stack.function("ses_feedback").invoke(load_event("ses_feedback", case))

    assert result == {"outcomes": ["ignored: not a Tsunagu lead's mail"]}
    assert snapshot(sent.stack) == before


OWNER = "sales.rep@example.com"


def about_the_owners_notice(case: str, lead_id: str) -> dict[str, Any]:
    """events/ses_feedback/<case>.json as SES reports on the notice that told the lead's owner
    about the lead: tagged with the lead's id (the notice is about them), sent to the owner."""
    event = load_event("ses_feedback", case)
    for record in event["Records"]:
        notification = json.loads(record["Sns"]["Message"])
        mail = notification["mail"]
        mail["destination"] = mail["commonHeaders"]["to"] = [OWNER]
        mail["tags"].update(
            lead_id=[lead_id], message_id=["msg_01JDOWNER000000000000000001"], topic=["sales"]
        )
        detail = notification.get("bounce") or notification.get("complaint") or {}
        for recipient in detail.get("bouncedRecipients", []) + detail.get(
            "complainedRecipients", []
        ):
            recipient["emailAddress"] = OWNER
        record["Sns"]["Message"] = json.dumps(notification, ensure_ascii=False)
    return event


def test_the_owners_mailbox_bouncing_does_not_suppress_the_lead(aws: AwsStack) -> None:
    # Given a consenting lead whose owner (a rep who has since left) was mailed about them
    prepare_mail(aws)
    lead_id = capture(aws)
    before = snapshot(aws)

    # When SES reports the owner's address as a permanent bounce
    result = aws.function("ses_feedback").invoke(
        about_the_owners_notice("permanent_bounce", lead_id)
    )

    # Then it is logged as another address's, and the lead, whose own address never bounced,
    # can still be mailed: nothing was written
    assert result == {"outcomes": ["ignored: Bounce of another address than the lead's"]}
    assert suppression(aws, lead_id) is None
    assert snapshot(aws) == before
    save_template(aws)
    assert send(aws, lead_id)["status"] == "sent"


def test_the_owner_marking_the_notice_as_spam_does_not_unsubscribe_the_lead(
    aws: AwsStack,
) -> None:
    # Given a consenting lead
    prepare_mail(aws)
    lead_id = capture(aws)

    # When the owner marks the notice about the lead as spam
    aws.function("ses_feedback").invoke(about_the_owners_notice("complaint", lead_id))

    # Then the lead is neither suppressed nor opted out, and has no complaint on their record
    assert suppression(aws, lead_id) is None
    assert consent_state(aws, lead_id) == {"marketing": "opted_in"}
    assert lead_events(aws, lead_id, "mail_complained") == []


@pytest.mark.parametrize("case", ["delivery", "permanent_bounce", "complaint"])
def test_a_notification_two_invocations_apply_at_once_is_applied_once(
    sent: Sent, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SNS's notification applied once
    (first,) = sent.feedback(case)

    # When SNS hands the same notification to a second invocation that read before the first
    # wrote (so it did not see it applied; its write is the one that learns it)
    from tsunagu.store.mail import MailRepository

    monkeypatch.setattr(MailRepository, "applied_feedback", lambda self, key: None)
    second = sent.feedback(case)

    # Then that write is refused as applied already and changes nothing: a delivery, whose
    # write also resets the bounce count (a delete, which a transaction sends before its puts),
    # is known by its key's condition like the rest
    assert second == [f"already applied: {first}"]
    assert len(lead_events(sent.stack, sent.lead_id, f"mail_{EVENT_BY_CASE[case]}")) == 1


EVENT_BY_CASE = {"delivery": "delivered", "permanent_bounce": "bounced", "complaint": "complained"}
