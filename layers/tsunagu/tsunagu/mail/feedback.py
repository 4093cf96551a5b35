"""What SES tells about sent mail (through the configuration set's SNS topic).

A permanent bounce suppresses the address; transient bounces suppress it after a configured
count; a complaint suppresses and opts the lead out of all marketing mail; a delivery is
recorded. SES's own account suppression list stays a second net, not the source of truth.

SNS delivers at least once, and Lambda retries a failed invocation: the same notification can
arrive twice, minutes apart. Each is applied once. It is named by what SES says about it (the
feedback id of a bounce or complaint; a delivery, which has none, by its mail and recipients),
its events take ids made from that name, and what it changes is stored in one write with a
record of the name that fails if the name is there already. So a repeat adds no second event to
the lead's timeline or the report counters, and suppresses or opts out nothing again (not even
after an operator lifted the suppression).

The mail's ``lead_id`` tag says which lead a mail is about, not who received it: the notice that
tells a lead's owner (a sales rep) about the lead carries it too. So feedback changes the lead
only when SES names the lead's own address among the recipients it reports on, and never for
mail tagged ``recipient=owner``: a rep's full mailbox or spam button is not the lead's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.leads.email import EmailAddress, InvalidEmail, normalise_email
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.mail.consent import ALL_TOPICS

REPEAT = "already applied: "
"""The outcome of a notification applied before begins so (the first time's outcome follows)."""

RECIPIENT_TAG = "recipient"
OWNER_RECIPIENT = "owner"
"""The ``recipient`` tag of mail about a lead that goes to the lead's owner, not to the lead."""


def colleague_mail_tags(lead_id: str, message_id: str) -> dict[str, str]:
    """The SES tags of a mail about a lead sent to a colleague (its owner's notice, a forwarded
    reply): SES's feedback on that mailbox - a bounce, a complaint - is then kept off the lead."""
    return {
        "lead_id": lead_id,
        "message_id": message_id,
        "topic": "sales",
        RECIPIENT_TAG: OWNER_RECIPIENT,
    }


@dataclass(frozen=True)
class Feedback:
    """What one notification changes, stored whole or not at all, and once per ``key``."""

    key: str
    outcome: str
    lead_id: str
    email: str
    events: Sequence[LeadEvent]
    suppression: str | None = None
    """The reason the address is suppressed for, if it is."""
    opt_out: ConsentEvidence | None = None
    """A complaint's opt-out of all marketing mail (method ``complaint``)."""
    reset_soft_bounces: bool = False
    """A delivery: the transient bounces counted so far were not in a row."""

    def under_stronger_suppression(self) -> Feedback:
        """This feedback where the address is suppressed already for a stronger reason (a late
        bounce of a mail sent before the person complained): its events are recorded, and the
        suppression that stands keeps its reason - a bounce's would let an admin lift it."""
        return dataclasses.replace(
            self,
            outcome=f"recorded; not suppressed for {self.suppression}: a suppression as strong"
            " or stronger stands",
            suppression=None,
        )


class FeedbackStore(Protocol):
    def get_lead(self, lead_id: str) -> Lead | None: ...

    def count_soft_bounce(self, lead_id: str, email: str, at: str, feedback_id: str) -> int:
        """Count a transient bounce once per SES feedback id; returns the count so far."""
        ...

    def applied_feedback(self, key: str) -> str | None:
        """The outcome of the notification ``key`` if it was applied, else None."""
        ...

    def apply_feedback(self, feedback: Feedback, at: str) -> str | None:
        """Store what the feedback changes with its key, in one write, and return the outcome
        stored; None (and nothing written) when its key was applied already. A suppression
        never replaces one for a stronger reason (``consent.replaced_by``): the feedback is
        then stored as ``feedback.under_stronger_suppression()``, with that outcome."""
        ...


def _tags(mail: Mapping[str, Any]) -> dict[str, str]:
    return {name: values[0] for name, values in (mail.get("tags") or {}).items() if values}


def _detail(kind: str, notification: Mapping[str, Any]) -> Mapping[str, Any]:
    detail = notification.get(kind.lower())
    return detail if isinstance(detail, Mapping) else {}


def _listed(detail: Mapping[str, Any]) -> list[str]:
    """The recipients a bounce, complaint or delivery is about, as SES lists them."""
    listed = (
        detail.get("recipients")
        or detail.get("bouncedRecipients")
        or detail.get("complainedRecipients")
        or []
    )
    return [str(r.get("emailAddress") if isinstance(r, Mapping) else r) for r in listed]


def notification_key(kind: str, notification: Mapping[str, Any], lead_id: str) -> str:
    """The name of an SES notification, the same each time it arrives: SES's feedback id for a
    bounce or a complaint; otherwise (a delivery) the mail's SES message id, Tsunagu's message id
    and the recipients."""
    detail = _detail(kind, notification)
    feedback_id = detail.get("feedbackId")
    if feedback_id:
        return f"{kind}:{feedback_id}"
    mail = notification.get("mail") or {}
    recipients = sorted(_listed(detail))
    message_id = _tags(mail).get("message_id")
    return f"{kind}:{mail.get('messageId')}:{message_id}:{lead_id}:{','.join(recipients)}"


def _identity(address: str) -> str | None:
    """An address as SES reports it (possibly with a display name), as leads' addresses are
    compared: normalised, case-insensitive; None when it is no address."""
    try:
        return normalise_email(parseaddr(address)[1] or address).identity_key
    except InvalidEmail:
        return None


def reports_on(address: str, kind: str, notification: Mapping[str, Any]) -> bool:
    """Whether SES reports on ``address`` (a lead's, as stored): the recipients the bounce,
    complaint or delivery lists (else the mail's destination) include it. A notification that
    names no recipient is not taken as anyone's."""
    detail = _detail(kind, notification)
    mail = notification.get("mail") or {}
    reported = _listed(detail) or [str(a) for a in mail.get("destination") or ()]
    wanted = EmailAddress(address).identity_key
    return any(_identity(one) == wanted for one in reported)


def _derived_id(prefix: str, key: str, what: str) -> str:
    return f"{prefix}_" + hashlib.sha256(f"{key}\n{what}".encode()).hexdigest()[:26]


def handle_ses_event(
    notification: Mapping[str, Any], *, store: FeedbackStore, clock: Clock, soft_bounce_limit: int
) -> str:
    """Apply one SES event once; returns what was done (for logs and tests)."""
    kind = str(notification.get("eventType") or notification.get("notificationType") or "")
    mail = notification.get("mail") or {}
    tags = _tags(mail)
    lead_id = tags.get("lead_id")
    lead = store.get_lead(lead_id) if lead_id else None
    if lead is None:
        return "ignored: not a Tsunagu lead's mail"
    if kind not in ("Bounce", "Complaint", "Delivery"):
        return f"ignored: {kind or 'unknown'} event"
    # Feedback not about the lead's own mailbox changes nothing, so a repeat is as harmless as
    # the first and needs no record; the outcome (logged) says why it was left alone
    if tags.get(RECIPIENT_TAG) == OWNER_RECIPIENT:
        return f"ignored: {kind} of the owner's notice, not of mail to the lead"
    if not reports_on(lead.email, kind, notification):
        return f"ignored: {kind} of another address than the lead's"
    key = notification_key(kind, notification, lead.lead_id)
    earlier = store.applied_feedback(key)
    if earlier is not None:
        return REPEAT + earlier
    now = clock.now()
    at = isoformat(now)
    message_id = tags.get("message_id")

    def event(kind_name: str, **properties: Any) -> LeadEvent:
        return LeadEvent(
            event_id=_derived_id("ses", key, kind_name),
            type=kind_name,
            occurred_at=at,
            lead_id=lead.lead_id,
            properties={
                "message_id": message_id,
                "ses_message_id": mail.get("messageId"),
                **properties,
            },
        )

    def feedback(outcome: str, *events: LeadEvent, **changes: Any) -> Feedback:
        return Feedback(key, outcome, lead.lead_id, lead.email, events, **changes)

    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        bounce_type = bounce.get("bounceType")
        details = {"bounce_type": bounce_type, "bounce_subtype": bounce.get("bounceSubType")}
        if bounce_type == "Permanent":
            done = feedback(
                "suppressed: hard bounce",
                event("mail_bounced", **details),
                suppression="hard_bounce",
            )
        else:
            # Counted under SES's own feedback id, as bounces counted before were: one
            # counted then and delivered again now is not counted a second time
            counted_as = str(bounce.get("feedbackId") or key)
            count = store.count_soft_bounce(lead.lead_id, lead.email, at, counted_as)
            bounced = event("mail_bounced", soft_bounces=count, **details)
            if count >= soft_bounce_limit:
                done = feedback(
                    f"suppressed: {count} soft bounces", bounced, suppression="soft_bounce_limit"
                )
            else:
                done = feedback(f"soft bounce {count} of {soft_bounce_limit}", bounced)
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        evidence = ConsentEvidence(
            evidence_id=_derived_id("cns", key, "opt_out"),
            lead_id=lead.lead_id,
            email=lead.email,
            topic=ALL_TOPICS,
            status="opted_out",
            at=at,
        )
        done = feedback(
            "suppressed and opted out: complaint",
            event("mail_complained", feedback_type=complaint.get("complaintFeedbackType")),
            event("consent_changed", topic=ALL_TOPICS, status="opted_out", method="complaint"),
            suppression="complaint",
            opt_out=evidence,
        )
    else:
        # "after N transient bounces" means in a row: a delivery starts the count again
        done = feedback("delivery recorded", event("mail_delivered"), reset_soft_bounces=True)
    applied = store.apply_feedback(done, at)
    if applied is None:
        # The same notification, applied meanwhile (SNS delivered it to two invocations)
        return REPEAT + (store.applied_feedback(key) or done.outcome)
    return applied
