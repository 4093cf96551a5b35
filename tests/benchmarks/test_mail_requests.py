"""How many AWS requests send_email makes per mail (goal: at most 3 besides SES's SendEmail).

Every botocore API call in the process is counted while the handler runs (BaseClient.
_make_api_call wrapped), whichever client makes it; calls go to moto in-process. The template is
the ~30 KB newsletter of the render benchmark, from a domain verified in (moto's) SES; the leads
come in through capture_form, as in production. Counts are deterministic; the goal is printed as
met or not met, never asserted.
"""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

import tsunagu.settings
import tsunagu.store.mail
from tests.benchmarks._newsletter import JOURNEY, SUBJECT, newsletter_html
from tests.benchmarks.test_aws_requests import Recorded as SharedRecorded
from tests.benchmarks.test_aws_requests import recording_aws_calls, seed_demo_form, with_body
from tests.conftest import REGION, AwsStack, load_event, moto_client
from tests.support.bench_report import BenchReport
from tsunagu import services
from tsunagu.mail.templates import MailTemplate
from tsunagu.store import tables
from tsunagu_local.lambdas import LocalFunction

TITLE = "send_email AWS requests per mail"
GOAL = 3
"""Requests besides SES's SendEmail."""
SES_CALL = ("sesv2", "SendEmail")
TEMPLATE_ID = "newsletter-2026-11"
API_URL = "https://api.example.com"
ALLOWLIST = "example.com,example.jp"
SENDER = "news@example.com"


class Recorded(SharedRecorded):
    def besides_ses(self) -> list[str]:
        return [described for service, op, described in self.entries if (service, op) != SES_CALL]

    def ses_calls(self) -> int:
        return sum(1 for service, op, _ in self.entries if (service, op) == SES_CALL)


def send_email_function(aws: AwsStack) -> LocalFunction:
    """send_email with the variables its template entry adds to the common environment."""
    base: LocalFunction = aws.function("send_email")
    return LocalFunction(
        logical_id=base.logical_id,
        name=base.name,
        arn=base.arn,
        code_dir=base.code_dir,
        handler=base.handler,
        environment={
            **aws.environment,
            "TSUNAGU_API_URL": API_URL,
            "TSUNAGU_MAIL_ALLOWLIST": ALLOWLIST,
        },
        timeout=base.timeout,
        memory=base.memory,
        clock=base.clock,
    )


def start_cold_container() -> None:
    """What a new execution environment starts without: settings, stores, bound tables (and
    their botocore clients), the SES client, the signing keys, and every cached template."""
    tsunagu.settings._settings_for.cache_clear()
    for factory in (services.mail_repository, services.messenger, services.clock):
        factory.cache_clear()
    tables.bind_tables.cache_clear()
    services._signers.clear()
    tsunagu.store.mail._latest.clear()
    tsunagu.store.mail._versions.clear()


@pytest.fixture(autouse=True)
def _forget_after() -> Iterator[None]:
    """Leave no signing keys, clients or templates from this test's moto to later tests."""
    yield
    start_cold_container()


def capture_lead(aws: AwsStack, number: int, *, consent: bool) -> str:
    """A lead that filled in the demo form (the sample event ticks the consent box)."""
    submission = with_body(
        load_event("capture_form", "new_lead_json"),
        email=f"reader{number}@example.jp",
        name=f"読者 {number}",
        submission_id=f"5d0c3b1e-7a2f-4c6d-9e8b-{number:012d}",
        visitor_id=f"v_{number:016x}",
        **({} if consent else {"consent": None}),
    )
    assert json.loads(submission["body"]).get("consent", False) is consent
    response = aws.function("capture_form").invoke(submission)
    assert response["statusCode"] == 201, response
    lead_id: str = json.loads(response["body"])["lead_id"]
    return lead_id


def sent_messages() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def idempotency_status(aws: AwsStack, key: str) -> str | None:
    item = moto_client("dynamodb").get_item(
        TableName=aws.tables["IdempotencyTable"], Key={"key": {"S": f"send:{key}"}}
    )
    status: str | None = item.get("Item", {}).get("status", {}).get("S")
    return status


def lead_event_types(aws: AwsStack, lead_id: str) -> list[str]:
    items = moto_client("dynamodb").scan(TableName=aws.tables["EventsTable"])["Items"]
    return [i["type"]["S"] for i in items if i.get("lead_id", {}).get("S") == lead_id]


def html_part(raw: str | bytes) -> str:
    message = email.message_from_bytes(raw if isinstance(raw, bytes) else raw.encode())
    for part in message.walk():
        if isinstance(part, Message) and part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/html part")


def created(recorded: Recorded) -> str:
    services = dict.fromkeys(recorded.clients_created)
    return ", ".join(f"{s} x{recorded.clients_created.count(s)}" for s in services) or "none"


@dataclass(frozen=True)
class Scenario:
    label: str
    reader: int
    """The lead: reader<n>@example.jp, captured through capture_form."""
    version: int | None
    expected: str
    cold: bool = False
    """Started in a new execution environment."""

    @property
    def goal(self) -> bool:
        return self.expected == "sent"  # the goal is about mail sent


SCENARIOS = [
    Scenario("(a) cold container (template not cached, no keys)", 1, None, "sent", cold=True),
    Scenario("(b) warm (another lead, new key)", 2, None, "sent"),
    Scenario("(c) warm, template pinned by version", 3, 1, "sent"),
    Scenario("(d) no consent, warm: skipped", 4, None, "skipped"),
    Scenario("(e) cold container, template pinned by version", 5, 1, "sent", cold=True),
]
CONSENTING = {s.reader for s in SCENARIOS if s.expected == "sent"}


def test_send_email_aws_requests(aws: AwsStack, bench_report: BenchReport) -> None:
    labels = {name: logical_id.removesuffix("Table") for logical_id, name in aws.tables.items()}

    # ---- given (not counted): a verified sender domain, the template, the leads
    moto_client("ses").verify_domain_identity(Domain="example.com")
    settings = aws.settings()
    stored = services.mail_repository(settings).save_template(
        MailTemplate(
            template_id=TEMPLATE_ID,
            name="Newsletter, November 2026",
            subject=SUBJECT,
            html=newsletter_html(),
            from_address=SENDER,
            from_name="Example ニュース",
        ),
        services.clock(settings),
    )
    assert stored.version == 1
    seed_demo_form(aws)
    leads = {
        s.reader: capture_lead(aws, s.reader, consent=s.reader in CONSENTING) for s in SCENARIOS
    }

    results: list[tuple[Scenario, Recorded, dict[str, Any]]] = []
    function = send_email_function(aws)
    for number, scenario in enumerate(SCENARIOS):
        if scenario.cold:
            start_cold_container()
            function = send_email_function(aws)  # its module is imported at the first invocation
        lead_id = leads[scenario.reader]
        request: dict[str, Any] = {
            "lead_id": lead_id,
            "template_id": TEMPLATE_ID,
            "idempotency_key": f"arn:aws:states:{REGION}:123456789012:execution:bench:{number}"
            ":SendNewsletter",
            "journey": JOURNEY,
        }
        if scenario.version is not None:
            request["template_version"] = scenario.version
        before = len(sent_messages())
        with recording_aws_calls(labels, Recorded) as recorded:
            response: dict[str, Any] = function.invoke(request)
        results.append((scenario, recorded, response))

        # Correctness, not speed: the mail really went (or really did not), and was recorded.
        label = scenario.label
        assert response["status"] == scenario.expected, (label, response)
        assert idempotency_status(aws, request["idempotency_key"]) == scenario.expected, label
        messages = sent_messages()
        if scenario.expected == "sent":
            assert recorded.ses_calls() == 1, label
            assert len(messages) == before + 1, label
            message = messages[-1]
            assert message.id == response["ses_message_id"], label
            # (moto lists the address twice: from Destination and from the raw To header)
            assert set(message.destinations) == {f"reader{scenario.reader}@example.jp"}, label
            body = html_part(message.raw_data)
            assert f"{API_URL}/c/" in body and f"{API_URL}/u/" in body, label
            assert f"読者 {scenario.reader} 様" in body, label
            assert "mail_sent" in lead_event_types(aws, lead_id), label
        else:
            assert response["reason"] == "no_consent", label
            assert recorded.ses_calls() == 0, label
            assert len(messages) == before, label
            assert "mail_skipped" in lead_event_types(aws, lead_id), label

    lines = [
        "Every botocore API call made while send_email's handler ran (moto in-process); one",
        "invocation each, in this order. Before (a), not counted: SES domain example.com",
        "verified, the ~30 KB newsletter stored as version 1, the leads captured through",
        "capture_form (all but (d)'s with consent). A cold container forgets settings, stores,",
        "clients, signing keys and cached templates, and imports the handler anew.",
        f"Goal: a sent mail makes <= {GOAL} requests besides SES's SendEmail.",
        "",
        f"  {'send':<52} {'status':>7} {'all':>4} {'besides SES':>11}  goal <= {GOAL}",
    ]
    cold_counts, warm_counts = [], []
    for scenario, recorded, response in results:
        besides = len(recorded.besides_ses())
        if scenario.goal:
            (cold_counts if scenario.cold else warm_counts).append(besides)
            judged = "met" if besides <= GOAL else "NOT MET"
        else:
            judged = "(no goal: not sent)"
        lines.append(
            f"  {scenario.label:<52} {response['status']:>7} {len(recorded.calls):>4} "
            f"{besides:>11}  {judged}"
        )
        lines.extend(f"      {described}" for described in recorded.calls)
    worst = max(cold_counts + warm_counts)
    lines += [
        "",
        f"  a sent mail: at most {worst} requests besides SES   "
        f"(goal <= {GOAL}: {'met' if worst <= GOAL else 'NOT MET'}; "
        f"warm: at most {max(warm_counts)}, cold: at most {max(cold_counts)})",
        "",
        "  for information, botocore clients created during each invocation:",
        *(f"    {scenario.label[:3]} {created(recorded)}" for scenario, recorded, _ in results),
        "",
        "  A warm container keeps the latest template for "
        f"{settings.form_cache_seconds:g} s (form_cache_seconds) and the signing",
        f"  keys for {services.SIGNER_MAX_AGE_SECONDS} s; a send after either has expired "
        "makes that request again. A pinned",
        "  version is kept for the container's life (stored versions never change): (c) found it",
        "  cached by (a)'s read of the latest.",
    ]
    bench_report.add(TITLE, *lines)
