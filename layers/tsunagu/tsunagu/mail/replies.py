"""Replies to Tsunagu's mail: recorded on the lead, told to a person, honoured asking to stop.

A marketing mail's Reply-To is ``reply+<token>@<reply domain>`` (mail.reply_addresses). SES
receives the reply, stores it whole in S3 and invokes receive_reply with the receipt (which
carries no body). Here the token names the send; the reply becomes an event on the lead the
send went to, through the events table (so its stream scores it, resumes a journey waiting for
``email_replied``, and segments and the timeline see it):

- ``email_replied`` - a person's reply. Its properties say which send, template and journey it
  answers, who sent it when that is not the lead's address, where the message is kept (S3) and
  a short classification; never the body or the subject (personal data stays in the bucket).
- ``email_auto_replied`` - an out-of-office or any other automatic answer. A kind of its own,
  not ``email_replied`` with a flag: every rule anywhere that names ``email_replied`` (a
  scoring rule, a journey's wait, a segment's "did", a trigger, a report) can then never count
  an auto-reply, including rules written before auto-replies existed. It is also marked
  ``automated`` with its ``reasons``, as judged activity is everywhere else (DESIGN.md,
  principle 7), and is a system kind: something the lead's mail server did, not the lead.

A reply that asks to stop (配信停止, unsubscribe... in the lines the person wrote, not in the
quoted original) opts the lead out of the mail's topic by the preference page's own rule
(mail.preferences.stop_topic_by_reply), with the person's words as the evidence; whoever sent
it, as the unsubscribe link in the mail works for whoever has the mail.

A person's reply is then passed on to a person: the template's own Reply-To, else the lead's
owner, else the mail's sender; through the same messenger as every mail, once.

Bad input (no token, an unknown one, a message too large, not a mail, a lead since erased, one
SES's scan found a virus in) is recorded nowhere and answered with an outcome the handler logs:
never an exception, which would only make Lambda invoke the function again with the same
message. SES may deliver a message twice: it is recorded once, under SES's message id. What
SES's scan judged spam is no reply and goes to nobody; only a request to stop in it is honoured.
A reply whose From failed DMARC is recorded, but never as the lead's own (``sender_unverified``).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Any, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.console_links import lead_page_url
from tsunagu.event_kinds import EMAIL_AUTO_REPLIED, EMAIL_REPLIED
from tsunagu.ids import new_id
from tsunagu.leads.email import InvalidEmail, normalise_email
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.mail.consent import allowed_outside_production
from tsunagu.mail.feedback import colleague_mail_tags
from tsunagu.mail.preferences import Change, PreferenceStore, stop_topic_by_reply
from tsunagu.mail.render import html_to_text, one_line
from tsunagu.mail.reply_addresses import RecordedReply, ReplyAddress, tokens_in
from tsunagu.mail.send import MessengerError, OutgoingMail

OWNER_NOTIFIED = "owner_notified"
REPEAT = "already: "
PERSON_LINES = 10
"""How many of the lines the person wrote (not blank, not quoted) a request to stop is looked
for in: a stop request is what they say first, not a word deep in a signature."""
FORWARDED_TEXT = 100_000
"""How much of a reply's text the forwarded mail carries (the whole message stays in S3)."""
_SES_MESSAGE_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")

_AUTO_SUBJECT = re.compile(
    r"自動返信|自動応答|自動送信|不在(通知|のお知らせ|連絡|です)|"
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response",
    re.IGNORECASE,
)
_AUTO_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk"})
_STOP = re.compile(
    r"配信(を)?(停止|解除|不要|中止|しないで)|送(ら|信し)ないで|送信(を)?(停止|不要)|"
    r"メール(は|の)?(不要|停止)|unsubscribe|remove me|opt[- ]?out|"
    r"stop (sending|e-?mailing|mailing)|take me off",
    re.IGNORECASE,
)
# Where the original starts in a reply: an attribution ("On ... wrote:", "... さんは書きました:"),
# an Outlook separator or its header block, a forwarded-message banner.
_ATTRIBUTION = re.compile(
    r"((wrote|書きました|のメッセージ)|<[^<>\s@]+@[^<>\s]+>)\s*[:：]\s*$", re.IGNORECASE
)
_ORIGINAL = re.compile(
    r"^(-{2,}\s*(original message|元のメッセージ|forwarded message|転送されたメッセージ)"
    r"|_{10,}$|(from|差出人|送信者)\s*[:：]\s*\S)",
    re.IGNORECASE,
)


class NotAMail(ValueError):
    """The received object does not read as a mail message (no sender, not MIME)."""


class MessageTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


class MessageMissing(Exception):
    """SES's S3 action stored nothing under the message's id."""


@dataclass(frozen=True)
class ReceivedMail:
    """What SES's receipt event says of one received message (it carries no body)."""

    ses_message_id: str
    recipients: tuple[str, ...]
    verdicts: Mapping[str, str] = field(default_factory=dict)
    """SES's scan of the message (the receipt rule has ScanEnabled) that is acted on: ``spam``,
    ``virus``, ``dmarc`` -> PASS, FAIL, GRAY or PROCESSING_FAILED."""

    @property
    def has_virus(self) -> bool:
        """Malware: taken as nothing at all, never passed on to a colleague."""
        return self.verdicts.get("virus") == "FAIL"

    @property
    def judged_spam(self) -> bool:
        """Spam is never a lead's activity: a reply address is in every mail, so whoever has
        one mail could otherwise score its lead or resume its journey. A request to stop in it
        is still honoured (less mail, never more), as it is from whoever has the mail."""
        return self.verdicts.get("spam") == "FAIL"

    @property
    def sender_unverified(self) -> bool:
        """DMARC failed: the From address cannot be taken as who sent it."""
        return self.verdicts.get("dmarc") == "FAIL"


def received_from_ses(record: Mapping[str, Any]) -> ReceivedMail | None:
    """One record of SES's receipt event (``Records[].ses``); None when it is not one."""
    ses = record.get("ses") if isinstance(record, Mapping) else None
    if not isinstance(ses, Mapping):
        return None
    mail = ses.get("mail") or {}
    receipt = ses.get("receipt") or {}
    message_id = str(mail.get("messageId") or "") if isinstance(mail, Mapping) else ""
    if not _SES_MESSAGE_ID.match(message_id):
        return None  # also what keeps the S3 key this names inside the receipt rule's prefix
    recipients = receipt.get("recipients") if isinstance(receipt, Mapping) else None
    if not recipients and isinstance(mail, Mapping):
        recipients = mail.get("destination")
    if not isinstance(recipients, list):
        return None
    verdicts: dict[str, str] = {}
    for name in ("spam", "virus", "dmarc"):
        verdict = receipt.get(f"{name}Verdict") if isinstance(receipt, Mapping) else None
        if isinstance(verdict, Mapping) and isinstance(verdict.get("status"), str):
            verdicts[name] = verdict["status"].upper()
    return ReceivedMail(message_id, tuple(str(r) for r in recipients[:50]), verdicts)


@dataclass(frozen=True)
class ParsedReply:
    sender: str
    """The From address (the person who replied, who may not be the lead)."""
    sender_name: str
    subject: str
    message_id: str | None
    date: str | None
    headers: Mapping[str, tuple[str, ...]]
    """Lowercased names; every value of each."""
    content_type: str
    text: str
    """The body as text: the plain part, else the HTML part made text."""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def _header_text(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return "" if value is None else one_line(str(value))
    except (ValueError, TypeError, IndexError, AttributeError):
        return ""


def _jis_as_windows(payload: bytes) -> str:
    """ISO-2022-JP as Windows writes it (CP50220: NEC's ①..⑳, Ⅰ.., ㈱ and IBM's 髙, 﨑 in
    the JIS rows the standard leaves empty), which Python's ISO-2022-JP refuses: each JIS pair
    made its Shift_JIS pair, and the whole read as CP932 (which has those characters)."""
    out = bytearray()
    mode = "ascii"
    i = 0
    while i < len(payload):
        byte = payload[i]
        if byte == 0x1B:
            sequence = payload[i + 1 : i + 3]
            mode = {b"$@": "jis", b"$B": "jis", b"(I": "kana"}.get(sequence, "ascii")
            i += 3
            continue
        if mode == "jis" and 0x21 <= byte <= 0x7E and i + 1 < len(payload):
            second = payload[i + 1]
            lead = (byte + 1) // 2 + 0x70
            lead += 0x40 if lead > 0x9F else 0
            odd_row = second + 0x1F + (1 if second >= 0x60 else 0)
            trail = odd_row if byte % 2 else second + 0x7E
            out += bytes((lead, trail))
            i += 2
            continue
        out.append(byte + 0x80 if mode == "kana" and 0x21 <= byte <= 0x5F else byte)
        i += 1
    return out.decode("cp932", errors="replace")


def _decoded(payload: bytes, charset: str | None) -> str:
    """A part's bytes as text in its charset; an ISO-2022-JP one with Windows' extensions too."""
    wanted = (charset or "utf-8").lower()
    try:
        return payload.decode(wanted)
    except UnicodeDecodeError:
        if wanted.replace("_", "-").startswith("iso-2022-jp"):
            return _jis_as_windows(payload)
        return payload.decode(wanted, errors="replace")
    except LookupError:  # a charset Python does not know: most mail now is UTF-8
        return payload.decode("utf-8", errors="replace")


def _body(message: EmailMessage) -> str:
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, ValueError, TypeError, AttributeError):
        part = None
    if part is None:
        return ""
    raw = part.get_payload(decode=True)
    text = _decoded(raw if isinstance(raw, bytes) else b"", part.get_content_charset())
    if part.get_content_type() == "text/html":
        return html_to_text(text)
    return text.replace("\r\n", "\n")


def parse_reply(raw: bytes) -> ParsedReply:
    """The reply's sender, subject, headers and text; NotAMail when it is not a mail."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as error:  # the parser is lenient; anything it still raises is garbage
        raise NotAMail(f"unreadable: {type(error).__name__}") from None
    assert isinstance(message, EmailMessage)
    addresses = [a for _, a in getaddresses([_header_text(message, "From")]) if "@" in a]
    if not addresses:
        raise NotAMail("no sender address (not a mail message)")
    names = [n for n, _ in getaddresses([_header_text(message, "From")])]
    headers: dict[str, tuple[str, ...]] = {}
    for name in set(message.keys()):
        values = []
        for value in message.get_all(name) or ():
            try:
                values.append(one_line(str(value)))
            except (ValueError, TypeError, IndexError, AttributeError):
                continue
        headers[name.lower()] = tuple(values)
    return ParsedReply(
        sender=addresses[0],
        sender_name=names[0] if names else "",
        subject=_header_text(message, "Subject"),
        message_id=_header_text(message, "Message-ID")[:300] or None,
        date=_header_text(message, "Date")[:100] or None,
        headers=headers,
        content_type=message.get_content_type(),
        text=_body(message),
    )


def _normal(text: str) -> str:
    # Full-width letters and spaces (ＵＮＳＵＢＳＣＲＩＢＥ, 全角スペース) read as their ASCII
    return unicodedata.normalize("NFKC", text)


def person_lines(text: str) -> list[str]:
    """The lines the person wrote, first ones first: not blank, not quoted (``>``), and none
    from where the original mail starts (an attribution line, an Outlook header block)."""
    written: list[str] = []
    for line in text.splitlines():
        stripped = _normal(line).strip()
        if _ORIGINAL.match(stripped):
            break
        if _ATTRIBUTION.search(stripped):
            # "On Tue, 1 Dec 2026, Example <news@example.com>\nwrote:" - folded attributions
            if written and stripped.lower().rstrip(":：").strip() in ("wrote", "書きました"):
                written.pop()
            break
        if not stripped or stripped.startswith(">"):
            continue
        written.append(stripped)
    return written


def automatic_reasons(reply: ParsedReply) -> list[str]:
    """Why the reply is an automatic one (RFC 3834's Auto-Submitted, the headers mailers put on
    vacation answers, a delivery report, an auto-reply's subject); empty: a person's."""
    reasons: list[str] = []
    auto = reply.header("auto-submitted")
    if auto is not None and auto.split(";")[0].strip().lower() != "no":
        reasons.append("auto_submitted")
    for name in ("x-autoreply", "x-autorespond"):
        if name in reply.headers:
            reasons.append(name.replace("-", "_"))
    precedence = (reply.header("precedence") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        reasons.append(f"precedence_{precedence}")
    if reply.content_type == "multipart/report":
        reasons.append("delivery_report")
    if _AUTO_SUBJECT.search(_normal(reply.subject)):
        reasons.append("subject")
    return reasons


def stop_request(reply: ParsedReply) -> str | None:
    """The line in which the person asks to stop getting the mail, among the first lines they
    wrote (the quoted original's own unsubscribe footer does not count); None if none does."""
    for line in person_lines(reply.text)[:PERSON_LINES]:
        if _STOP.search(line):
            return line[:200]
    return None


class RawMessages(Protocol):
    def read(self, ses_message_id: str, max_bytes: int) -> bytes:
        """The stored message; MessageTooLarge, MessageMissing."""
        ...

    def reference(self, ses_message_id: str) -> str:
        """Where the message is kept (``s3://bucket/key``), for the event."""
        ...


class ReplyStore(PreferenceStore, Protocol):
    def reply_address(self, token: str) -> ReplyAddress | None: ...

    def recorded_reply(self, key: str) -> str | None: ...

    def record_reply(self, reply: RecordedReply, at: str) -> bool: ...

    def claim_send(
        self, key: str, message_id: str, at: str, request_hash: str
    ) -> dict[str, Any] | None: ...

    def finish_send(
        self, key: str, status: str, record: dict[str, Any], event: LeadEvent
    ) -> None: ...


class Messenger(Protocol):
    def send(self, mail: OutgoingMail) -> str: ...


@dataclass(frozen=True)
class ReplyPolicy:
    reply_domain: str
    notice_sender: str
    """The From of a forwarded reply (an address at a verified sending domain)."""
    production: bool
    allowlist: frozenset[str]
    max_bytes: int
    console_url: str | None = None


@dataclass
class _Outcome:
    parts: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(self.parts)


def _derived_id(prefix: str, key: str, what: str) -> str:
    return f"{prefix}_" + hashlib.sha256(f"{key}\n{what}".encode()).hexdigest()[:26]


def _same_address(one: str, other: str) -> bool:
    try:
        return normalise_email(one).identity_key == normalise_email(other).identity_key
    except InvalidEmail:
        return False


def receive_reply(
    received: ReceivedMail,
    *,
    store: ReplyStore,
    messages: RawMessages,
    messenger: Messenger,
    clock: Clock,
    policy: ReplyPolicy,
) -> str:
    """Record one received reply on its lead and pass it on to a person; returns what was done
    (logged). Safe to repeat: a message recorded already is not recorded again, and its
    forward goes out once."""
    if received.has_virus:
        return "ignored: SES found a virus in it"  # it stays in the bucket, for whoever looks
    address = None
    for token in tokens_in(received.recipients, policy.reply_domain):
        address = store.reply_address(token)
        if address is not None:
            break
    if address is None:
        if not tokens_in(received.recipients, policy.reply_domain):
            return "ignored: not sent to a reply address"
        return "ignored: no mail has this reply address (unknown or forged)"
    lead = store.get_lead(address.lead_id)
    if lead is None:
        return "ignored: the lead the reply is for is gone"
    try:
        raw = messages.read(received.ses_message_id, policy.max_bytes)
    except MessageTooLarge as error:
        return f"ignored: the message is too large ({error.size} bytes)"
    except MessageMissing:
        return "ignored: the message was not stored"
    try:
        reply = parse_reply(raw)
    except NotAMail as error:
        return f"ignored: not a mail message ({error})"
    now = clock.now()
    at = isoformat(now)
    key = received.ses_message_id
    reasons = automatic_reasons(reply)
    stop_words = None if reasons else stop_request(reply)
    from_lead = _same_address(reply.sender, lead.email) and not received.sender_unverified
    properties: dict[str, Any] = {
        "message_id": address.message_id,
        "template_id": address.template_id,
        "template_version": address.template_version,
        "topic": address.topic,
        **dict(address.journey or {}),
        "ses_message_id": received.ses_message_id,
        "reply_message_id": reply.message_id,
        "raw": messages.reference(received.ses_message_id),
        "from_lead": from_lead,
        "classification": "automatic" if reasons else "stop" if stop_words else "reply",
    }
    if not from_lead:
        properties["sender"] = reply.sender
    if received.sender_unverified:
        properties["sender_unverified"] = True
    if reasons:
        properties.update(automated=True, reasons=reasons)
    kind = EMAIL_AUTO_REPLIED if reasons else EMAIL_REPLIED
    event = LeadEvent(_derived_id("rpl", key, kind), kind, at, lead.lead_id, properties=properties)
    changes: list[Change] = []
    outcome = _Outcome([f"recorded: {'automatic reply' if reasons else 'reply'}"])
    if stop_words is not None:
        words = f"reply {reply.message_id or received.ses_message_id}: 「{stop_words}」"
        if not from_lead:
            words += f" (from {reply.sender})"
        changes = stop_topic_by_reply(
            lead, address.topic, address.message_id, words, store=store, clock=clock
        )
        outcome.parts.append(
            f"opted out of {address.topic!r}" if changes else "asked to stop; already out"
        )
    if received.judged_spam:
        if not changes:
            return "ignored: SES judged it spam"
        outcome.parts[0] = "SES judged it spam: not recorded as a reply"
    events = () if received.judged_spam else (event,)
    recorded = RecordedReply(key, lead.lead_id, str(outcome), events, tuple(changes))
    earlier = store.recorded_reply(key)
    if earlier is not None or not store.record_reply(recorded, at):
        # SES delivered the message again: recorded then; its forward (if it has not gone
        # yet: the first invocation failed after recording) goes out below, once
        outcome = _Outcome([REPEAT + (earlier or store.recorded_reply(key) or str(outcome))])
    if reasons or received.judged_spam:
        return str(outcome)  # nobody needs an out-of-office, or spam, in their inbox
    target = address.reply_to or _owner(lead) or address.sender
    notice = _forward(lead, address, reply, stop_words, changes, policy, received)
    status = _send_once(
        f"reply-forward:{key}", lead, target, notice, reply.sender, address,
        store=store, messenger=messenger, policy=policy, now=now,
    )  # fmt: skip
    outcome.parts.append(f"forward to {target}: {status}")
    return str(outcome)


def _owner(lead: Lead) -> str | None:
    owner = lead.fields.get("owner_email")
    return owner.value if owner is not None and "@" in owner.value else None


@dataclass(frozen=True)
class _Notice:
    subject: str
    text: str
    html: str


def _forward(
    lead: Lead,
    address: ReplyAddress,
    reply: ParsedReply,
    stop_words: str | None,
    changes: Sequence[Change],
    policy: ReplyPolicy,
    received: ReceivedMail,
) -> _Notice:
    journey = address.journey or {}
    answered = f"「{address.template_name}」 ({address.template_id} v{address.template_version}"
    if journey.get("journey_id"):
        answered += f", journey {journey['journey_id']} at {journey.get('node', '?')}"
    answered += f"), sent {address.sent_at}"
    lines = [f"{lead.email} replied to {answered}."]
    if received.sender_unverified:
        lines.append(
            f"Its sender ({reply.sender}) could not be verified (DMARC failed):"
            " it may not be from who it says."
        )
    elif not _same_address(reply.sender, lead.email):
        lines.append(f"Sent by {reply.sender}, not the lead's own address.")
    if stop_words is not None:
        done = f'opted out of "{address.topic}"' if changes else "was opted out already"
        lines.append(f"They ask to stop getting this mail (「{stop_words}」): the lead {done}.")
    if policy.console_url:
        lines.append(f"Lead: {lead_page_url(policy.console_url, lead.email)}")
    lines += [
        "Reply to this mail to answer them.",
        "",
        "----- The reply / 返信 -----",
        f"From: {reply.sender_name} <{reply.sender}>" if reply.sender_name else reply.sender,
        f"Subject: {reply.subject}",
        *([f"Date: {reply.date}"] if reply.date else []),
        "",
    ]
    body = reply.text[:FORWARDED_TEXT]
    text = "\n".join(lines) + "\n" + body
    page = (
        "<html><body>"
        + "".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
        + f"<pre style='white-space:pre-wrap'>{html.escape(body)}</pre></body></html>"
    )
    subject = one_line(f"[返信 / Reply] {reply.subject or address.template_name}")[:400]
    return _Notice(subject, text, page)


def _send_once(
    key: str,
    lead: Lead,
    target: str,
    notice: _Notice,
    answer_to: str,
    address: ReplyAddress,
    *,
    store: ReplyStore,
    messenger: Messenger,
    policy: ReplyPolicy,
    now: datetime,
) -> str:
    """Mail the notice once per key (the send ledger, as a hand-off's notice): sent, sandboxed,
    or already_sent. A refusal by SES releases the claim and raises, so Lambda's retry (which
    finds the reply recorded) tries the forward again."""
    at = isoformat(now)
    message_id = new_id("msg", now)
    digest = hashlib.sha256(f"{lead.lead_id}\n{target}".encode()).hexdigest()
    if store.claim_send(key, message_id, at, digest) is not None:
        return "already_sent"
    details = {"owner": target, "message_id": message_id, "about": "reply"}
    details["reply_to_message"] = address.message_id
    status = "sent"
    if not policy.production and not allowed_outside_production(target, policy.allowlist):
        status = "sandboxed"
    else:
        try:
            messenger.send(
                OutgoingMail(
                    sender=policy.notice_sender,
                    recipient=target,
                    subject=notice.subject,
                    html=notice.html,
                    text=notice.text,
                    # Answering the forward answers the person who wrote
                    reply_to=answer_to,
                    headers={},
                    tags=colleague_mail_tags(lead.lead_id, message_id),
                )
            )
        except MessengerError as error:
            outcome = "failed" if error.definite else "unknown"
            failed = LeadEvent(
                new_id("evt", now),
                "mail_failed",
                at,
                lead.lead_id,
                properties={**details, "error": str(error)},
            )
            store.finish_send(key, outcome, {"status": outcome}, failed)
            raise
    event = LeadEvent(
        new_id("evt", now),
        OWNER_NOTIFIED,
        at,
        lead.lead_id,
        properties={**details, "status": status},
    )
    store.finish_send(key, "sent" if status == "sent" else "skipped", {"status": status}, event)
    return status
