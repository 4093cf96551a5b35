"""Handing a new MQL to sales: an owner, a notification the owner can act on, a push to the CRM.

Runs as the ``hand_off_to_sales`` state machine, started once per MQL stage change (its name is
the stage event's id), so the owner is told once however often the stream redelivers.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tsunagu.clock import isoformat
from tsunagu.errors import NotFound, TsunaguError
from tsunagu.event_kinds import SYSTEM_EVENT_KINDS
from tsunagu.ids import new_id
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.leads.updates import LeadChanges, LeadUpdate, update_lead
from tsunagu.mail.consent import allowed_outside_production
from tsunagu.mail.feedback import colleague_mail_tags
from tsunagu.mail.send import MessengerError, OutgoingMail
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.grading import grade, matrix_cell
from tsunagu.qualification.owners import RoundRobinCounter, assign_owner
from tsunagu.qualification.pipeline import lead_attributes
from tsunagu.qualification.scoring import Award, explain, score_band


class PushFailed(TsunaguError):
    """The CRM did not take the lead (an error answer or no answer): the state machine retries
    with backoff, then parks the push. The class name is what its Retry matches."""


def assign(
    lead_id: str,
    *,
    config: QualificationConfig,
    leads: LeadChanges,
    counter: RoundRobinCounter,
    now: datetime,
) -> str | None:
    """The lead's owner: the one it has, else the first matching owner rule's (stored)."""
    lead = leads.get_lead(lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id!r}")
    if "owner_email" in lead.fields:
        return lead.fields["owner_email"].value
    owner = assign_owner(lead.email, lead_attributes(lead), config.owners, counter)
    if owner is not None:
        update = LeadUpdate(fields={"owner_email": owner})
        update_lead(
            lead_id, update, by="rule: owner assignment", source=Channel.SALES, store=leads, now=now
        )
    return owner


NO_FIT = (
    "no fit rule matched (job title, department, company size, industry, country and mail"
    " domain are graded; this lead gave none that a rule names)"
)


@dataclass(frozen=True)
class Notification:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class JourneyNote:
    """Why a journey's ``notify_owner`` node mails the owner: the marketer's message."""

    journey_id: str
    message: str


def notification(
    lead: Lead,
    awards: Sequence[Award],
    recent: Sequence[LeadEvent],
    config: QualificationConfig,
    now: datetime,
    note: JourneyNote | None = None,
) -> Notification:
    """What the owner reads: who, why (every point), and what the lead did lately; with a
    journey's ``note``, the marketer's message first instead of the MQL headline."""
    explanation = explain(awards, now, config.scoring)
    fit = grade(lead_attributes(lead), config.grading)
    cell = matrix_cell(fit.grade, score_band(explanation.score, config.scoring.mql_threshold))
    name = lead.fields["name"].value if "name" in lead.fields else lead.email
    company = lead.fields["company"].value if "company" in lead.fields else ""
    subject = (
        (f"[{note.journey_id}] {name}" if note else f"[MQL {cell}] {name}")
        + (f" ({company})" if company else "")
        + (f" - score {explanation.score:g}")
    )
    headline = (
        [f"{note.message}", "", f"{name} <{lead.email}>, from the journey {note.journey_id}."]
        if note
        else [f"{name} <{lead.email}> became a marketing-qualified lead."]
    )
    lines = [
        *headline,
        f"Score {explanation.score:g} (threshold {config.scoring.mql_threshold}), "
        f"grade {fit.grade.value} ({cell}).",
        "",
        "Why - every point:",
        *(f"  {line}" for line in explanation.text()),
        "",
        "Fit:",
        *(f"  {r.attribute}: {r.value} ({r.points:+d})" for r in fit.reasons),
        *(() if fit.reasons else (f"  {NO_FIT}",)),
        "",
        "Recent activity:",
        *(
            f"  {e.occurred_at}  {e.type}  {_detail(e)}"
            for e in recent
            if e.type not in SYSTEM_EVENT_KINDS and not e.properties.get("automated")
        ),
    ]
    text = "\n".join(lines)
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "<br>" for line in lines)
    return Notification(subject, text, f"<html><body>{body}</body></html>")


def _detail(event: LeadEvent) -> str:
    props = event.properties
    return str(props.get("url") or props.get("form_id") or props.get("template_id") or "")


class Messenger(Protocol):
    def send(self, mail: OutgoingMail) -> str: ...


class SendLedger(Protocol):
    def claim_send(
        self, key: str, message_id: str, at: str, request_hash: str
    ) -> dict[str, Any] | None: ...

    def finish_send(
        self, key: str, status: str, record: dict[str, Any], event: LeadEvent
    ) -> None: ...


def notify_owner(
    lead: Lead,
    owner: str,
    message: Notification,
    *,
    key: str,
    sender: str,
    production: bool,
    allowlist: frozenset[str],
    ledger: SendLedger,
    messenger: Messenger,
    now: datetime,
) -> str:
    """Mail the owner once per key; returns sent, sandboxed or already_sent."""
    at = isoformat(now)
    message_id = new_id("msg", now)
    digest = hashlib.sha256(f"{lead.lead_id}\n{owner}".encode()).hexdigest()
    if ledger.claim_send(key, message_id, at, digest) is not None:
        return "already_sent"
    status = "sent"
    if not production and not allowed_outside_production(owner, allowlist):
        status = "sandboxed"
    else:
        try:
            messenger.send(
                OutgoingMail(
                    sender=sender,
                    recipient=owner,
                    subject=message.subject,
                    html=message.html,
                    text=message.text,
                    reply_to=lead.email,
                    headers={},
                    tags=colleague_mail_tags(lead.lead_id, message_id),
                )
            )
        except MessengerError as error:
            # Release the claim (a refusal is "failed": tried again; a timeout "unknown": SES
            # may have taken it, never resent), and fail the step so its Retry runs.
            failed = LeadEvent(
                new_id("evt", now),
                "mail_failed",
                at,
                lead.lead_id,
                properties={"owner": owner, "message_id": message_id, "error": str(error)},
            )
            outcome = "failed" if error.definite else "unknown"
            ledger.finish_send(key, outcome, {"status": outcome}, failed)
            raise
    event = LeadEvent(
        new_id("evt", now),
        "owner_notified",
        at,
        lead.lead_id,
        properties={"owner": owner, "status": status, "message_id": message_id},
    )
    ledger.finish_send(key, "sent" if status == "sent" else "skipped", {"status": status}, event)
    return status


def note_no_owner(
    lead_id: str, journey_id: str | None, *, key: str, ledger: SendLedger, now: datetime
) -> bool:
    """The MQL hand-off or a journey's ``notify_owner`` found no owner (none set, no owner rule
    matched): the lead's timeline says why sales heard nothing, once per ``key`` (the step's
    send-ledger claim, as a sent notification has). True when this call noted it, False for a
    retried step that already had."""
    at = isoformat(now)
    digest = hashlib.sha256(f"{lead_id}\nno owner".encode()).hexdigest()
    if ledger.claim_send(key, new_id("msg", now), at, digest) is not None:
        return False
    properties = {"status": "no_owner", **({"journey_id": journey_id} if journey_id else {})}
    event = LeadEvent(new_id("evt", now), "owner_notified", at, lead_id, properties=properties)
    ledger.finish_send(key, "skipped", {"status": "no_owner"}, event)
    return True


def push_payload(
    lead: Lead, event: str = "lead.mql", journey: dict[str, str] | None = None
) -> dict[str, Any]:
    """What the CRM receives (JSON, signed like the inbound webhook): for a new MQL, or as a
    journey's ``webhook`` node's ``event`` with the journey and node it came from."""
    fields = {name: value.value for name, value in lead.fields.items()}
    return {
        "type": event,
        **({"journey": journey} if journey else {}),
        "lead_id": lead.lead_id,
        "email": lead.email,
        "stage": lead.stage,
        "score": lead.score,
        "grade": lead.grade,
        "owner": fields.get("owner_email"),
        "crm_id": fields.get("crm_id"),
        "fields": fields,
        "tags": sorted(lead.tags),
    }


def push_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
