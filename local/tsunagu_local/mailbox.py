"""The sent-mail viewer's source: every mail moto's SES accepted, parsed for display."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SentMail:
    message_id: str
    sender: str
    recipients: list[str]
    subject: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    html: str | None = None


def _from_raw(message_id: str, raw: str) -> SentMail:
    parsed = email.message_from_string(raw, policy=email.policy.default)
    text = html = None
    for part in parsed.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain" and text is None:
            text = str(part.get_content())
        elif content_type == "text/html" and html is None:
            html = str(part.get_content())
    recipients = [str(v) for key in ("To", "Cc") for v in parsed.get_all(key) or []]
    return SentMail(
        message_id=message_id,
        sender=str(parsed.get("From", "")),
        recipients=recipients,
        subject=str(parsed.get("Subject", "")),
        headers=[(k, str(v)) for k, v in parsed.items()],
        text=text,
        html=html,
    )


def _from_simple(message: Any) -> SentMail:
    destinations = message.destinations or {}
    recipients = [a for key in ("ToAddresses", "CcAddresses") for a in destinations.get(key, [])]
    body = message.body or ""
    is_html = "<" in body and ">" in body
    return SentMail(
        message_id=message.id,
        sender=message.source,
        recipients=recipients,
        subject=message.subject or "",
        headers=[
            ("From", message.source),
            ("To", ", ".join(recipients)),
            ("Subject", message.subject or ""),
        ],
        text=None if is_html else body,
        html=body if is_html else None,
    )


def sent_mail(account_id: str, region: str) -> list[SentMail]:
    """Newest first."""
    from moto.ses.models import RawMessage, ses_backends

    mails = []
    for message in ses_backends[account_id][region].sent_messages:
        if isinstance(message, RawMessage):
            mails.append(_from_raw(message.id, message.raw_data))
        elif hasattr(message, "body"):
            mails.append(_from_simple(message))
    return list(reversed(mails))
