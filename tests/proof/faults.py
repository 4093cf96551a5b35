"""``make proof`` - faults: journeys keep their promises while AWS fails the way AWS fails.

What it proves: over at least 1,000 journey runs (one run per lead: 1,000 leads at full size,
12 in the short form), with AWS's own failures injected at random, **no person gets the same
mail twice and no journey step is lost**.

How: the embedded runtime is started as ``make up`` starts it (``python -m tsunagu_local``: the
product's template.yaml, real handlers, the shipped journeys as ASL in moto, DynamoDB streams,
the local SES mailbox) on virtual time, with ``--faults`` (``tsunagu_local.faults``), which
injects at the seams where AWS produces each failure:

- the Lambda API before a Step Functions task's handler runs (429, throttled) and after it has
  run and done its work (500, the answer lost): the state machines' Retry runs the task again;
- the events stream's poller: the function raises after its side effects (Lambda retries the
  batch), crashes part-way through a batch (the first records processed, the batch retried),
  reports a record it did process as failed (retried from there), or a batch that succeeded is
  delivered again (a checkpoint lost);
- SES v2: throttled before it takes the mail (429), and a send it takes whose answer is lost
  (the mail is in the mailbox, the caller gets a 500).

Each lead fills in the demo form (so the stream enters it into ``welcome_nurture``) and is given
one of that journey's four main paths: it visits the pricing or case-study page, clicks, opens,
or does nothing, each reaction recorded as the tracking endpoints record it once its wait is
open (so the stream resumes the waiting execution, faults and all). The clock runs two days at
a time until no reaction is left, then until idle.

The full run shares the leads between runtimes, one per core, each with its own fault seed: a
runtime is one process that runs its handlers one at a time, so one per core is what the machine
can do at once. Counted, from what each runtime holds afterwards: every mail in the local SES
mailbox by recipient and subject (a duplicate: the same mail to the same lead twice); every
execution of the journey with its history (a lost step: an execution that did not succeed, or
whose states entered are not its path's - each "Send ..." and "Tag ..." state exactly once, in
order - or a lead without its path's mails, or a lead entered more than once); executions by
status; the faults injected by kind (``GET /_local/faults``). Real seconds are printed, never
asserted.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tests.journeys.harness import Runtime, submit_demo_form
from tests.proof import ProofResult
from tests.support.runtime import execution_history
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.ids import new_id
from tsunagu.journeys.waits import EventMatch
from tsunagu.leads.model import LeadEvent

TITLE = "faults: 0 duplicate mails, 0 lost journey steps"
JOURNEY = "welcome_nurture"
CLOCK_START = "2026-12-06T22:00:00Z"
"""Monday 7 December 2026, 07:00 in Tokyo."""
FULL_LEADS = int(os.environ.get("TSUNAGU_PROOF_FAULT_LEADS", "1000"))
"""The issue asks for at least 1,000 journey runs; a smaller number only for trying it out."""
QUICK_LEADS = 12
SEED = 20261207
SHARDS = os.cpu_count() or 1
"""Runtimes at once in the full run: one per core."""
FULL_FAULTS = (
    "task_throttled=0.02,task_answer_lost=0.02,handler_raises_after=0.03,"
    "batch_crash_part_way=0.03,batch_partial_failure=0.03,batch_redelivered=0.03,"
    "ses_throttled=0.03,ses_answer_lost=0.01"
)
QUICK_FAULTS = (
    "task_throttled=0.06,task_answer_lost=0.06,handler_raises_after=0.12,"
    "batch_crash_part_way=0.12,batch_partial_failure=0.12,batch_redelivered=0.12,"
    "ses_throttled=0.1,ses_answer_lost=0.08,first=1"
)
"""Higher rates in the short form, and every kind at its first chance: the proof requires each
kind to have fired, and in a run this small a batch of two records (the only chance of
batch_crash_part_way) may come once or twice, as the threads happen to interleave."""
FORMS_PER_MINUTE = 50
"""The demo form takes 60 submissions a minute from one client address (127.0.0.1)."""
STEP = timedelta(days=2)
"""Reactions come at most two days after their wait opened; every wait here lasts 3 or 4."""
HORIZON = timedelta(days=40)
CLOCK_TIMEOUT = 1800.0
"""Real seconds a clock move may take: a bound for a broken run only."""
SITE = "https://www.example.com"
FORM_TIMEOUT = 300.0
"""Real seconds a form post may wait: the runtime is busy with the journeys of the leads before."""

VISIT_WAIT = "Wait for a visit to the pricing or case-study page"
CLICK_WAIT = "Wait for a click on the second mail"
OPEN_WAIT = "Wait for the third mail to be opened"


@dataclass(frozen=True)
class Path_:
    name: str
    reactions: dict[str, str]
    """Wait state -> the label of the awaited event the lead produces there."""
    steps: tuple[str, ...]
    """The "Send ..." and "Tag ..." states the execution must enter, in order."""

    @property
    def mails(self) -> int:
        return sum(1 for step in self.steps if step.startswith("Send "))


PATHS = (
    Path_(
        "pricing / clicked / opened",
        {VISIT_WAIT: "pricing", CLICK_WAIT: "clicked", OPEN_WAIT: "opened"},
        (
            "Send the welcome mail",
            "Tag the lead as interested in pricing",
            "Send the campaign offer",
            "Send the demo invitation",
            "Send the next steps",
        ),
    ),
    Path_(
        "case study / clicked / not opened",
        {VISIT_WAIT: "case_study", CLICK_WAIT: "clicked"},
        (
            "Send the welcome mail",
            "Tag the lead as a case-study reader",
            "Send the detailed material",
            "Send the demo invitation",
            "Send the last welcome mail",
        ),
    ),
    Path_(
        "no visit / no click / opened",
        {OPEN_WAIT: "opened"},
        (
            "Send the welcome mail",
            "Send the getting-started guide",
            "Send the customer stories",
            "Send the next steps",
        ),
    ),
    Path_(
        "no visit / no click / not opened",
        {},
        (
            "Send the welcome mail",
            "Send the getting-started guide",
            "Send the customer stories",
            "Send the last welcome mail",
        ),
    ),
)


@dataclass
class Lead:
    email: str
    path: Path_
    lead_id: str = ""
    reacted: set[str] = field(default_factory=set)
    executions: list[dict[str, Any]] = field(default_factory=list)
    """Each execution of the journey for this lead: arn, status, states entered."""

    def awaits_reaction(self) -> bool:
        return any(state not in self.reacted for state in self.path.reactions)


# ---------------------------------------------------------------- the runtime
def launch(workdir: Path, spec: str) -> Runtime:
    """``make up`` with ``--faults``, fresh, on virtual time, on free ports."""
    runtime = Runtime.launch("faults", workdir, clock_start=CLOCK_START, options=("--faults", spec))
    runtime.wait_ready()
    return runtime


def duplicate_evidence(runtime: Runtime, lead: Lead, mails: list[dict[str, Any]]) -> list[str]:
    """What the runtime holds about a lead that got a mail twice: the mails and the rows."""
    lines = [f"{lead.email} ({lead.lead_id}, path {lead.path.name}):"]
    for mail in mails:
        if lead.email in mail["recipients"]:
            headers = dict(mail["headers"])
            lines.append(
                f"  mailbox: {mail['sent_at']} {headers.get('X-Tsunagu-Message-Id')}"
                f" {mail['subject']}"
            )
    for event in runtime.events(lead.lead_id):
        if event.type.startswith("mail_") and event.type != "mail_opened":
            p = event.properties
            lines.append(
                f"  event {event.occurred_at} {event.type} {p.get('message_id')}"
                f" {p.get('template_id')} key={p.get('idempotency_key')} {p.get('error', '')}"[:400]
            )
    for execution in lead.executions:
        lines.append(f"  execution {execution['arn']} {execution['status']}")
    return lines


def move(runtime: Runtime, body: dict[str, Any]) -> None:
    from tests.support.runtime import move_clock

    move_clock(runtime.api_url, body, timeout=CLOCK_TIMEOUT)


def injected(runtime: Runtime) -> dict[str, Any]:
    status, _, body = runtime.http("GET", "/_local/faults")
    assert status == 200, body[:300]
    answer: dict[str, Any] = json.loads(body)
    return answer


# ---------------------------------------------------------------- what the leads do
def open_waits(runtime: Runtime) -> list[tuple[str, str, tuple[EventMatch, ...]]]:
    """(lead id, wait state, what it waits for) of every registered wait."""
    table = runtime.settings.journey_waits_table
    dynamodb = runtime.client("dynamodb")
    plain = TypeDeserializer()
    waits = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            row = {key: plain.deserialize(value) for key, value in item.items()}
            state = str(row["wait_id"]).partition(":")[2]
            matches = tuple(EventMatch.model_validate(m) for m in row["match"]["any"])
            waits.append((str(row["lead_id"]), state, matches))
    return waits


def record(runtime: Runtime, lead_id: str, match: EventMatch) -> None:
    """What the lead did, as the tracking endpoints store it: an event on the lead's stream."""
    now = runtime.now()
    properties: dict[str, Any] = {"automated": False, "reasons": []}
    if match.message_id is not None:
        properties["message_id"] = match.message_id
    if match.type == "link_clicked":
        properties.update(link_id="l1", url=f"{SITE}/demo")
    if match.url_contains is not None:
        properties.update(url=f"{SITE}{match.url_contains}", path=match.url_contains)
    event = LeadEvent(new_id("evt", now), match.type, isoformat(now), lead_id, None, properties)
    services.lead_repository(runtime.settings).put_event(event)


def react(runtime: Runtime, by_id: dict[str, Lead]) -> int:
    """Each lead whose path reacts at a wait now open reacts; returns how many did."""
    reactions = 0
    for lead_id, state, matches in open_waits(runtime):
        lead = by_id.get(lead_id)
        if lead is None or state in lead.reacted or state not in lead.path.reactions:
            continue
        label = lead.path.reactions[state]
        [match] = [m for m in matches if m.label == label]
        record(runtime, lead_id, match)
        lead.reacted.add(state)
        reactions += 1
    return reactions


def running(runtime: Runtime) -> int:
    stepfunctions = runtime.client("stepfunctions")
    paginator = stepfunctions.get_paginator("list_executions")
    pages = paginator.paginate(
        stateMachineArn=runtime.state_machine_arn(JOURNEY), statusFilter="RUNNING"
    )
    return sum(len(page["executions"]) for page in pages)


# ---------------------------------------------------------------- counting
def collect_executions(runtime: Runtime, by_id: dict[str, Lead]) -> Counter[str]:
    """Every execution of the journey, with its history, given to its lead; by status."""
    stepfunctions = runtime.client("stepfunctions")
    statuses: Counter[str] = Counter()
    for execution in runtime.executions(JOURNEY):
        events = execution_history(stepfunctions, execution["executionArn"])
        started = json.loads(events[0]["executionStartedEventDetails"]["input"])
        entered = [
            e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("Entered")
        ]
        statuses[execution["status"]] += 1
        lead = by_id.get(str(started.get("lead_id")))
        if lead is None:
            continue
        failed = [e for e in events if e["type"] == "ExecutionFailed"]
        lead.executions.append(
            {
                "arn": execution["executionArn"],
                "status": execution["status"],
                "entered": entered,
                "failure": failed[0]["executionFailedEventDetails"] if failed else None,
            }
        )
    return statuses


def lost_steps(lead: Lead, subjects: Counter[str]) -> list[str]:
    """What this lead's run lost: nothing, or why not."""
    if len(lead.executions) != 1:
        return [f"{len(lead.executions)} executions"]
    [execution] = lead.executions
    problems = []
    if execution["status"] != "SUCCEEDED":
        failure = execution["failure"] or {}
        problems.append(
            f"{execution['status']} ({failure.get('error', '')}: {failure.get('cause', '')[:160]})"
        )
    steps = tuple(s for s in execution["entered"] if s.startswith(("Send ", "Tag ")))
    if steps != lead.path.steps:
        missing = [s for s in lead.path.steps if s not in steps]
        problems.append(f"steps {list(steps)}; missing {missing}")
    if len(subjects) != lead.path.mails:
        problems.append(f"{len(subjects)} distinct mails for {lead.path.mails} sends")
    return problems


# ---------------------------------------------------------------- one runtime's share
@dataclass
class Shard:
    """One runtime and the leads it runs; what it found once it has run them."""

    number: int
    leads: list[Lead]
    spec: str
    failures: list[str] = field(default_factory=list)
    reactions: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    mails: list[dict[str, Any]] = field(default_factory=list)
    by_recipient: dict[str, Counter[str]] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    forms_seconds: float = 0.0
    journeys_seconds: float = 0.0


def run_shard(shard: Shard, workdir: Path) -> Shard:
    began = time.monotonic()
    runtime = launch(workdir / f"runtime-{shard.number}", shard.spec)
    try:
        leads = shard.leads
        # Given every lead filling in the demo form (50 a minute: the form's own limit) ...
        for start in range(0, len(leads), FORMS_PER_MINUTE):
            for lead in leads[start : start + FORMS_PER_MINUTE]:
                status, answer = submit_demo_form(
                    runtime, lead.email, "フォールト 太郎", timeout=FORM_TIMEOUT
                )
                if status != 201:
                    shard.failures.append(f"{lead.email}: the form answered {status} {answer}")
                lead.lead_id = str(answer.get("lead_id", ""))
            move(runtime, {"by": 61})
        submitted = time.monotonic()
        by_id = {lead.lead_id: lead for lead in leads if lead.lead_id}
        # ... when each reacts as its path says while AWS fails at random ...
        horizon = runtime.now() + HORIZON
        while runtime.now() < horizon:
            shard.reactions += react(runtime, by_id)
            pending = any(lead.awaits_reaction() for lead in leads)
            if not pending or running(runtime) == 0:
                break
            move(runtime, {"by": STEP.total_seconds()})
        move(runtime, {"until_idle": True})
        shard.forms_seconds = submitted - began
        shard.journeys_seconds = time.monotonic() - submitted
        # ... then what the runtime holds: executions, mails, the faults it injected.
        shard.statuses = collect_executions(runtime, by_id)
        shard.mails = runtime.mail_viewer()
        for mail in shard.mails:
            for recipient in mail["recipients"]:
                shard.by_recipient.setdefault(recipient, Counter())[mail["subject"]] += 1
        shard.faults = injected(runtime)
        for lead in leads:
            subjects = shard.by_recipient.get(lead.email, Counter())
            if any(count > 1 for count in subjects.values()) and len(shard.evidence) < 60:
                shard.evidence += duplicate_evidence(runtime, lead, shard.mails)
    finally:
        runtime.stop()
    return shard


# ---------------------------------------------------------------- the section
def run(*, quick: bool, workdir: Path) -> ProofResult:
    """The leads shared between runtimes, one per core (each runtime runs its handlers one at a
    time, as one process with one environment must), each with its own fault seed."""
    result = ProofResult(TITLE)
    size = QUICK_LEADS if quick else FULL_LEADS
    rates = QUICK_FAULTS if quick else FULL_FAULTS
    shards_wanted = 1 if quick else max(1, min(SHARDS, size))
    began = time.monotonic()
    leads = [
        Lead(f"fault{number:04d}@example.jp", PATHS[number % len(PATHS)]) for number in range(size)
    ]
    shards = [
        Shard(number, leads[number::shards_wanted], f"seed={SEED + number},{rates}")
        for number in range(shards_wanted)
    ]
    with ThreadPoolExecutor(max_workers=len(shards)) as pool:
        done = list(pool.map(lambda shard: run_shard(shard, workdir), shards))
    elapsed = time.monotonic() - began

    statuses: Counter[str] = sum((shard.statuses for shard in done), Counter())
    faults: Counter[str] = Counter()
    for shard in done:
        faults.update(shard.faults["injected"])
        for failure in shard.failures:
            result.fail(failure)
    by_recipient = {k: v for shard in done for k, v in shard.by_recipient.items()}
    mails = sum(len(shard.mails) for shard in done)
    duplicates = sum(count - 1 for subjects in by_recipient.values() for count in subjects.values())
    lost: dict[str, list[str]] = {}
    for lead in leads:
        problems = lost_steps(lead, by_recipient.get(lead.email, Counter()))
        if problems:
            lost[lead.email] = problems
    expected_mails = sum(lead.path.mails for lead in leads)
    result.line(
        f"journey runs: {size} leads through {JOURNEY} ({len(PATHS)} paths), entered by the"
        f" demo form's stream, on {len(done)} runtime(s); "
        f"{sum(shard.reactions for shard in done)} reactions (page views, clicks, opens) by stream"
    )
    result.line(
        f"faults injected (seeds {SEED}..{SEED + len(done) - 1}, {rates}): {sum(faults.values())}"
    )
    for kind, count in faults.items():
        result.line(f"  {kind:<24} {count:>6}")
    result.line(f"mails in the mailbox: {mails} (the paths send {expected_mails})")
    result.line(f"duplicate mails (same lead, same mail, twice or more): {duplicates}")
    result.line(f"leads with lost journey steps: {len(lost)}")
    result.line(
        "executions by status: "
        + (", ".join(f"{status} {count}" for status, count in sorted(statuses.items())) or "none")
    )
    forms = max(shard.forms_seconds for shard in done)
    journeys = max(shard.journeys_seconds for shard in done)
    result.line(
        f"real seconds: {elapsed:.0f} (forms {forms:.0f}, journeys {journeys:.0f}, slowest"
        f" runtime); {elapsed / size:.2f} per journey run"
    )
    if duplicates:
        twice = [
            f"{recipient}: {subject}"
            for recipient, subjects in by_recipient.items()
            for subject, count in subjects.items()
            if count > 1
        ]
        result.fail(f"{duplicates} duplicate mails, e.g. {twice[:3]}")
        for shard in done:
            for line in shard.evidence:
                result.line(line)
    if lost:
        examples = [f"{email}: {'; '.join(problems)}" for email, problems in list(lost.items())[:5]]
        result.fail(f"{len(lost)} leads lost journey steps, e.g.\n    " + "\n    ".join(examples))
    for kind in {kind for shard in done for kind in shard.faults["injected"]}:
        if not faults[kind]:
            result.fail(f"no {kind} fault was injected: the run proves nothing about it")
    if statuses.get("RUNNING"):
        result.fail(f"{statuses['RUNNING']} executions still RUNNING after the clock ran idle")
    return result
