"""The SES adapter: one raw MIME mail through SES v2, with throttling retried and a rate kept."""

from __future__ import annotations

import email.policy
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from tsunagu.mail.send import MessengerError, OutgoingMail
from tsunagu.settings import Settings
from tsunagu.text import header_line

RETRYABLE = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling"})
MAX_ATTEMPTS = 6
AMBIGUOUS_ERRORS = frozenset(
    {"ReadTimeoutError", "ConnectionClosedError", "ResponseStreamingError"}
)
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
"""SES answers a send in well under a second. botocore's defaults (60 s each) outlast every
function that sends (send_email is killed at 30 s), and a killed function records nothing: its
claim stays "sending" for good and no MailUnknown is counted. A read that times out after the
request went out ends as the "unknown" outcome instead, recorded and alarmed."""
SEND_BUDGET_SECONDS = 20.0
"""How long one mail may take here, throttling retries included: another attempt starts only
if it would end within this, at its worst (the backoff, then both timeouts) - inside the 29 s
and more every sending function runs for, with time left to record the outcome."""
_WORST_ATTEMPT = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS


QP_LINE_LENGTH = 76
"""RFC 2045's limit on a quoted-printable line (longer ones are a spam signal)."""
UNFOLDED_HEADERS = frozenset({"list-unsubscribe"})
"""Written whole on one line: folded, a signed List-Unsubscribe URL (no spaces, far over 78
columns) becomes encoded words that mail providers do not read as a URL."""
_WHOLE_LINE = email.policy.SMTP.clone(max_line_length=998)  # RFC 5322's hard limit


class _MailPolicy(email.policy.EmailPolicy):
    """SMTP's policy, folding every header but those in UNFOLDED_HEADERS. Its line length also
    bounds the body's quoted-printable lines and a subject's encoded words (RFC 2047: 75)."""

    def fold(self, name: str, value: str) -> str:
        whole = name.lower() in UNFOLDED_HEADERS
        folded: str = _WHOLE_LINE.fold(name, value) if whole else super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in UNFOLDED_HEADERS:
            return _WHOLE_LINE.fold_binary(name, value)
        return super().fold_binary(name, value)


_MAIL_POLICY = _MailPolicy(linesep="\r\n", max_line_length=QP_LINE_LENGTH)


def mime(mail: OutgoingMail) -> bytes:
    message = EmailMessage(policy=_MAIL_POLICY)
    message["From"] = mail.sender
    message["To"] = mail.recipient
    # The subject is made from stored data (a lead's name, a company): one line whatever it holds.
    message["Subject"] = header_line(mail.subject)
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    for name, value in mail.headers.items():
        message[name] = value
    # Quoted-printable: 7-bit safe on every hop, and still readable in a raw message.
    message.set_content(mail.text, cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    return message.as_bytes()


class SesMessenger:
    """Sends through SES v2 with the stage's configuration set (so feedback events flow)."""

    def __init__(
        self,
        settings: Settings,
        client: Any = None,
        sleep: Any = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if client is None:
            import boto3  # only the functions that send mail need it
            from botocore.config import Config

            # No retries inside botocore: a resent request could mail twice; this adapter
            # retries only throttling, which SES answers before sending. (botocore's
            # "max_attempts" counts retries after the first request; "total_max_attempts"
            # counts every request.)
            client = boto3.client(
                "sesv2",
                region_name=settings.region,
                endpoint_url=settings.aws_endpoint_url,
                config=Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                ),
            )
        self._client = client
        self._configuration_set = settings.mail_configuration_set
        self._interval = 1.0 / settings.max_send_rate
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_send = 0.0

    def _keep_rate(self) -> None:
        with self._lock:
            wait = self._last_send + self._interval - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            self._last_send = time.monotonic()

    def send(self, mail: OutgoingMail) -> str:
        try:
            raw = mime(mail)
        except ValueError as error:  # a header the email package refuses to write
            raise MessengerError(f"the mail cannot be written: {error}") from error
        request: dict[str, Any] = {
            "FromEmailAddress": mail.sender,
            "Destination": {"ToAddresses": [mail.recipient]},
            "Content": {"Raw": {"Data": raw}},
            "EmailTags": [{"Name": k, "Value": v} for k, v in mail.tags.items()],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        started = self._monotonic()
        for attempt in range(MAX_ATTEMPTS):
            self._keep_rate()
            try:
                message_id: str = self._client.send_email(**request)["MessageId"]
            except Exception as error:  # botocore's errors, without importing botocore here
                response = getattr(error, "response", None) or {}
                code = response.get("Error", {}).get("Code", "")
                backoff = min(0.2 * 2**attempt, 5.0)
                if code in RETRYABLE and attempt < MAX_ATTEMPTS - 1:
                    # SES throttles before it takes the mail: giving up is a definite failure,
                    # which the journey's own retry takes later
                    worst_end = self._monotonic() - started + backoff + _WORST_ATTEMPT
                    if worst_end <= SEND_BUDGET_SECONDS:
                        self._sleep(backoff)
                        continue
                status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                # A refusal (4xx) or a connection never made is definite; a timeout after the
                # request went out, or an SES 5xx, may still have sent the mail.
                ambiguous = status >= 500 or type(error).__name__ in AMBIGUOUS_ERRORS
                raise MessengerError(
                    f"{code or type(error).__name__}: {error}", definite=not ambiguous
                ) from error
            return message_id
        raise MessengerError("throttled on every attempt")  # pragma: no cover - loop returns
