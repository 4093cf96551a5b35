"""The sent-mail viewer's source: every mail moto's SES accepted, parsed for display, with the
instant it was accepted on the runtime's clock (moto keeps none); with ``--persist`` (the
default) the mail of earlier runs too, as the tables are kept."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tsunagu.clock import Clock, isoformat
from tsunagu_local.clocks import patch_with_clock

# message id -> when SES accepted it, on the runtime's clock (filled by install_send_clock).
_SENT_AT: dict[str, str] = {}
_SENT_AT_LOCK = threading.Lock()


@dataclass(frozen=True)
class SentMail:
    message_id: str
    sender: str
    recipients: list[str]
    subject: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    sent_at: str | None = None
    """UTC ISO-8601 on the runtime's clock; None for mail sent before the runtime stamped it."""


def install_send_clock(clock: Clock) -> None:
    """Stamp every mail moto's SES accepts with the runtime's clock (simulated time)."""
    from moto.ses.models import SESBackend

    def stamped(moto_send: Any) -> Any:
        def send(self: Any, *args: Any, **kwargs: Any) -> Any:
            message = moto_send(self, *args, **kwargs)
            with _SENT_AT_LOCK:
                _SENT_AT[message.id] = isoformat(clock.now())
            return message

        return send

    for name in ("send_email", "send_raw_email", "send_templated_email"):
        patch_with_clock(SESBackend, name, stamped)


def _sent_at(message_id: str) -> str | None:
    with _SENT_AT_LOCK:
        return _SENT_AT.get(message_id)


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
        sent_at=_sent_at(message_id),
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
        sent_at=_sent_at(message.id),
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


class Mailbox:
    """Every mail sent, newest first: this run's, then those kept from earlier runs in
    ``saved`` (None: nothing is kept)."""

    def __init__(self, account_id: str, region: str, saved: Path | None) -> None:
        self._account_id = account_id
        self._region = region
        self._saved = saved
        self._earlier: list[SentMail] = []
        if saved is not None and saved.exists():
            self._earlier = [
                SentMail(**{**kept, "headers": [tuple(pair) for pair in kept["headers"]]})
                for kept in json.loads(saved.read_text(encoding="utf-8"))
            ]

    def sent_mail(self) -> list[SentMail]:
        return sent_mail(self._account_id, self._region) + self._earlier

    def save(self) -> None:
        if self._saved is None:
            return
        self._saved.parent.mkdir(parents=True, exist_ok=True)
        kept = [asdict(mail) for mail in self.sent_mail()]
        self._saved.write_text(json.dumps(kept, ensure_ascii=False), encoding="utf-8")
