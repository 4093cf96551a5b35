"""Report counters: what keeping them costs, and how fast a report reads them.

- **Writes per counted event**: a synthetic history (sends by a journey, people's and machines'
  opens, clicks held and settled, a scanner's bursts, decisions, form posts) is written to the
  events table, and report_events gets the events stream's records in batches of 100, as Lambda
  hands them, twice (the second time as a redelivery). Every botocore request is counted (moto
  in-process); the goal, <= 1 write request per counted event on average, is printed as met or
  not met, never asserted.
- **A 90-day journey report with 50,000 leads and 200,000 mails**, on the local runtime: the
  counter rows that history makes (worked out by the counting code itself over the synthetic
  events, in memory, then written to the runtime's reports table) are read by
  ``GET /admin/reports/journeys/{journey}`` over HTTP with a signed-in user's token; the median
  of several requests against the goal of 1 s.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.benchmarks.test_aws_requests import recording_aws_calls
from tests.conftest import AwsStack, moto_client
from tests.support.bench_report import QUICK, BenchReport
from tests.support.leads import new_stream_records
from tests.support.runtime import runtime_in_process
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.leads.model import LeadEvent
from tsunagu.reports.counting import CountedMail, CounterKey, StoredEvent, add, count
from tsunagu_local.people import ADMIN_EMAIL, local_password, sign_in
from tsunagu_local.runtime import LocalRuntime

JST = ZoneInfo("Asia/Tokyo")
WRITES_TITLE = "report counters: write requests per counted event"
REPORT_TITLE = "report counters: a 90-day journey report"
WRITE_GOAL = 1.0
REPORT_GOAL_SECONDS = 1.0
LEADS_WRITTEN = 150 if QUICK else 600
REPORT_LEADS = 5_000 if QUICK else 50_000
REPORT_MAILS = 20_000 if QUICK else 200_000
REPORT_DAYS = 90
ROUNDS = 3 if QUICK else 7
FIRST_DAY = datetime(2026, 9, 3, 9, 0, tzinfo=JST)
SEND_NODES = ("welcome_mail", "case_study", "seminar_invite", "reminder")
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0"


def history(leads: int, mails: int, days: int, seed: int = 7) -> Iterator[LeadEvent]:
    """Sends by welcome_nurture (two versions, four mail nodes) and what followed each: about
    half opened by a person (one to three times), a quarter by Apple's proxy, one in six clicked
    by a person (held, then settled: two records), one in twelve clicked by a scanner's burst,
    a branch decision for each lead, and a form post for one lead in ten."""
    rng = random.Random(seed)
    for n in range(mails):
        lead = f"lead_{n % leads:06d}"
        day = FIRST_DAY + timedelta(days=(n * days) // mails, minutes=n % 600)
        node = SEND_NODES[n % len(SEND_NODES)]
        version = 1 if n < mails // 3 else 2
        message = f"msg_{n:07d}"
        sent = {
            "message_id": message,
            "template_id": node.replace("_", "-"),
            "template_version": version,
            "journey_id": "welcome_nurture",
            "journey_version": version,
            "node": node,
        }
        yield LeadEvent(f"evt_s{n}", "mail_sent", isoformat(day), lead, None, sent)
        roll = rng.random()
        if roll < 0.5:
            for k in range(rng.randint(1, 3)):
                at = isoformat(day + timedelta(hours=2 + k))
                person = {"message_id": message, "automated": False, "reasons": []}
                yield LeadEvent(f"evt_o{n}_{k}", "mail_opened", at, lead, None, person)
        elif roll < 0.75:
            proxy = {"message_id": message, "automated": True, "reasons": ["apple_privacy_proxy"]}
            yield LeadEvent(f"evt_p{n}", "mail_opened", isoformat(day), lead, None, proxy)
        if n % 6 == 0:
            clicked = {"message_id": message, "automated": False, "reasons": [], "link_id": "l1"}
            at = isoformat(day + timedelta(hours=3))
            yield LeadEvent(f"evt_c{n}", "link_clicked", at, lead, None, clicked)
            settled = {**clicked, "settled": True}
            yield LeadEvent(f"evt_c{n}", "link_clicked", at, lead, None, settled)
        if n % 12 == 5:
            for link in ("l1", "l2"):
                burst = {
                    "message_id": message,
                    "automated": True,
                    "reasons": ["link_burst"],
                    "link_id": link,
                }
                yield LeadEvent(
                    f"evt_b{n}{link}", "link_clicked", isoformat(day), lead, None, burst
                )
        if n < leads:
            decision = {
                "journey_id": "welcome_nurture",
                "journey_version": version,
                "node": "clicked",
                "kind": "wait_for",
                "outcome": "clicked" if n % 6 == 0 else "timed_out",
            }
            at = isoformat(day + timedelta(days=3))
            yield LeadEvent(f"dec_{n}", "journey_decision", at, lead, None, decision)
        if n % 10 == 0:
            form = {"form_id": "demo", "fields": {"utm_source": "newsletter"}, "new_lead": True}
            yield LeadEvent(f"evt_f{n}", "form_submitted", isoformat(day), lead, None, form)


def test_counter_writes_per_event(aws: AwsStack, bench_report: BenchReport) -> None:
    leads = services.lead_repository(aws.settings())
    stored = 0
    for event in history(LEADS_WRITTEN, LEADS_WRITTEN * 2, days=3):
        leads.put_event(event)  # the settled click overwrites the held one: a MODIFY record
        stored += 1
    records = new_stream_records(aws, "EventsTable")
    handler = aws.function("report_events")
    labels = {aws.settings().reports_table: "Reports"}
    with recording_aws_calls(labels) as first:
        for start in range(0, len(records), 100):
            handler.invoke({"Records": records[start : start + 100]})
    with recording_aws_calls(labels) as again:
        for start in range(0, len(records), 100):
            handler.invoke({"Records": records[start : start + 100]})
    # Each counted event is marked once: the marks are the exact count.
    counted = sum(
        page["Count"]
        for page in moto_client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=aws.settings().reports_table,
            FilterExpression="begins_with(pk, :mark)",
            ExpressionAttributeValues={":mark": {"S": "event#"}},
            Select="COUNT",
        )
    )
    # Reads: the batches' BatchGetItem, and the journeys' goals (one Scan a minute per container)
    read_ops = {"BatchGetItem", "GetItem", "Query", "Scan"}
    writes = Counter(op for _, op, _ in first.entries if op not in read_ops)
    reads = Counter(op for _, op, _ in first.entries if op in read_ops)
    redelivered = Counter(op for _, op, _ in again.entries)
    per_event = sum(writes.values()) / counted
    batches = -(-len(records) // 100)
    bench_report.add(
        WRITES_TITLE,
        f"{stored:,} event writes for {LEADS_WRITTEN} leads ({LEADS_WRITTEN * 2} mails, 3 days),"
        f" {len(records):,} stream records (a settled click is a second record), {batches}"
        " batches of up to 100" + ("; a quick run: make bench takes 600 leads" if QUICK else ""),
        f"  events counted: {counted:,} (a held click counts once, when it is settled)",
        f"  write requests: {dict(writes)}; read requests: {dict(reads)}",
        f"  writes per counted event: {per_event:.3f}   (goal <= {WRITE_GOAL:.0f}:"
        f" {'met' if per_event <= WRITE_GOAL else 'NOT MET'})",
        f"  the same batches redelivered: {dict(redelivered)} (reads only: nothing counted twice)",
    )
    assert "TransactWriteItems" not in redelivered


# ------------------------------------------------------------------------- the report's time
def counter_rows(leads: int, mails: int) -> dict[CounterKey, dict[str, int]]:
    """The rows the consumer would write for the history: the counting code, in memory."""
    rows: dict[CounterKey, dict[str, int]] = {}
    known: dict[str, CountedMail] = {}
    for event in history(leads, mails, REPORT_DAYS):
        stored = StoredEvent(
            event.event_id, event.type, event.occurred_at, event.lead_id, event.properties
        )
        counted = count(stored, known.get(stored.message_id or ""), JST)
        if counted is None:
            continue
        add(rows, counted)
        if counted.mail is not None:
            known[counted.mail.message_id] = counted.mail
    return rows


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with runtime_in_process("report-bench-", datetime(2026, 12, 2, tzinfo=UTC)) as running:
        yield running


def test_a_90_day_journey_report(runtime: LocalRuntime, bench_report: BenchReport) -> None:
    started = time.perf_counter()
    rows = counter_rows(REPORT_LEADS, REPORT_MAILS)
    counting = time.perf_counter() - started
    journey_rows = {k: v for k, v in rows.items() if k.subject == "journey#welcome_nurture"}
    table = runtime.settings().reports_table
    assert table
    dynamodb = runtime.client("dynamodb")
    items = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": key.subject},
                    "sk": {"S": key.sort_key},
                    **{name: {"N": str(n)} for name, n in metrics.items()},
                }
            }
        }
        for key, metrics in rows.items()
    ]
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={table: items[start : start + 25]})
    token = sign_in(
        runtime.client("cognito-idp"),
        next(iter(runtime.user_pool_clients.values())),
        ADMIN_EMAIL,
        local_password(runtime.options.state_dir),
    )
    last = date(2026, 12, 1)
    first = last - timedelta(days=REPORT_DAYS - 1)
    url = f"{runtime.api_url}/admin/reports/journeys/welcome_nurture?from={first}&to={last}"
    times, answer = [], {}
    for _ in range(ROUNDS):
        request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:  # our loopback runtime
            answer = json.loads(response.read())
        times.append(time.perf_counter() - began)
    assert answer["total"]["counts"]["sent"] == REPORT_MAILS
    median = statistics.median(times)
    bench_report.add(
        REPORT_TITLE,
        f"{REPORT_LEADS:,} leads, {REPORT_MAILS:,} mails by welcome_nurture over {REPORT_DAYS}"
        f" days: {len(journey_rows):,} counter rows for the journey ({len(rows):,} in all),"
        f" worked out by the counting code in {counting:.1f} s"
        + ("; a quick run: make bench takes 50,000 leads and 200,000 mails" if QUICK else ""),
        f"  GET /admin/reports/journeys/welcome_nurture, {REPORT_DAYS} days, on the local runtime:"
        f" median {median:.3f} s of {ROUNDS} ({median / REPORT_GOAL_SECONDS:.2f} of the goal,"
        f" {REPORT_GOAL_SECONDS:.0f} s: {'met' if median <= REPORT_GOAL_SECONDS else 'NOT MET'})",
        f"  the report read {len(journey_rows):,} rows whatever the number of leads or mails;"
        f" {len(answer['parts'])} parts (version x node) in its answer",
    )
