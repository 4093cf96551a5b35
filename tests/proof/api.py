"""API: schemathesis, from ``docs/openapi.yaml`` alone, against every public operation; no 5xx, no
answer outside the schema, and nothing half-written left in the tables afterwards.

The issue asks for at least 10,000 requests, 0 5xx, 0 schema violations and a check after the
run that no half-written record exists.

**How.** A runtime is started as ``make up`` starts it (``template.yaml`` on the embedded local
AWS, the demo form and demo site seeded), on virtual time as the journey tests run it. Leads
are imported first (as an attendee list is), tokens for the opens, clicks and unsubscribe links
of mails to them are signed with the stack's own key, the CRM webhook's signing key is read
from its secret, and the demo site gets a signing secret for its server's tracked events. These
go to a JSON file for ``schemathesis_hooks.py``, which ``schemathesis run`` (4.x, in its own
virtualenv ``.venv-proof``) loads: just before each request it puts, in most cases, the demo
form or site id, a signed token, an imported lead's address or a fresh CRM or site signature in
place of what it generated from the schema, so that the requests get past the first check into
the handlers; the rest stay as generated, so the refusals are tried too.

Form submissions are limited to 60 a minute per client address and the virtual clock stands
still, so the hooks open every connection (``Connection: close``) from the next of a set of
loopback addresses (127.0.x.y); the product's limits are untouched. The submitted addresses
come from a pool, one of them busy enough to reach the per-address limit (10 an hour), so a
refused submission's cancelled transaction is tried as well.

Schemathesis runs its examples, coverage and fuzzing phases with every check but the two an API
Gateway HTTP API cannot pass (``EXCLUDED_CHECKS``); ``positive_data_acceptance`` is printed, not
asserted (``OBSERVED_CHECKS``); a "schema-violating request accepted" that the API documents as
its design is dropped by the hooks, counted and printed (a filled honeypot, the open pixel, a
batch of tracked events whose invalid events are listed in ``rejected``). The examples are
shared out by what a request costs the runtime (``COSTLY_OPERATIONS``). Requests are counted
from schemathesis's NDJSON report (every recorded test case, plus its probes): that figure is
the one asserted; the hooks' ``after_call`` count is printed beside it.

**After the run** the runtime is left to settle (stream batches, the journeys the new leads
started) and the Leads, LeadIdentities, Events, Consent, Idempotency, Qualification and
Journeys tables are scanned for what a half-written capture, consent change or CRM update
would leave: each is one DynamoDB transaction, so each rule in ``check_tables`` must hold.

**Fails** on fewer requests than the size asks for, any 5xx or unanswered request, any failure
of an asserted check, a schemathesis error, or any broken rule.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tests.conftest import ROOT
from tests.journeys.harness import Runtime, import_lead
from tests.proof import ProofResult
from tsunagu import services
from tsunagu.clock import parse_instant
from tsunagu.commands.sites import rotate_signing_secret
from tsunagu.leads.capture import FORM_SUBMITTED
from tsunagu.leads.email import InvalidEmail, normalise_email
from tsunagu.leads.model import (
    email_identity,
)
from tsunagu.tracking.tokens import TokenKind, TrackingToken

TITLE = "api: schemathesis against every public operation"
SCHEMATHESIS = ROOT / ".venv-proof" / "bin" / "schemathesis"
OPENAPI = ROOT / "docs" / "openapi.yaml"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
CLOCK_START = "2026-12-07T00:00:00Z"
SEED = 20261207
"""Fixed, so two runs send the same requests (the hooks' choices follow the cases)."""
LEAD_IMPORTED = "lead_imported"
FOREIGN_ORIGIN = "https://www.example.com"
"""An origin neither the demo form nor the demo site is registered for."""

EXCLUDED_CHECKS = {
    "unsupported_method": "a method without a route gets API Gateway HTTP API's own 404 "
    '{"message":"Not Found"} (tried: TRACE, PUT, PATCH, DELETE... all 404): HTTP APIs never '
    "answer 405, and the local gateway copies that",
    "allow_header_conformance": "follows from the same: no 405, so no Allow header to check",
}
"""Schemathesis checks that cannot hold for an API Gateway HTTP API, and why."""

OBSERVED_CHECKS = {
    "positive_data_acceptance": "schema-valid is not always valid here: which fields a form "
    "requires, which addresses are deliverable and which ids exist is registered data the "
    "schema cannot state, and OpenAPI 3.0 has no propertyNames for the 1-64 character field "
    "names; its refusals (400/422 to schema-valid data) are printed, not asserted",
}
"""Checks that run and are printed, but do not decide whether the section holds."""


@dataclass(frozen=True)
class RunSize:
    max_examples: int
    """Schemathesis's examples per operation in the fuzzing phase..."""
    middling_examples: int
    """...for the operations in MIDDLING_OPERATIONS..."""
    costly_examples: int
    """...and for those in COSTLY_OPERATIONS."""
    workers: int
    leads: int
    """Leads imported before the run: tokens and CRM reports name them."""
    messages_per_lead: int
    """Mails each of them was sent, as far as the signed tokens say."""
    submitter_addresses: int
    """How many e-mail addresses the generated submissions are given."""
    source_addresses: int
    """Loopback client addresses the connections come from, in turn."""
    minimum_requests: int
    timeout_seconds: float
    """A bound for a stuck run, not a measure of the product."""


COSTLY_OPERATIONS = (
    "submitForm",
    "openPixel",
    "followMailLink",
    "checkMailLink",
    "unsubscribeFromMail",
)
"""Operations whose valid requests set work going on the runtime (a new lead starts the welcome
journey, a person's click a Step Functions execution, an open or an unsubscribe the scoring and
journey rules on the events stream): 60 to 160 ms of the runtime's time a request."""
MIDDLING_OPERATIONS = ("trackEvents", "showMailPreferences")
"""40 to 50 ms a request; the rest (the preflights, the CRM webhook, mostly refusals) 5 to 25.
The runtime is one process bound to one core: the examples are shared out by cost so that
10,000 requests fit in about ten minutes, every operation getting hundreds."""

FULL = RunSize(
    max_examples=2000,
    middling_examples=1000,
    costly_examples=400,
    workers=3,
    leads=120,
    messages_per_lead=6,
    submitter_addresses=80,
    source_addresses=200,
    minimum_requests=10_000,
    timeout_seconds=2400,
)
QUICK = RunSize(
    max_examples=5,
    middling_examples=5,
    costly_examples=5,
    workers=2,
    leads=12,
    messages_per_lead=4,
    submitter_addresses=20,
    source_addresses=20,
    minimum_requests=200,
    timeout_seconds=240,
)


# ---------------------------------------------------------------- before the run
def import_leads(runtime: Runtime, count: int) -> list[dict[str, str]]:
    """Leads the signed tokens and CRM reports name, imported as an attendee list is (the
    journey tests' way: one capture transaction with a ``lead_imported`` event and marketing
    consent, and here a visitor id the tracked events can carry).

    Imported, not posted through the form: a new lead from a form starts the welcome journey,
    close to a second of the runtime's time each, and these must be many, because the clock
    stands still and each click reads the lead's whole event history."""
    leads = []
    for n in range(count):
        address = normalise_email(f"proof.lead{n:03d}@{'example.jp' if n % 2 else 'example.com'}")
        visitor_id = f"v_proof_lead_{n:04d}"
        lead_id = import_lead(
            runtime,
            address.address,
            f"Proof Lead {n}",
            visitor_id=visitor_id,
            consent_text="Yes, send me news about products and events by e-mail.",
        )
        leads.append({"lead_id": lead_id, "email": address.address, "visitor_id": visitor_id})
    return leads


def signed_tokens(
    runtime: Runtime, leads: list[dict[str, str]], messages_per_lead: int
) -> dict[str, list[str]]:
    """Open, click and unsubscribe tokens of mails to each lead, signed with the stack's key as
    send_email signs them, for mails sent an hour before the runtime's clock.

    Many mails per lead, because the clock stands still: every click of one mail then falls in
    the same burst window, and each click re-judges every earlier click of that mail (one
    update each, see tracking.mail_activity.follow_link), so thousands of clicks on a few mails
    would cost the runtime quadratic time and measure nothing the API does."""
    signer = services.token_signer(runtime.settings)
    sent_at = int((parse_instant(CLOCK_START) - timedelta(hours=1)).timestamp())
    tokens: dict[str, list[str]] = {"open": [], "click": [], "unsubscribe": []}
    for n, lead in enumerate(leads):
        for m in range(messages_per_lead):
            mail = {"message_id": f"msg_proof_{n:03d}_{m:03d}", "lead_id": lead["lead_id"]}
            tokens["open"].append(
                signer.sign(TrackingToken(kind=TokenKind.OPEN, sent_at=sent_at, **mail))
            )
            for link_id in ("cta", "more"):
                destination = f"https://www.example.com/proof/{n}/{m}/{link_id}?utm_source=tsunagu"
                tokens["click"].append(
                    signer.sign(
                        TrackingToken(
                            kind=TokenKind.CLICK,
                            sent_at=sent_at,
                            url=destination,
                            link_id=link_id,
                            **mail,
                        )
                    )
                )
            if m < 2:
                tokens["unsubscribe"].append(
                    signer.sign(
                        TrackingToken(
                            kind=TokenKind.UNSUBSCRIBE, sent_at=sent_at, topic="marketing", **mail
                        )
                    )
                )
    return tokens


def write_fixtures(runtime: Runtime, size: RunSize, workdir: Path) -> Path:
    """What the hooks need from the running product, as JSON (they cannot import it)."""
    leads = import_leads(runtime, size.leads)
    demo_form = services.form_repository(runtime.settings).get("demo")
    if demo_form is None:
        raise AssertionError("the runtime has no demo form")
    fixtures = {
        "form_id": "demo",
        "site_id": "demo",
        "allowed_origin": runtime.api_url,
        "foreign_origin": FOREIGN_ORIGIN,
        "busy_email": "proof.busy@example.jp",
        "submitter_emails": [
            f"proof.{n:04d}@{'example.jp' if n % 2 else 'example.com'}"
            for n in range(size.submitter_addresses)
        ],
        "lead_emails": [lead["email"] for lead in leads],
        "visitor_ids": [lead["visitor_id"] for lead in leads],
        "crm_ids": [f"proof-crm-{n:03d}" for n in range(size.leads)],
        "tokens": signed_tokens(runtime, leads, size.messages_per_lead),
        "crm_signing_key": services.crm_signing_key(runtime.settings).decode(),
        # The demo site's server signs tracked events with its secret, on the runtime's clock
        # (which stands still while the run keeps the runtime busy)
        "site_signing_secret": rotate_signing_secret(
            services.site_commands(runtime.settings), services.operator(runtime.settings), "demo"
        ).secret,
        "site_signing_time": int(services.clock(runtime.settings).now().timestamp()),
        "honeypot_field": demo_form.honeypot_field,
        "source_addresses": size.source_addresses,
        "calls_path": str(workdir / "calls.json"),
    }
    path = workdir / "fixtures.json"
    path.write_text(json.dumps(fixtures, indent=1, ensure_ascii=False))
    return path


# ---------------------------------------------------------------- the run
NEGATIVE_DATA_REFUSALS = (400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429)
"""What counts as refusing schema-violating data: schemathesis's default list and 413, which the
API documents for a body over its size limit and for more than 50 tracked events. (5xx stays in
the list, as in schemathesis's default: a 5xx is not_a_server_error's to report.)"""


def write_config(size: RunSize, workdir: Path) -> Path:
    """Schemathesis's configuration: what the command line cannot say (per-operation example
    counts, the statuses that refuse schema-violating data)."""
    statuses = ", ".join(f'"{status}"' for status in [*NEGATIVE_DATA_REFUSALS, "5xx"])
    lines = [
        "[generation]",
        f"max-examples = {size.max_examples}",
        "",
        "[checks.negative_data_rejection]",
        f"expected-statuses = [{statuses}]",
    ]
    tiers = [
        (MIDDLING_OPERATIONS, size.middling_examples),
        (COSTLY_OPERATIONS, size.costly_examples),
    ]
    for operations, examples in tiers:
        for operation_id in operations:
            lines += [
                "",
                "[[operations]]",
                f'include-operation-id = "{operation_id}"',
                f"generation.max-examples = {examples}",
            ]
    path = workdir / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis_command(
    runtime: Runtime,
    config: Path,
    report_dir: Path,
    *,
    workers: int,
    seed: int,
    chosen: list[str],
) -> list[str]:
    """Schemathesis's command line, the same for the public and the admin sections but for
    ``chosen``: which operations, and anything they need (a token, example counts)."""
    return [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        str(OPENAPI),
        "--url",
        runtime.api_url,
        *chosen,
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        str(workers),
        "--seed",
        str(seed),
        "--continue-on-failure",
        "--request-timeout",
        "30",
        # A new connection, from the next loopback address, for every request (see the hooks).
        "--header",
        "Connection: close",
        "--generation-database",
        "none",
        "--report",
        "ndjson,junit",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]


def run_schemathesis(
    runtime: Runtime, size: RunSize, workdir: Path, fixtures: Path
) -> subprocess.CompletedProcess[str]:
    report_dir = workdir / "report"
    command = schemathesis_command(
        runtime,
        write_config(size, workdir),
        report_dir,
        workers=size.workers,
        seed=SEED,
        # The admin routes need a signed-in user's token: admin_api.py's section signs in.
        chosen=["--exclude-tag", "admin"],
    )
    return run_schemathesis_command(command, workdir, fixtures, size.timeout_seconds)


def run_schemathesis_command(
    command: list[str], workdir: Path, fixtures: Path, timeout_seconds: int
) -> subprocess.CompletedProcess[str]:
    """Schemathesis run with the hooks and their fixtures; what it printed is kept in
    ``schemathesis.out``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "TSUNAGU_", "PYTHON", "VIRTUAL_ENV"))
    }
    environment.update(
        {
            "SCHEMATHESIS_HOOKS": str(HOOKS),
            "TSUNAGU_PROOF_API_FIXTURES": str(fixtures),
            "PYTHONUNBUFFERED": "1",
        }
    )
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired as stuck:
        # Killed: what it reported so far is read, and the exit code says it did not finish.
        output = f"{_text(stuck.stdout)}{_text(stuck.stderr)}\n(killed after {stuck.timeout} s)"
        done = subprocess.CompletedProcess(command, returncode=-9, stdout=output, stderr="")
    (workdir / "schemathesis.out").write_text(done.stdout + done.stderr)
    return done


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


# ---------------------------------------------------------------- what schemathesis reported
@dataclass
class RunReport:
    """Schemathesis's NDJSON report, summed up, and what the hooks counted beside it."""

    answers: Counter[tuple[str, str]]
    """(operation, status) of every request the report recorded ("no answer" for none)."""
    probes: int
    """Requests of schemathesis's probing phase (what the server accepts), before the tests."""
    failures: Counter[tuple[str, str]]
    """(check, operation) of every check that failed."""
    failure_kinds: dict[tuple[str, str], Counter[str]]
    """(check, operation) -> the first line of each distinct failure's detail, and how often."""
    checks_run: Counter[str]
    errors: list[str]
    hook_answers: Counter[tuple[str, str]]
    dropped: list[dict[str, Any]]
    honeypot_lead_ids: list[str]
    submissions: list[dict[str, Any]]
    """Each accepted submission that sent a submission_id: form_id, submission_id, email and
    the lead_id its caller was given (None for a page), as the hooks saw them."""

    @property
    def requests(self) -> int:
        return sum(self.answers.values()) + self.probes

    def answered(self, operation: str, status: int) -> int:
        return self.answers[(operation, str(status))]


def _events(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            event: dict[str, Any] = json.loads(line)
            yield from event.items()


def _failure_detail(failure: dict[str, Any]) -> str:
    """What makes one failure of a check different from another: the components schemathesis
    says were invalid, or the message's first line."""
    lines = str(failure.get("message", "")).splitlines()
    for n, line in enumerate(lines):
        if line.startswith("Invalid component:"):
            first = line.removeprefix("Invalid component:").strip()
            more = [item.strip().removeprefix("- ") for item in lines[n + 1 :] if item.strip()]
            return "; ".join(part for part in [first, *more] if part)
    return lines[0] if lines else str(failure.get("title", ""))


def _answer_detail(interaction: dict[str, Any] | None) -> str:
    """The status and the start of the answer's message: why valid-looking data was refused."""
    response = (interaction or {}).get("response") or {}
    content = response.get("content")
    text = ""
    if isinstance(content, dict) and "$base64" in content:
        text = base64.b64decode(content["$base64"]).decode("utf-8", "replace")
    try:
        answer = json.loads(text)
        message = str(answer.get("message") or answer.get("rejected", [{}])[0].get("errors"))
    except (ValueError, AttributeError, IndexError, TypeError):
        message = " ".join(re.sub(r"<[^>]+>", " ", text).split())  # a page: its words
    return f"{response.get('status_code')} {message.strip()[:70]}"


def read_report(workdir: Path) -> RunReport:
    ndjson = sorted((workdir / "report").glob("ndjson-*.ndjson"))
    if not ndjson:
        raise AssertionError(f"schemathesis wrote no NDJSON report:\n{_output_tail(workdir)}")
    answers: Counter[tuple[str, str]] = Counter()
    failures: Counter[tuple[str, str]] = Counter()
    kinds: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    checks_run: Counter[str] = Counter()
    errors: list[str] = []
    probes = 0
    for kind, event in _events(ndjson[-1]):
        if kind == "ScenarioFinished":
            recorder = event["recorder"]
            label = recorder["label"]
            interactions = recorder.get("interactions", {})
            for interaction in interactions.values():
                response = interaction.get("response")
                answers[(label, str(response["status_code"]) if response else "no answer")] += 1
            for case_id, checks in recorder.get("checks", {}).items():
                for check in checks:
                    checks_run[check["name"]] += 1
                    if check["status"] == "failure":
                        failures[(check["name"], label)] += 1
                        if check["name"] in OBSERVED_CHECKS:
                            detail = _answer_detail(interactions.get(case_id))
                        else:
                            detail = _failure_detail(
                                check.get("failure_info", {}).get("failure", {})
                            )
                        kinds[(check["name"], label)][detail] += 1
        elif kind == "PhaseFinished" and event["phase"]["name"] == "probing":
            probes += len((event.get("payload") or {}).get("probes", []))
        elif kind in ("NonFatalError", "FatalError"):
            errors.append(f"{kind}: {json.dumps(event)[:500]}")
    calls_path = workdir / "calls.json"
    if calls_path.exists():
        calls = json.loads(calls_path.read_text())
    else:  # schemathesis was killed before its hooks could write what they counted
        calls = {"answers": [], "dropped_failures": [], "honeypot_lead_ids": [], "submissions": []}
        errors.append("the hooks wrote no counts (schemathesis did not exit normally)")
    hook_answers = Counter(
        {(row["operation"], row["status"]): int(row["count"]) for row in calls["answers"]}
    )
    return RunReport(
        answers=answers,
        probes=probes,
        failures=failures,
        failure_kinds=dict(kinds),
        checks_run=checks_run,
        errors=errors,
        hook_answers=hook_answers,
        dropped=list(calls["dropped_failures"]),
        honeypot_lead_ids=list(calls["honeypot_lead_ids"]),
        submissions=list(calls["submissions"]),
    )


def _output_tail(workdir: Path, characters: int = 3000) -> str:
    path = workdir / "schemathesis.out"
    return path.read_text()[-characters:] if path.exists() else "(no output)"


# ---------------------------------------------------------------- half-written records
_deserializer = TypeDeserializer()


def scan(runtime: Runtime, table: str) -> list[dict[str, Any]]:
    """Every item of a table, as plain Python values."""
    items: list[dict[str, Any]] = []
    for page in runtime.client("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            try:
                items.append({key: _deserializer.deserialize(v) for key, v in item.items()})
            except TypeError as error:
                # A stored item DynamoDB's own types cannot read: a finding, shown whole
                problem = f"{table}: an item that cannot be read ({error}): {item}"
                raise AssertionError(problem) from None
    return items


@dataclass
class Invariant:
    """One rule a whole write keeps: how many records it was checked on, which broke it."""

    rule: str
    checked: int = 0
    broken: list[str] | None = None

    def check(self, holds: bool, what: str) -> None:
        self.checked += 1
        if not holds:
            self.broken = [*(self.broken or []), what]


def _lead_of(subject: str) -> str | None:
    return subject.removeprefix("lead#") if subject.startswith("lead#") else None


def check_tables(runtime: Runtime, report: RunReport) -> tuple[list[Invariant], dict[str, int]]:
    """The rules a half-written capture, consent change or CRM update would break.

    Each of these writes is one DynamoDB transaction (LeadRepository.commit_capture,
    MailRepository.change_consents, CrmRepository.save_crm_sync): a lead comes with the identity
    that claims its address, its ``form_submitted`` event, its consent evidence when the box was
    ticked, the remembered ``submission_id`` and one hit on each rate-limit counter; a consent
    change with its evidence, the topic's state and a ``consent_changed`` event; a CRM update
    with its replay guard, the CRM identity, the lead and its events."""
    settings = runtime.settings
    leads = {item["lead_id"]: item for item in scan(runtime, settings.leads_table)}
    identities = scan(runtime, settings.lead_identities_table)
    events = scan(runtime, settings.events_table)
    consent = scan(runtime, settings.consent_table)
    remembered = scan(runtime, settings.idempotency_table)
    qualification = scan(runtime, settings.qualification_table)
    journeys = scan(runtime, settings.journeys_table)

    lead_events = [event for event in events if _lead_of(event["subject"])]
    submitted = [event for event in lead_events if event["type"] == FORM_SUBMITTED]
    created = Counter(
        _lead_of(event["subject"])
        for event in lead_events
        if event["type"] in (FORM_SUBMITTED, LEAD_IMPORTED)
    )
    by_identity = {item["identity"]: item["lead_id"] for item in identities}

    whole = Invariant("every lead has what a capture writes (email, stage, times, source, version)")
    claimed = Invariant("every lead's address is claimed by an email identity pointing at it")
    with_event = Invariant(
        "every lead has the event its creation wrote (form_submitted; lead_imported before the run)"
    )
    for lead_id, lead in leads.items():
        whole.check(
            all(lead.get(name) for name in ("email", "stage", "created_at", "updated_at"))
            and bool(lead.get("sources"))
            and lead.get("version") is not None,
            lead_id,
        )
        identity = email_identity(normalise_email(str(lead.get("email", ""))).identity_key)
        claimed.check(by_identity.get(identity) == lead_id, lead_id)
        with_event.check(created[lead_id] > 0, lead_id)

    pointing = Invariant("every identity (email, visitor, crm) points at an existing lead")
    for item in identities:
        pointing.check(item["lead_id"] in leads, item["identity"])

    belongs = Invariant("every event of a lead (lead#...) belongs to an existing lead")
    for event in lead_events:
        belongs.check(
            _lead_of(event["subject"]) in leads
            and event.get("lead_id") in (None, _lead_of(event["subject"])),
            f"{event['subject']} {event['type']}",
        )

    counters = {"address": 0, "client": 0}
    for item in remembered:
        for scope in counters:
            if str(item["key"]).startswith(f"rate#{scope}#"):
                counters[scope] += int(item["hits"])
    counted = Invariant(
        "one hit on the address and on the client counter per stored submission, none otherwise"
        f" ({counters['address']} and {counters['client']} hits, {len(submitted)} submissions)"
    )
    for scope, hits in counters.items():
        counted.check(hits == len(submitted), f"{scope} counters: {hits} hits")

    replayable = Invariant(
        "every remembered submission_id answers what its callers were given (a retry the first"
        " body), and the lead its address names holds its form_submitted event; the answer names"
        " that lead if the submission created it, and no lead otherwise"
    )
    holders: defaultdict[tuple[str, str], set[str | None]] = defaultdict(set)
    for event in submitted:
        properties = event.get("properties", {})
        holders[(properties.get("form_id"), properties.get("submission_id"))].add(
            _lead_of(event["subject"])
        )
    given: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for answered in report.submissions:
        given[f"form:{answered['form_id']}:{answered['submission_id']}"].append(answered)
    remembered_forms = {str(item["key"]): item for item in remembered}
    for key in given:
        replayable.check(key in remembered_forms, f"{key}: answered as accepted, not remembered")
    for key, item in remembered_forms.items():
        if not key.startswith("form:"):
            continue
        response = (
            json.loads(item["response"]) if isinstance(item["response"], str) else item["response"]
        )
        _, form_id, submission_id = key.split(":", 2)
        (holder, *others) = holders.get((form_id, submission_id)) or {None}
        replayable.check(holder in leads and not others, f"{key}: held by {holder} {others}")
        replayable.check(
            response["lead_id"] == holder
            if response["created"]
            else response["lead_id"] not in leads,
            f"{key}: answered {response}, the submission's lead is {holder}",
        )
        for answered in given.get(key, []):
            replayable.check(
                answered["lead_id"] in (None, response["lead_id"]),
                f"{key}: a caller was given {answered['lead_id']}, remembered {response}",
            )
            try:
                identity = email_identity(normalise_email(answered["email"]).identity_key)
            except InvalidEmail:
                identity = f"(not an address: {answered['email']!r})"
            replayable.check(
                by_identity.get(identity) == holder, f"{key}: {identity} is not {holder}'s"
            )

    consent_of_lead = Invariant("every consent record belongs to an existing lead")
    backed = Invariant("every topic state names evidence the lead has")
    evidence_ids = {
        (item["lead_id"], str(item["record"]).rsplit("#", 1)[-1])
        for item in consent
        if str(item["record"]).startswith("evidence#")
    }
    for item in consent:
        consent_of_lead.check(item["lead_id"] in leads, f"{item['lead_id']} {item['record']}")
        if str(item["record"]).startswith(("topic#", "pending#")):
            backed.check(
                (item["lead_id"], item.get("evidence")) in evidence_ids,
                f"{item['lead_id']} {item['record']}",
            )
    ticked = Counter(
        _lead_of(event["subject"])
        for event in submitted
        if event.get("properties", {}).get("consent_given")
    )
    from_forms = Counter(
        item["lead_id"]
        for item in consent
        if str(item["record"]).startswith("evidence#") and item.get("form_id")
    )
    changed = Counter(
        _lead_of(event["subject"]) for event in lead_events if event["type"] == "consent_changed"
    )
    by_link = Counter(
        item["lead_id"]
        for item in consent
        if str(item["record"]).startswith("evidence#")
        and item.get("method") in ("one_click", "preferences")
    )
    evidenced = Invariant(
        "consent evidence per lead: one per ticked form, one per consent_changed event"
    )
    for lead_id in set(ticked) | set(from_forms) | set(changed) | set(by_link):
        evidenced.check(
            ticked[lead_id] == from_forms[lead_id],
            f"{lead_id}: {ticked[lead_id]} ticked forms, {from_forms[lead_id]} form evidence",
        )
        evidenced.check(
            changed[lead_id] == by_link[lead_id],
            f"{lead_id}: {changed[lead_id]} consent_changed, {by_link[lead_id]} link evidence",
        )

    replays = [item for item in qualification if str(item["pk"]).startswith("replay#")]
    crm_applied = Invariant(
        "one CRM replay guard per CRM update answered 200, and its CRM id points at the lead"
    )
    crm_applied.check(
        len(replays) == report.answered("POST /crm/leads", 200),
        f"{len(replays)} replay guards, {report.answered('POST /crm/leads', 200)} answers 200",
    )
    for lead_id, lead in leads.items():
        crm_id = (lead.get("fields") or {}).get("crm_id")
        if crm_id:
            crm_applied.check(by_identity.get(f"crm:{crm_id['value']}") == lead_id, lead_id)

    elsewhere = Invariant("every score award and journey entry belongs to an existing lead")
    for item in [*qualification, *journeys]:
        lead_id = _lead_of(str(item["pk"]))
        if lead_id:
            elsewhere.check(lead_id in leads, f"{item['pk']} {item['sk']}")

    honeypot = Invariant("no lead id a filled honeypot was answered with exists")
    for lead_id in report.honeypot_lead_ids:
        honeypot.check(lead_id not in leads, lead_id)

    figures = {
        "leads": len(leads),
        "identities": len(identities),
        "lead events": len(lead_events),
        "form_submitted": len(submitted),
        "visitor events": len(events) - len(lead_events),
        "consent records": len(consent),
        "crm updates": len(replays),
    }
    invariants = [
        whole,
        claimed,
        with_event,
        pointing,
        belongs,
        counted,
        replayable,
        consent_of_lead,
        backed,
        evidenced,
        crm_applied,
        elsewhere,
        honeypot,
    ]
    return invariants, figures


# ---------------------------------------------------------------- the section
def run(*, quick: bool, workdir: Path) -> ProofResult:
    size = QUICK if quick else FULL
    result = ProofResult(TITLE)
    if not SCHEMATHESIS.exists():
        result.fail(f"{SCHEMATHESIS} is missing: run `make .venv-proof/.installed`")
        return result
    runtime = Runtime.launch("proof-api", workdir / "runtime", clock_start=CLOCK_START)
    try:
        runtime.wait_ready()
        fixtures = write_fixtures(runtime, size, workdir)
        started, cpu_before = time.monotonic(), cpu_seconds(runtime)
        done = run_schemathesis(runtime, size, workdir, fixtures)
        seconds, cpu = time.monotonic() - started, cpu_seconds(runtime) - cpu_before
        report = read_report(workdir)
        runtime.settle()
        invariants, figures = check_tables(runtime, report)
    finally:
        runtime.stop()
    report_run(result, size, report, seconds, cpu)
    report_checks(result, report, done.returncode, workdir)
    report_tables(result, invariants, figures)
    return result


def cpu_seconds(runtime: Runtime) -> float:
    """The runtime process's CPU time so far (Linux): what bounds the run's pace, the runtime
    being one process that Python's lock keeps to one core."""
    fields = Path(f"/proc/{runtime.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report_run(
    result: ProofResult, size: RunSize, report: RunReport, seconds: float, cpu: float
) -> None:
    result.line(
        f"schemathesis {_schemathesis_version()} on docs/openapi.yaml: phases examples, coverage,"
        f" fuzzing; up to {size.max_examples} fuzzing examples per operation"
        f" ({size.middling_examples} for {', '.join(MIDDLING_OPERATIONS)};"
        f" {size.costly_examples} for {', '.join(COSTLY_OPERATIONS)}), {size.workers} workers,"
        f" seed {SEED}; connections from {size.source_addresses} loopback addresses"
    )
    result.line(
        f"requests sent: {report.requests} ({sum(report.answers.values())} test cases recorded in"
        f" schemathesis's NDJSON report + {report.probes} probes) in {seconds:.0f} s"
        f" ({report.requests / max(seconds, 1):.1f}/s)"
    )
    hooked = sum(report.hook_answers.values())
    result.line(f"  counted by the hooks' after_call: {hooked} answered (probes are not calls)")
    result.line(
        f"  the runtime's CPU time meanwhile: {cpu:.0f} s,"
        f" {1000 * cpu / max(report.requests, 1):.0f} ms a request"
    )
    if report.requests < size.minimum_requests:
        result.fail(f"{report.requests} requests, fewer than the {size.minimum_requests} asked for")
    by_operation: dict[str, Counter[str]] = defaultdict(Counter)
    for (operation, status), count in report.answers.items():
        by_operation[operation][status] += count
    result.line("per operation (status: count):")
    for operation in sorted(by_operation, key=lambda label: label.split(" ", 1)[::-1]):
        statuses = by_operation[operation]
        spread = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        result.line(f"  {operation:<40} {sum(statuses.values()):>6}   {spread}")
    server_errors = sum(
        count for (_, status), count in report.answers.items() if status.startswith("5")
    )
    unanswered = sum(
        count for (_, status), count in report.answers.items() if status == "no answer"
    )
    result.line(f"5xx answers: {server_errors}; requests without an answer: {unanswered}")
    if server_errors:
        result.fail(f"{server_errors} answers were 5xx")
    if unanswered:
        result.fail(f"{unanswered} requests got no answer")


def report_checks(result: ProofResult, report: RunReport, returncode: int, workdir: Path) -> None:
    def failures_of(checks: Iterable[str]) -> int:
        return sum(count for (check, _), count in report.failures.items() if check in checks)

    schema = failures_of(["response_schema_conformance"])
    result.line(
        f"response schema violations (response_schema_conformance): {schema} in"
        f" {report.checks_run['response_schema_conformance']} responses checked"
    )
    asserted = sorted(
        name
        for name in report.checks_run
        if name not in OBSERVED_CHECKS and name != "response_schema_conformance"
    )
    result.line(f"other check failures: {failures_of(asserted)} (checks: {', '.join(asserted)})")
    for name, reason in EXCLUDED_CHECKS.items():
        result.line(f"  not run: {name}: {reason}")
    for row in report.dropped:
        result.line(
            f"  accepted by design, not counted as failures: {row['count']} x {row['operation']}:"
            f" {row['reason']}"
        )
    for (check, operation), count in sorted(report.failures.items()):
        kinds = report.failure_kinds[(check, operation)].most_common(6)
        details = "; ".join(f"{detail} ({n})" for detail, n in kinds)
        if check in OBSERVED_CHECKS:
            result.line(f"  printed, not asserted: {check} {count} x {operation}: {details}")
        else:
            result.fail(f"{check} failed {count} times on {operation}: {details}")
    for name, reason in OBSERVED_CHECKS.items():
        result.line(f"  {name}: {reason}")
    for error in report.errors:
        result.fail(f"schemathesis reported an error: {error}")
    # Exit 1 means check failures were found, each judged above; any other exit, or 1 without
    # one, is a run that broke (a hook's exception, a configuration schemathesis refused).
    if returncode not in (0, 1) or (returncode == 1 and not report.failures):
        result.fail(f"schemathesis exited with {returncode}:\n{_output_tail(workdir)}")


def report_tables(
    result: ProofResult, invariants: list[Invariant], figures: dict[str, int]
) -> None:
    result.line(
        "after the run, the tables: "
        + ", ".join(f"{count} {what}" for what, count in figures.items())
    )
    for invariant in invariants:
        broken = invariant.broken or []
        result.line(f"  {invariant.rule}: {invariant.checked} checked, {len(broken)} broken")
        if broken:
            result.fail(f"half-written: {invariant.rule}: {', '.join(broken[:10])}")


def _schemathesis_version() -> str:
    found = sorted(
        (ROOT / ".venv-proof").glob("lib/python*/site-packages/schemathesis-*.dist-info")
    )
    return found[-1].name.removeprefix("schemathesis-").removesuffix(".dist-info") if found else "?"
