"""What SES tells about sent mail (through the configuration set's SNS topic).

A permanent bounce suppresses the address; transient bounces suppress it after a configured
count; a complaint suppresses and opts the lead out of all marketing mail; a delivery is
recorded. SES's own account suppression list stays a second net, not the source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.ids import new_id
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.mail.consent import ALL_TOPICS


class FeedbackStore(Protocol):
    def get_lead(self, lead_id: str) -> Lead | None: ...

    def suppress(
        self, lead_id: str, email: str, reason: str, at: str, event: LeadEvent
    ) -> None: ...

    def count_soft_bounce(self, lead_id: str, email: str, at: str, feedback_id: str) -> int:
        """Count a transient bounce once per SES feedback id; returns the count so far."""
        ...

    def change_consent(self, evidence: ConsentEvidence, method: str, event: LeadEvent) -> None: ...

    def reset_soft_bounces(self, lead_id: str) -> None: ...

    def put_event(self, event: LeadEvent) -> None: ...


def _tags(mail: Mapping[str, Any]) -> dict[str, str]:
    return {name: values[0] for name, values in (mail.get("tags") or {}).items() if values}


def handle_ses_event(
    notification: Mapping[str, Any], *, store: FeedbackStore, clock: Clock, soft_bounce_limit: int
) -> str:
    """Apply one SES event; returns what was done (for logs and tests)."""
    kind = str(notification.get("eventType") or notification.get("notificationType") or "")
    mail = notification.get("mail") or {}
    tags = _tags(mail)
    lead_id = tags.get("lead_id")
    lead = store.get_lead(lead_id) if lead_id else None
    if lead is None:
        return "ignored: not a Tsunagu lead's mail"
    now = clock.now()
    at = isoformat(now)
    message_id = tags.get("message_id")

    def event(kind_name: str, **properties: Any) -> LeadEvent:
        return LeadEvent(
            event_id=new_id("evt", now),
            type=kind_name,
            occurred_at=at,
            lead_id=lead.lead_id,
            properties={
                "message_id": message_id,
                "ses_message_id": mail.get("messageId"),
                **properties,
            },
        )

    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        bounce_type = bounce.get("bounceType")
        details = {"bounce_type": bounce_type, "bounce_subtype": bounce.get("bounceSubType")}
        if bounce_type == "Permanent":
            store.suppress(
                lead.lead_id, lead.email, "hard_bounce", at, event("mail_bounced", **details)
            )
            return "suppressed: hard bounce"
        feedback_id = str(bounce.get("feedbackId") or f"{mail.get('messageId')}:{at}")
        count = store.count_soft_bounce(lead.lead_id, lead.email, at, feedback_id)
        if count >= soft_bounce_limit:
            store.suppress(
                lead.lead_id,
                lead.email,
                "soft_bounce_limit",
                at,
                event("mail_bounced", soft_bounces=count, **details),
            )
            return f"suppressed: {count} soft bounces"
        store.put_event(event("mail_bounced", soft_bounces=count, **details))
        return f"soft bounce {count} of {soft_bounce_limit}"
    if kind == "Complaint":
        complaint = notification.get("complaint") or {}
        store.suppress(
            lead.lead_id,
            lead.email,
            "complaint",
            at,
            event("mail_complained", feedback_type=complaint.get("complaintFeedbackType")),
        )
        evidence = ConsentEvidence(
            evidence_id=new_id("cns", now),
            lead_id=lead.lead_id,
            email=lead.email,
            topic=ALL_TOPICS,
            status="opted_out",
            at=at,
        )
        store.change_consent(
            evidence,
            "complaint",
            event("consent_changed", topic=ALL_TOPICS, status="opted_out", method="complaint"),
        )
        return "suppressed and opted out: complaint"
    if kind == "Delivery":
        store.reset_soft_bounces(lead.lead_id)  # "after N transient bounces" means in a row
        store.put_event(event("mail_delivered"))
        return "delivery recorded"
    return f"ignored: {kind or 'unknown'} event"
