"""SES receiving, as the template's receipt rules describe it: a received message is stored in
the rule's bucket (moto's S3) and the rule's function is invoked with SES's receipt event.

moto has no inbound mail. The runtime reads each AWS::SES::ReceiptRule of the template (its
recipients, its S3 action's bucket and prefix, its Lambda action's function) and runs those
actions in order for a message handed to ``deliver`` - the sent-mail viewer's reply form does
(tsunagu_local.pages). The function is called directly, as Lambda calls it for SES's
asynchronous ("Event") invocation; its outcome is returned so the viewer can say what happened.
"""

from __future__ import annotations

import email
import email.policy
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any

from tsunagu.clock import Clock
from tsunagu_local.lambdas import FunctionError, LocalFunction
from tsunagu_local.mailbox import SentMail

log = logging.getLogger("tsunagu.local.receiving")


@dataclass(frozen=True)
class ReceiptRule:
    name: str
    recipients: tuple[str, ...]
    """Addresses or domains, as SES matches them (a domain: every address at it)."""
    actions: tuple[dict[str, Any], ...]
    """The rule's actions, in order (S3Action, LambdaAction; others are not run locally)."""

    def matches(self, address: str) -> bool:
        address = address.casefold()
        domain = address.rpartition("@")[2]
        return not self.recipients or any(
            r.casefold() == address or r.casefold() == domain for r in self.recipients
        )


@dataclass
class Receiving:
    put_object: Callable[[str, str, bytes], None]
    function_named: Callable[[str], LocalFunction]
    clock: Clock
    region: str
    account_id: str
    rules: list[ReceiptRule] = field(default_factory=list)

    @property
    def domains(self) -> list[str]:
        return [r for rule in self.rules for r in rule.recipients if "@" not in r]

    def deliver(self, raw: bytes, recipients: Sequence[str]) -> list[Any]:
        """Receive one message for ``recipients`` (the envelope's); what each function
        invoked returned (a function error as its payload)."""
        message_id = uuid.uuid4().hex + "local"
        results: list[Any] = []
        for rule in self.rules:
            matched = [r for r in recipients if rule.matches(r)]
            if not matched:
                continue
            for action in rule.actions:
                if "S3Action" in action:
                    s3 = action["S3Action"]
                    key = f"{s3.get('ObjectKeyPrefix', '')}{message_id}"
                    self.put_object(s3["BucketName"], key, raw)
                elif "LambdaAction" in action:
                    function = self.function_named(action["LambdaAction"]["FunctionArn"])
                    event = receipt_event(
                        raw, message_id, matched, rule.name, function.arn, self.clock.now()
                    )
                    try:
                        results.append(function.invoke(event))
                    except FunctionError as error:
                        log.error("%s failed on a received message", function.logical_id)
                        results.append(error.payload)
                else:
                    log.warning("%s: only S3 and Lambda actions run locally", rule.name)
        return results


def receipt_event(
    raw: bytes,
    message_id: str,
    recipients: Sequence[str],
    rule_name: str,
    function_arn: str,
    now: datetime,
) -> dict[str, Any]:
    """SES's event for a Lambda action: the message's headers and the receipt, no body."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    headers = [{"name": k, "value": str(v)} for k, v in parsed.items()]

    def addresses(name: str) -> list[str]:
        return [a for _, a in getaddresses([str(v) for v in parsed.get_all(name) or []]) if a]

    sender = (addresses("From") or [""])[0]
    timestamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    verdict = {"status": "PASS"}
    return {
        "Records": [
            {
                "eventSource": "aws:ses",
                "eventVersion": "1.0",
                "ses": {
                    "mail": {
                        "timestamp": timestamp,
                        "source": sender,
                        "messageId": message_id,
                        "destination": list(recipients),
                        "headersTruncated": False,
                        "headers": headers,
                        "commonHeaders": {
                            "returnPath": sender,
                            "from": [str(parsed.get("From", ""))],
                            "date": str(parsed.get("Date", "")),
                            "to": [str(v) for v in parsed.get_all("To") or []],
                            "messageId": str(parsed.get("Message-ID", "")),
                            "subject": str(parsed.get("Subject", "")),
                        },
                    },
                    "receipt": {
                        "timestamp": timestamp,
                        "processingTimeMillis": 1,
                        "recipients": list(recipients),
                        "spamVerdict": verdict,
                        "virusVerdict": verdict,
                        "spfVerdict": verdict,
                        "dkimVerdict": verdict,
                        "dmarcVerdict": verdict,
                        "action": {
                            "type": "Lambda",
                            "functionArn": function_arn,
                            "invocationType": "Event",
                        },
                    },
                },
            }
        ]
    }


def reply_to(
    mail: SentMail, body: str, *, automatic: bool, now: datetime
) -> tuple[bytes, str] | None:
    """A reply to a sent mail, as the lead's mailer would write it (the body on top, the mail
    quoted below), and the address it goes to; None when the mail names no Reply-To."""
    headers = {name.lower(): value for name, value in mail.headers}
    answer_to = headers.get("reply-to")
    if not answer_to:
        return None
    message = EmailMessage()
    message["From"] = mail.recipients[0] if mail.recipients else "someone@example.com"
    message["To"] = answer_to
    subject = f"Re: {mail.subject}"
    message["Subject"] = f"自動返信: {subject}" if automatic else subject
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid(domain="local.example.com")
    if automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Autoreply"] = "yes"
    sent_at = mail.sent_at or format_datetime(now.astimezone(UTC))
    quoted = "".join(f"> {line}\n" for line in (mail.text or "").splitlines())
    message.set_content(f"{body.strip()}\n\n{sent_at}, {mail.sender} wrote:\n{quoted}")
    return message.as_bytes(), answer_to
