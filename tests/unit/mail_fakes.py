"""In-memory fakes of the mail ports, with the semantics of ``tsunagu.store.mail``.

One ``MemoryMailStore`` plays every port the mail domain talks to (``MailStore``,
``PreferenceStore``, ``FeedbackStore``), so a test can send, unsubscribe and bounce against the
same consent and suppression state, just as the DynamoDB repository does.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tsunagu.clock import FixedClock
from tsunagu.errors import ConcurrentUpdate
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.mail.consent import (
    ALL_TOPICS,
    KEPT_UNSUBSCRIBED,
    MARKETING,
    ConsentView,
    PlannedOn,
    Recipient,
    Suppression,
    SuppressionEntry,
    TopicRecord,
    UnsubscribeLifted,
    lift_unsubscribe_from_all,
    replaced_by,
)
from tsunagu.mail.exclusions import ExclusionList
from tsunagu.mail.feedback import Feedback
from tsunagu.mail.send import MailPolicy, MessengerError, OutgoingMail
from tsunagu.mail.templates import MailTemplate
from tsunagu.tracking.tokens import TokenKind, TokenSigner, TrackingToken

AT = "2026-11-20T09:00:00.000Z"
API_URL = "https://mail.example.com"
SIGNING_KEY = b"k" * 32


def make_clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))


def make_signer() -> TokenSigner:
    return TokenSigner({"k1": SIGNING_KEY}, "k1")


def make_lead(lead_id: str = "lead_1", email: str = "hanako@example.com", **fields: str) -> Lead:
    return Lead(
        lead_id=lead_id,
        email=email,
        fields={name: FieldValue(value, Channel.WEB_FORM, AT) for name, value in fields.items()},
        sources=["web_form"],
        visitor_ids=set(),
        stage="lead",
        created_at=AT,
        updated_at=AT,
    )


def make_template(**overrides: Any) -> MailTemplate:
    values: dict[str, Any] = {
        "template_id": "welcome",
        "name": "Welcome",
        "subject": "{{ lead.company }} 様へのご案内",
        "html": (
            "<html><body><p>{{ lead.name }} 様</p>"
            '<p><a href="https://www.example.com/seminar">セミナー</a></p></body></html>'
        ),
        "from_address": "news@example.com",
        "from_name": "Example Corp",
        "defaults": {"name": "ご担当者", "company": "貴社"},
    }
    return MailTemplate(**{**values, **overrides})


def make_policy(**overrides: Any) -> MailPolicy:
    values: dict[str, Any] = {
        "production": True,
        "allowlist": frozenset(),
        "api_url": API_URL,
        "verified_domains": frozenset({"example.com", "sales.example.co.jp"}),
    }
    return MailPolicy(**{**values, **overrides})


def unsubscribe_token(
    signer: TokenSigner, lead_id: str = "lead_1", topic: str | None = MARKETING
) -> str:
    return signer.sign(TrackingToken(TokenKind.UNSUBSCRIBE, "msg_1", lead_id, 0, topic=topic))


def token_in(url: str, path: str) -> str:
    """The token of ``<api>/<path>/<token>`` (a trailing ``.gif`` removed)."""
    match = re.fullmatch(re.escape(f"{API_URL}/{path}/") + r"([A-Za-z0-9_.-]+?)(\.gif)?", url)
    assert match is not None, url
    return match.group(1)


class MemoryMailStore:
    """Leads, consent, suppression, templates, send records and events, kept in dicts."""

    def __init__(self) -> None:
        self.leads: dict[str, Lead] = {}
        self.templates: dict[str, list[MailTemplate]] = {}
        self.topics: dict[str, dict[str, str]] = {}
        self.topics_at: dict[str, dict[str, str]] = {}
        """lead id -> topic -> when its state was set."""
        self.topics_evidence: dict[str, dict[str, str | None]] = {}
        """lead id -> topic -> the evidence its state rests on (None when set up by a test)."""
        self.pending: dict[str, list[str]] = {}
        self.suppressions: dict[str, Suppression] = {}
        self.soft_bounces: dict[str, set[str]] = {}
        self.sends: dict[str, dict[str, Any]] = {}
        """send key -> {"status": ..., "response": ...}, like the idempotency table."""
        self.events: list[LeadEvent] = []
        self.consent_changes: list[tuple[ConsentEvidence, str]] = []
        self.feedback_applied: dict[str, str] = {}
        """SES notification key -> its outcome, like the idempotency table's records."""
        self.exclusion_list = ExclusionList()

    # ---------------------------------------------------------------- test set-up
    def add_lead(self, lead: Lead) -> Lead:
        self.leads[lead.lead_id] = lead
        return lead

    def add_template(self, template: MailTemplate) -> MailTemplate:
        versions = self.templates.setdefault(template.template_id, [])
        stored = template.model_copy(update={"version": len(versions) + 1})
        versions.append(stored)
        return stored

    def set_consent(
        self, lead_id: str, topic: str, status: str, at: str = AT, evidence: str | None = None
    ) -> None:
        self.topics.setdefault(lead_id, {})[topic] = status
        self.topics_at.setdefault(lead_id, {})[topic] = at
        self.topics_evidence.setdefault(lead_id, {})[topic] = evidence

    def events_of(self, kind: str) -> list[LeadEvent]:
        return [event for event in self.events if event.type == kind]

    # ---------------------------------------------------------------- MailStore
    def claim_send(
        self, key: str, message_id: str, at: str, request_hash: str | None = None
    ) -> dict[str, Any] | None:
        # The repository's condition: the key does not exist, or its last attempt failed.
        existing = self.sends.get(key)
        if existing is not None and existing["status"] != "failed":
            response = dict(existing["response"])
            if existing.get("request_hash") is not None:
                response["request_hash"] = existing["request_hash"]
            return response
        response = {"status": "sending", "message_id": message_id}
        if request_hash is not None:
            response["request_hash"] = request_hash
        self.sends[key] = {"status": "sending", "request_hash": request_hash, "response": response}
        return None

    def template(self, template_id: str, version: int | None) -> MailTemplate | None:
        versions = self.templates.get(template_id) or []
        if version is None:
            return versions[-1] if versions else None
        return next((t for t in versions if t.version == version), None)

    def recipient(self, lead_id: str, topic: str) -> Recipient:
        lead = self.leads.get(lead_id)
        wanted = {topic, MARKETING, ALL_TOPICS}
        topics = {t: s for t, s in self.topics.get(lead_id, {}).items() if t in wanted}
        return Recipient(
            replace(lead) if lead else None, ConsentView(topics, self.suppressions.get(lead_id))
        )

    def exclusions(self) -> ExclusionList:
        return self.exclusion_list

    def finish_send(self, key: str, status: str, record: dict[str, Any], event: LeadEvent) -> None:
        claim = self.sends[key]
        self.sends[key] = {**claim, "status": status, "response": dict(record)}
        self.events.append(event)

    # ---------------------------------------------------------------- PreferenceStore
    def get_lead(self, lead_id: str) -> Lead | None:
        lead = self.leads.get(lead_id)
        return replace(lead) if lead else None

    def consent_state(self, lead_id: str) -> dict[str, str]:
        return dict(self.topics.get(lead_id, {}))

    def pending_topics(self, lead_id: str) -> list[str]:
        return list(self.pending.get(lead_id, []))

    def topic_records(self, lead_id: str) -> dict[str, TopicRecord]:
        at = self.topics_at.get(lead_id, {})
        evidence = self.topics_evidence.get(lead_id, {})
        return {
            topic: TopicRecord(status, at.get(topic, AT), evidence.get(topic))
            for topic, status in self.topics.get(lead_id, {}).items()
        }

    def change_consent(self, evidence: ConsentEvidence, method: str, event: LeadEvent) -> None:
        self.consent_changes.append((evidence, method))
        self._consent_items(evidence)
        if method == "double_opt_in" and evidence.topic in self.pending.get(evidence.lead_id, []):
            self.pending[evidence.lead_id].remove(evidence.topic)
        self.events.append(event)

    def change_consents(
        self,
        changes: Any,
        lifted: UnsubscribeLifted | None = None,
        planned_on: PlannedOn | None = None,
    ) -> None:
        if planned_on:
            # Like the repository: refused whole unless each record is still the one read
            records = self.topic_records(changes[0][0].lead_id)
            if any(records.get(topic) != record for topic, record in planned_on.items()):
                raise ConcurrentUpdate("the consent changed meanwhile; nothing was changed")
        for evidence, method, event in changes:
            self.change_consent(evidence, method, event)
        if lifted is not None:
            self._lift(changes[0][0].lead_id, lifted)

    def record_form_consent(self, evidence: ConsentEvidence, event: LeadEvent) -> None:
        """What LeadRepository.commit_capture writes for a ticked consent box: the topic's state
        (or a pending record), and for a fresh opt-in the end of an earlier "all" opt-out, the
        topics opted in before it kept out (lift_unsubscribe_from_all)."""
        lifted = None
        if evidence.status == "opted_in":
            lifted = lift_unsubscribe_from_all(
                self.topic_records(evidence.lead_id),
                {evidence.topic},
                lead_id=evidence.lead_id,
                email=evidence.email,
                at=evidence.at,
                new_evidence_id=lambda: f"cns_kept_{len(self.consent_changes)}",
            )
        self.consent_changes.append((evidence, "form"))
        self._consent_items(evidence)
        if lifted is not None:
            self._lift(evidence.lead_id, lifted)
        self.events.append(event)

    def _lift(self, lead_id: str, lifted: UnsubscribeLifted) -> None:
        self.topics[lead_id].pop(ALL_TOPICS, None)
        for kept in lifted.kept_out:
            self.consent_changes.append((kept.evidence, KEPT_UNSUBSCRIBED))
            self._consent_items(kept.evidence)

    def _consent_items(self, evidence: ConsentEvidence) -> None:
        if evidence.status == "pending":
            self.pending.setdefault(evidence.lead_id, []).append(evidence.topic)
        else:
            self.set_consent(
                evidence.lead_id, evidence.topic, evidence.status, evidence.at,
                evidence.evidence_id,
            )  # fmt: skip

    # ---------------------------------------------------------------- FeedbackStore
    def suppress(
        self, lead_id: str, email: str, reason: str, at: str, event: LeadEvent
    ) -> SuppressionEntry | None:
        # Like the repository: never in place of a suppression as strong or stronger
        standing = self.suppressions.get(lead_id)
        if standing is not None and standing.reason not in replaced_by(reason):
            return SuppressionEntry(lead_id, email, standing.reason, standing.at)
        self.suppressions[lead_id] = Suppression(reason, at)
        self.events.append(event)
        return None

    def applied_feedback(self, key: str) -> str | None:
        return self.feedback_applied.get(key)

    def apply_feedback(self, feedback: Feedback, at: str) -> str | None:
        # Like the repository: one write, refused when the notification's key is there
        if feedback.key in self.feedback_applied:
            return None
        standing = self.suppressions.get(feedback.lead_id)
        if (
            feedback.suppression is not None
            and standing is not None
            and standing.reason not in replaced_by(feedback.suppression)
        ):
            feedback = feedback.under_stronger_suppression()
        self.feedback_applied[feedback.key] = feedback.outcome
        if feedback.suppression is not None:
            self.suppressions[feedback.lead_id] = Suppression(feedback.suppression, at)
        if feedback.opt_out is not None:
            self.consent_changes.append((feedback.opt_out, "complaint"))
            self._consent_items(feedback.opt_out)
        if feedback.reset_soft_bounces:
            self.reset_soft_bounces(feedback.lead_id)
        self.events.extend(feedback.events)
        return feedback.outcome

    def count_soft_bounce(
        self, lead_id: str, email: str, at: str, feedback_id: str | None = None
    ) -> int:
        # Like the repository: a set of SES feedback ids, so a redelivery counts once
        counted = self.soft_bounces.setdefault(lead_id, set())
        counted.add(feedback_id or f"unnamed-{len(counted)}")
        return len(counted)

    def reset_soft_bounces(self, lead_id: str) -> None:
        self.soft_bounces.pop(lead_id, None)

    def put_event(self, event: LeadEvent) -> None:
        self.events.append(event)


class MemoryMessenger:
    """Keeps every mail it is given; fails the next sends when told to."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []
        self.failures: list[BaseException] = []

    def send(self, mail: OutgoingMail) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(mail)
        return f"ses-{len(self.sent)}"

    def fail_next(self, message: str = "MessageRejected: Email address is not verified") -> None:
        self.failures.append(MessengerError(message))
