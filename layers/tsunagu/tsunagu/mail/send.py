"""Sending one mail to one lead: consent at send time, render, SES, and a record either way.

Exactly once: the caller names the send with a key (a journey gives execution and state). The
key is claimed before anything is sent; a retry finds the claim and gets the first outcome back
instead of a second mail. A send still marked as in progress is never repeated blindly: if the
first attempt died between SES and the record, or the record could not be written, sending again
could mail the person twice, so the retry fails loudly instead and the journey's retry/catch
takes over. Only a failure before SES had the mail releases the claim for a retry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formataddr
from typing import Any, Literal, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.errors import IdempotencyConflict, NotFound, TsunaguError
from tsunagu.event_kinds import MAIL_DEFERRED, MAIL_SKIPPED
from tsunagu.ids import new_id
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.mail.consent import (
    Recipient,
    SkipReason,
    allowed_outside_production,
    skip_reason,
)
from tsunagu.mail.exclusions import ExclusionList
from tsunagu.mail.render import RenderError, TrackingUrls, one_line, render_mail
from tsunagu.mail.reply_addresses import ReplyAddress, new_reply_token, reply_address
from tsunagu.mail.templates import MailTemplate
from tsunagu.tracking.tokens import TokenKind, TokenSigner, TrackingToken

MAIL_SENT = "mail_sent"
MAIL_FAILED = "mail_failed"


class SendFailed(TsunaguError):
    """The mail could not be sent; the failure is recorded. Safe to retry with the same key."""


class SendInProgress(TsunaguError):
    """Another attempt with this key has not finished (or died mid-send): not sent again."""


class SendHeld(TsunaguError):
    """A journey mail asked for while its journey is paused or the account stopped: nothing
    sent. It passed its gate before (a send retried minutes after SES refused it); the state
    machine's Catch takes the lead back to the gate, which parks it until the resume decides."""


class SendOutcomeUnknown(TsunaguError):
    """SES may have taken the mail (a timeout after sending), or took it and the record failed.
    Alarmed, never resent: a person must not get the same mail twice."""

    def __init__(self, message: str, *, message_id: str) -> None:
        super().__init__(message)
        self.message_id = message_id


class MessengerError(Exception):
    """SES refused or kept throttling the mail (``definite``), or the outcome is unknown."""

    def __init__(self, message: str, *, definite: bool = True) -> None:
        super().__init__(message)
        self.definite = definite


@dataclass(frozen=True)
class SendRequest:
    lead_id: str
    template_id: str
    idempotency_key: str
    template_version: int | None = None
    journey: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    status: Literal["sent", "skipped"]
    message_id: str
    reason: str | None = None
    ses_message_id: str | None = None
    replayed: bool = False

    def as_record(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message_id": self.message_id,
            "reason": self.reason,
            "ses_message_id": self.ses_message_id,
        }


@dataclass(frozen=True)
class OutgoingMail:
    sender: str
    recipient: str
    subject: str
    html: str
    text: str
    reply_to: str | None
    headers: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class MailPolicy:
    """What the stage allows and where links point (from the settings)."""

    production: bool
    allowlist: frozenset[str]
    api_url: str
    verified_domains: frozenset[str]
    unsubscribe_mailto: str | None = None
    reply_domain: str | None = None
    """Replies are received at this domain (tsunagu.mail.reply_addresses); None: the template's
    own Reply-To, and replies go wherever it says."""


class MailStore(Protocol):
    def claim_send(
        self, key: str, message_id: str, at: str, request_hash: str
    ) -> dict[str, Any] | None:
        """Claim the key; None when claimed now, else the record of the earlier claim."""
        ...

    def template(self, template_id: str, version: int | None) -> MailTemplate | None: ...

    def recipient(self, lead_id: str, topic: str) -> Recipient: ...

    def exclusions(self) -> ExclusionList:
        """The account's exclusions (a warm function may keep them for half a minute)."""
        ...

    def finish_send(
        self,
        key: str,
        status: str,
        record: dict[str, Any],
        event: LeadEvent,
        reply: ReplyAddress | None = None,
    ) -> None:
        """Record the outcome and its event (and the mail's reply address) together."""
        ...


class Messenger(Protocol):
    def send(self, mail: OutgoingMail) -> str:
        """Hand the mail to SES; returns SES's message id. Raises MessengerError."""
        ...


class ExcludingSegments(Protocol):
    def excluding(self, lead: Lead, now: datetime) -> str | None:
        """The first saved segment marked "exclude from marketing" that selects the lead."""
        ...


def lead_context(lead: Lead) -> dict[str, Any]:
    return {"email": lead.email, **{name: value.value for name, value in lead.fields.items()}}


def owner_context(lead: Lead) -> dict[str, str]:
    return {
        k.removeprefix("owner_"): v.value for k, v in lead.fields.items() if k.startswith("owner_")
    }


def _display_name(name: str | None) -> str:
    """A name for a From header: one line, whatever the data says (header injection)."""
    return one_line(name or "")


def sender_for(
    template: MailTemplate, owner: Mapping[str, str], verified_domains: frozenset[str]
) -> str:
    """The From of a mail: the lead's owner when the template says so and the owner's domain
    is one SES may send from, else the template's own sender."""
    address = owner.get("email", "")
    if (
        template.sender_is_owner
        and "@" in address
        and address.rsplit("@", 1)[1].casefold() in verified_domains
    ):
        return formataddr((_display_name(owner.get("name")), address))
    return formataddr((_display_name(template.from_name), template.from_address))


def _event(kind: str, lead_id: str, at: str, now: Any, **properties: Any) -> LeadEvent:
    return LeadEvent(
        event_id=new_id("evt", now),
        type=kind,
        occurred_at=at,
        lead_id=lead_id,
        properties=properties,
    )


def journey_details(journey: Mapping[str, Any]) -> dict[str, Any]:
    """What a journey's send says of itself on the mail's events (the reports count the mail
    for that journey version and node)."""
    names = ("journey_id", "journey_version", "node")
    return {name: journey[name] for name in names if journey.get(name) is not None}


def _request_hash(request: SendRequest) -> str:
    what = [request.lead_id, request.template_id, request.template_version]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()


@dataclass
class _Progress:
    """How far one claimed send got, so a failure releases the claim only when it may."""

    finished: bool = False
    """The outcome is recorded."""
    with_ses: bool = False
    """SES has or may have the mail: from the moment it is handed over, unless SES refused it."""


def send_mail(
    request: SendRequest,
    *,
    store: MailStore,
    messenger: Messenger,
    signer: TokenSigner,
    clock: Clock,
    policy: MailPolicy,
    segments: ExcludingSegments | None = None,
    held: Callable[[str | None], str | None] | None = None,
) -> SendResult:
    """``held``: why a journey's mail must go back to its gate (the journey archived or paused,
    the emergency stop; None: it may go), asked of a journey's send (of the journey it names; of
    none, the stop alone). The gate asked before, but the state machine retries a send SES
    refused minutes later, in place, and a stop or an archive meanwhile must hold it."""
    now = clock.now()
    at = isoformat(now)
    message_id = new_id("msg", now)
    request_hash = _request_hash(request)
    prior = store.claim_send(request.idempotency_key, message_id, at, request_hash)
    if prior is not None:
        if prior.get("request_hash", request_hash) != request_hash:
            raise IdempotencyConflict(
                f"key {request.idempotency_key!r} was used for another lead or template"
            )
        if prior.get("status") in ("sent", "skipped"):
            return SendResult(
                status=prior["status"],
                message_id=prior["message_id"],
                reason=prior.get("reason"),
                ses_message_id=prior.get("ses_message_id"),
                replayed=True,
            )
        if prior.get("status") == "unknown":
            raise SendOutcomeUnknown(
                f"send {request.idempotency_key!r}: SES may have taken it; not sent again",
                message_id=prior.get("message_id", message_id),
            )
        raise SendInProgress(f"send {request.idempotency_key!r} is already in progress")
    progress = _Progress()

    def finish(
        status: str, result: SendResult | None, event: LeadEvent, reply: ReplyAddress | None = None
    ) -> None:
        record = result.as_record() if result else {"status": status, "message_id": message_id}
        record = {**record, "request_hash": request_hash}
        if reply is None:
            store.finish_send(request.idempotency_key, status, record, event)
        else:
            store.finish_send(request.idempotency_key, status, record, event, reply=reply)
        progress.finished = True

    journey_id = request.journey.get("journey_id")
    why_held = (
        held(str(journey_id) if journey_id else None)
        if held is not None and request.journey
        else None
    )
    if why_held is not None:
        # Asked once the key is claimed, so that an attempt which did send is answered as
        # sent above; the claim is let go as "failed" (nothing went out), with the line on
        # the lead's timeline that says why the mail waits.
        line = _event(
            MAIL_DEFERRED,
            request.lead_id,
            at,
            now,
            reason=why_held,
            message_id=message_id,
            template_id=request.template_id,
            by="send_email",
            **journey_details(request.journey),
        )
        finish("failed", None, line)
        raise SendHeld(f"send {request.idempotency_key!r}: held ({why_held}), not sent")

    try:
        return _send_claimed(
            request, message_id, now, store, messenger, signer, policy, progress, finish, segments
        )
    except Exception as error:
        if progress.finished:
            raise
        if progress.with_ses:
            # SES has (or may have) the mail and only its record failed (a throttled or timed
            # out write). Released as "failed", the journey's retry would mail the person again;
            # written again, it could overwrite a record that did land. So the claim stays
            # "sending" (no attempt of this key sends again) and the step answers "unknown".
            raise SendOutcomeUnknown(
                f"send {request.idempotency_key!r}: SES has the mail but it was not recorded",
                message_id=message_id,
            ) from error
        # Failed before SES had the mail (a DynamoDB error, a bad header): nothing went
        # out, so the claim is released as failed and a retry may send.
        event = _event(
            MAIL_FAILED, request.lead_id, at, now, message_id=message_id, error=repr(error)
        )
        with contextlib.suppress(Exception):
            finish("failed", None, event)
        raise


def _send_claimed(
    request: SendRequest,
    message_id: str,
    now: Any,
    store: MailStore,
    messenger: Messenger,
    signer: TokenSigner,
    policy: MailPolicy,
    progress: _Progress,
    finish: Callable[..., None],
    segments: ExcludingSegments | None,
) -> SendResult:
    at = isoformat(now)
    template = store.template(request.template_id, request.template_version)
    if template is None:
        error = NotFound(f"no mail template {request.template_id!r}")
        finish(
            "failed",
            None,
            _event(
                MAIL_FAILED, request.lead_id, at, now, message_id=message_id, error=error.message
            ),
        )
        raise error
    recipient = store.recipient(request.lead_id, template.topic)
    lead = recipient.lead
    details = {
        "message_id": message_id,
        "template_id": template.template_id,
        "template_version": template.version,
        "topic": template.topic,
        "mail_kind": template.kind,
        "idempotency_key": request.idempotency_key,
        **journey_details(request.journey),
    }
    reason = skip_reason(
        address=lead.email if lead else None,
        kind=template.kind,
        topic=template.topic,
        consent=recipient.consent,
    )
    outside_allowlist = lead is not None and not (
        policy.production or allowed_outside_production(lead.email, policy.allowlist)
    )
    if reason is None and lead is not None and template.kind != "transactional":
        excluded = store.exclusions().excluding(lead.email)
        if excluded is not None:
            reason = SkipReason.EXCLUDED
            details["excluded_by"] = f"{excluded.list}: {excluded.value}"
        elif segments is not None and (segment := segments.excluding(lead, now)) is not None:
            reason = SkipReason.EXCLUDED
            details["excluded_by"] = f"segment: {segment}"
    if reason is None and outside_allowlist:
        reason = SkipReason.SANDBOXED
    if reason is not None or lead is None:
        result = SendResult("skipped", message_id, str(reason or SkipReason.NO_ADDRESS))
        finish(
            "skipped",
            result,
            _event(MAIL_SKIPPED, request.lead_id, at, now, reason=result.reason, **details),
        )
        return result

    sent_at = int(now.timestamp())

    def token(kind: TokenKind, url: str | None = None, link_id: str | None = None) -> str:
        return signer.sign(
            TrackingToken(kind, message_id, lead.lead_id, sent_at, url, link_id, template.topic)
        )

    base = policy.api_url.rstrip("/")
    unsubscribe = f"{base}/u/{token(TokenKind.UNSUBSCRIBE)}"
    urls = TrackingUrls(
        click=lambda link_id, url: f"{base}/c/{token(TokenKind.CLICK, url, link_id)}",
        open_pixel=f"{base}/o/{token(TokenKind.OPEN)}.gif",
        honeypot=f"{base}/c/{token(TokenKind.HONEYPOT, base + '/', 'honeypot')}",
        unsubscribe=unsubscribe,
        api_url=base,
    )
    owner = owner_context(lead)
    try:
        rendered = render_mail(
            template, lead=lead_context(lead), owner=owner, journey=request.journey, urls=urls
        )
    except RenderError as error:
        finish(
            "failed", None, _event(MAIL_FAILED, lead.lead_id, at, now, error=str(error), **details)
        )
        raise SendFailed(f"template {template.template_id!r} did not render: {error}") from error
    unsubscribe_targets = [f"<{unsubscribe}>"]
    if policy.unsubscribe_mailto:
        unsubscribe_targets.append(f"<mailto:{policy.unsubscribe_mailto}?subject=unsubscribe>")
    sender = sender_for(template, owner, policy.verified_domains)
    reply = None
    if policy.reply_domain and template.kind == "marketing":
        # A reply comes back to Tsunagu, which records it on the lead and passes it on to the
        # template's own Reply-To (tsunagu.mail.replies)
        reply = ReplyAddress(
            token=new_reply_token(),
            lead_id=lead.lead_id,
            message_id=message_id,
            template_id=template.template_id,
            template_version=template.version,
            template_name=template.name,
            topic=template.topic,
            mail_kind=template.kind,
            sent_at=at,
            sender=template.from_address,
            reply_to=template.reply_to,
            journey=journey_details(request.journey),
        )
    outgoing = OutgoingMail(
        sender=sender,
        recipient=lead.email,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        reply_to=(
            reply_address(reply.token, str(policy.reply_domain)) if reply else template.reply_to
        ),
        headers={
            "List-Unsubscribe": ", ".join(unsubscribe_targets),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Tsunagu-Message-Id": message_id,
        },
        tags={"lead_id": lead.lead_id, "message_id": message_id, "topic": template.topic},
    )
    progress.with_ses = True
    try:
        ses_message_id = messenger.send(outgoing)
    except MessengerError as error:
        # "unknown": the request may have reached SES (a timeout after sending); never resent.
        progress.with_ses = not error.definite
        status = "failed" if error.definite else "unknown"
        failed = _event(MAIL_FAILED, lead.lead_id, at, now, error=str(error), **details)
        finish(status, None, failed)
        if error.definite:
            raise SendFailed(f"SES did not take the mail: {error}") from error
        raise SendOutcomeUnknown(
            f"SES may or may not have taken the mail: {error}", message_id=message_id
        ) from error
    result = SendResult("sent", message_id, None, ses_message_id)
    finish(
        "sent",
        result,
        _event(
            MAIL_SENT,
            lead.lead_id,
            at,
            now,
            ses_message_id=ses_message_id,
            subject=rendered.subject,
            links=[{"link_id": i, "url": u} for i, u in rendered.links],
            **details,
        ),
        reply,
    )
    return result
