"""Scoring throughput of route_events (issue 6 §6): a stream batch of 100 scored events against
the local store (moto in-process), as a ratio to the floor of simply writing 100 updates to the
same store (100 UpdateItem of a lead attribute; goal <= 2), and AWS requests per scored event
(goal <= 2), with every request route_events makes per event named by operation and by the part
of route_events that made it (scoring, last activity, journeys, journey waits, hand-off).

The stack is wired as the template wires route_events (shipped journeys installed, as on the
local runtime). 20 leads from the demo form each get 5 events per batch: four mail opens and a
page view, written to the events table as the tracking handlers write them. The MQL threshold is
set out of reach for the timed batches; a last batch lowers it so that every lead crosses, to show
what a crossing adds. Times are medians of a few rounds on a warm function; a report, never an
assertion on time.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from tests.benchmarks.test_aws_requests import Recorded, recording_aws_calls
from tests.conftest import REGION, AwsStack
from tests.qualification.conftest import (
    CHROME,
    STAGE_PREFIX,
    Qualified,
    forget_qualification_caches,
    qualify,
)
from tests.support.bench_report import QUICK, BenchReport
from tests.support.shipped import install_shipped_journeys
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.ids import new_id
from tsunagu.journeys.shipped import SHIPPED_JOURNEYS
from tsunagu.journeys.stream import JourneyRouting
from tsunagu.leads.model import LeadEvent
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.scoring import DEFAULT_MODEL
from tsunagu.qualification.stream import QualificationRouting
from tsunagu.store.leads import LeadRepository

TITLE = "route_events scoring throughput (stream batch of 100 events)"
LEADS = 20
OPENS_PER_LEAD = 4
BATCH = LEADS * (OPENS_PER_LEAD + 1)
ROUNDS = 1 if QUICK else 2  # make test takes one round, make bench two
RATIO_GOAL = 2.0
REQUESTS_GOAL = 2.0
OUT_OF_REACH = 100_000
CACHE_REFRESHES = {"GetItem(Qualification)", "Scan(Journeys)"}
"""The rules and the journey definitions, read once per warm container and 30 s."""


# ---------------------------------------------------------------- which part made each call

_phase: list[str] = ["route_events (other)"]


class PhasedEntries(list[tuple[str, str, str]]):
    """The recorder's entries, each remembered with the part of route_events that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.phases: list[str] = []

    def append(self, entry: tuple[str, str, str]) -> None:
        self.phases.append(_phase[-1])
        super().append(entry)


@dataclass
class PhasedRecorded(Recorded):
    entries: list[tuple[str, str, str]] = field(default_factory=PhasedEntries)

    def by_phase(self) -> Counter[tuple[str, str]]:
        phased = self.entries
        assert isinstance(phased, PhasedEntries)
        return Counter(zip(phased.phases, self.calls, strict=True))


def _in_phase(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _phase.append(name)
        try:
            return method(*args, **kwargs)
        finally:
            _phase.pop()

    return wrapped


PHASES: list[tuple[Any, str, str]] = [
    (QualificationRouting, "on_event", "scoring"),
    (QualificationRouting, "on_stage_change", "hand-off start"),
    (JourneyRouting, "on_event", "journeys (enter/leave)"),
    (services.JourneyWaits, "resume_matching", "journey waits"),
    (services.MailConfirmations, "send_confirmation", "double opt-in"),
    (LeadRepository, "record_activity", "last activity"),
]


@pytest.fixture
def phases(monkeypatch: pytest.MonkeyPatch) -> None:
    for owner, name, label in PHASES:
        monkeypatch.setattr(owner, name, _in_phase(label, getattr(owner, name)))


# ---------------------------------------------------------------- the batches


@dataclass
class Bench:
    q: Qualified
    leads: list[str]
    labels: dict[str, str]
    round: int = 0

    def write_events(self, opens: int = OPENS_PER_LEAD, page_view: bool = True) -> None:
        """Per lead: ``opens`` human mail opens and a page view, as the handlers store them."""
        settings = self.q.settings()
        store = services.lead_repository(settings)
        clock = services.clock(settings)
        self.round += 1
        for number, lead_id in enumerate(self.leads):
            kinds: list[tuple[str, dict[str, Any]]] = [
                (
                    "mail_opened",
                    {
                        "message_id": f"msg_r{self.round}_{number}_{n}",
                        "automated": False,
                        "reasons": [],
                        "signals": {"kind": "open", "method": "GET", "user_agent": CHROME},
                    },
                )
                for n in range(opens)
            ]
            if page_view:
                url = f"https://www.example.com/blog/round-{self.round}"
                kinds.append(("page_view", {"site_id": "example-corp", "url": url}))
            for kind, properties in kinds:
                now = clock.now()
                store.put_event(
                    LeadEvent(new_id("evt", now), kind, isoformat(now), lead_id, None, properties)
                )

    def next_batch(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        items = self.q.undelivered()
        return self.q.batch(items), items

    def route(self, batch: dict[str, Any], items: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        result = self.q.route(batch)
        elapsed = time.perf_counter() - started
        assert result == {"batchItemFailures": []}
        self.q.delivered.update((i["subject"]["S"], i["sk"]["S"]) for i in items)
        return elapsed

    def floor(self) -> float:
        """100 UpdateItem of one lead attribute each, same store, one client made beforehand."""
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = self.q.aws.tables["LeadsTable"]
        keys = [self.leads[n % LEADS] for n in range(BATCH)]
        started = time.perf_counter()
        for n, lead_id in enumerate(keys):
            dynamodb.update_item(
                TableName=table,
                Key={"lead_id": {"S": lead_id}},
                UpdateExpression="SET bench_touch = :n",
                ExpressionAttributeValues={":n": {"N": str(n)}},
            )
        return time.perf_counter() - started

    def transaction_floor(self) -> float:
        """100 TransactWriteItems of scoring's shape (a conditional put in Qualification, a put in
        Events, an update of the lead), and nothing else: what the store itself costs."""
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        tables = self.q.aws.tables
        self.round += 1
        written = []
        started = time.perf_counter()
        for n in range(BATCH):
            lead_id = self.leads[n % LEADS]
            subject, sort_key = f"bench#{self.round}", f"{n:04d}"
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": tables["QualificationTable"],
                            "Item": {"pk": {"S": subject}, "sk": {"S": sort_key}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": tables["EventsTable"],
                            "Item": {"subject": {"S": subject}, "sk": {"S": sort_key}},
                        }
                    },
                    {
                        "Update": {
                            "TableName": tables["LeadsTable"],
                            "Key": {"lead_id": {"S": lead_id}},
                            "UpdateExpression": "SET bench_touch = :n",
                            "ConditionExpression": "attribute_exists(lead_id)",
                            "ExpressionAttributeValues": {":n": {"N": str(n)}},
                        }
                    },
                ]
            )
            written.append((subject, sort_key))
        elapsed = time.perf_counter() - started
        self.q.delivered.update(written)  # no lead's: kept off the batches
        return elapsed


@pytest.fixture
def bench(aws: AwsStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    q = qualify(aws, monkeypatch)
    settings = q.settings()
    install_shipped_journeys(settings)
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    for journey in SHIPPED_JOURNEYS:  # registered, never run: a form lead enters welcome_nurture
        stepfunctions.create_state_machine(
            name=f"{STAGE_PREFIX}{journey.state_machine}",
            definition='{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}',
            roleArn="arn:aws:iam::123456789012:role/journeys",
        )
    q.save_config(
        QualificationConfig(
            scoring=DEFAULT_MODEL.model_copy(update={"mql_threshold": OUT_OF_REACH})
        )
    )
    leads = [q.capture(f"reader{n:02d}@example.jp", name=f"読者 {n}") for n in range(LEADS)]
    q.deliver()  # the form submissions: the function imported, rules and journeys cached
    labels = {name: logical_id.removesuffix("Table") for logical_id, name in aws.tables.items()}
    yield Bench(q, leads, labels)
    forget_qualification_caches()


def per_event(counted: Counter[tuple[str, str]], events: int) -> list[str]:
    width = max((len(call) for _, call in counted), default=10)
    return [
        f"    {phase:<24} {call:<{width}} {count / events:>6.2f}"
        for (phase, call), count in sorted(counted.items())
    ]


def test_scoring_throughput(bench: Bench, bench_report: BenchReport, phases: None) -> None:
    q = bench.q
    route_times, follow_times, floor_times, transaction_times = [], [], [], []
    scored_calls: Counter[tuple[str, str]] = Counter()
    follow_calls: Counter[tuple[str, str]] = Counter()
    for _ in range(ROUNDS):
        bench.write_events()
        floor_times.append(bench.floor())
        transaction_times.append(bench.transaction_floor())
        batch, items = bench.next_batch()
        assert len(items) == BATCH
        with recording_aws_calls(bench.labels, PhasedRecorded) as scored:
            route_times.append(bench.route(batch, items))
        scored_calls += scored.by_phase()
        follow, follow_items = bench.next_batch()  # the 100 score_changed route_events wrote
        assert len(follow_items) == BATCH
        assert {i["type"]["S"] for i in follow_items} == {"score_changed"}
        with recording_aws_calls(bench.labels, PhasedRecorded) as followed:
            follow_times.append(bench.route(follow, follow_items))
        follow_calls += followed.by_phase()

    # And a batch in which every lead crosses the threshold (one open each)
    score = float(q.lead(bench.leads[0])["score"])
    q.save_config(
        QualificationConfig(
            scoring=DEFAULT_MODEL.model_copy(update={"mql_threshold": int(score) + 1})
        )
    )
    bench.write_events(opens=1, page_view=False)
    crossing, crossing_items = bench.next_batch()
    with recording_aws_calls(bench.labels, PhasedRecorded) as crossed:
        bench.route(crossing, crossing_items)
    staged, staged_items = bench.next_batch()
    with recording_aws_calls(bench.labels, PhasedRecorded) as handed:
        bench.route(staged, staged_items)

    # Correctness, not speed: every event scored once, every lead crossed once
    assert all(q.lead(lead)["stage"] == "mql" for lead in bench.leads)
    assert len(q.hand_offs()) == LEADS
    assert len(q.awards(bench.leads[0])) == 1 + ROUNDS * (OPENS_PER_LEAD + 1) + 1

    route_ms = statistics.median(route_times) * 1000
    follow_ms = statistics.median(follow_times) * 1000
    floor_ms = statistics.median(floor_times) * 1000
    transaction_ms = statistics.median(transaction_times) * 1000
    ratio = route_ms / floor_ms
    scored_events = ROUNDS * BATCH
    # Judged without the cache refreshes (once per container and 30 s, not per event)
    steady = Counter({k: n for k, n in scored_calls.items() if k[1] not in CACHE_REFRESHES})
    scoring_only = sum(n for (phase, _), n in steady.items() if phase == "scoring") / scored_events
    total = sum(steady.values()) / scored_events
    met = {True: "met", False: "NOT MET"}
    lines = [
        f"{LEADS} leads x ({OPENS_PER_LEAD} mail opens + 1 page view) = {BATCH} events per "
        "batch, every one scored; route_events warm",
        f"(rules and journeys cached); moto in-process; shipped journeys installed; medians of "
        f"{ROUNDS} round(s){'; a quick run: make bench takes 2' if QUICK else ''}.",
        "",
        f"  floor: {BATCH} x UpdateItem(Leads), one attribute        {floor_ms:9.1f} ms",
        f"  route_events, the batch of {BATCH}                       {route_ms:9.1f} ms"
        f"   ratio {ratio:6.2f}  (goal <= {RATIO_GOAL:g}: {met[ratio <= RATIO_GOAL]})",
        f"  store floor: {BATCH} x TransactWriteItems of scoring's shape {transaction_ms:9.1f} ms"
        f"   route_events / this: {route_ms / transaction_ms:.2f}",
        f"  route_events, the {BATCH} score_changed it wrote         {follow_ms:9.1f} ms",
        f"  events per second through route_events: {BATCH / (route_ms / 1000):.1f}"
        f" (floor: {BATCH / (floor_ms / 1000):.0f} updates per second)",
        "  (moto's transactions as the local runtime runs them: rolled back item by item, not",
        "  by copying every table they touch.)",
        "",
        f"AWS requests per scored event: {total:.2f} in all; {scoring_only:.2f} by scoring "
        f"(goal <= {REQUESTS_GOAL:g}: scoring {met[scoring_only <= REQUESTS_GOAL]}, "
        f"route_events in all {met[total <= REQUESTS_GOAL]}); cache refreshes not counted.",
        "  per scored event, by part of route_events and operation:",
        *per_event(scored_calls, scored_events),
        "  per score_changed record it wrote (next batch): "
        + (
            "no request"
            if not follow_calls
            else f"{sum(follow_calls.values()) / scored_events:.2f}"
        ),
        *per_event(follow_calls, scored_events),
        "",
        f"A crossing: {LEADS} leads, one open each, every one crossing the threshold:",
        f"  per crossing event: {len(crossed.calls) / len(crossing_items):.2f} requests",
        *per_event(crossed.by_phase(), len(crossing_items)),
        f"  its follow-up ({len(staged_items)} records: score_changed + stage_changed), "
        f"per lead: {len(handed.calls) / LEADS:.2f}",
        *per_event(handed.by_phase(), LEADS),
        "",
        "GetItem(Qualification) (the rules) and Scan(Journeys) (the journey definitions) are",
        "cache refreshes, once per warm container and 30 s: fractions above when one happened.",
    ]
    bench_report.add(TITLE, *lines)
