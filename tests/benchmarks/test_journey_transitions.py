"""State transitions per lead on each shipped journey's main paths, and what they cost on Step
Functions (goal: at most 12 for seminar_follow_up's longest path).

Every path runs for real: the embedded runtime (``python -m tsunagu_local``, as ``make up``
starts it, with the product's template.yaml and its shipped journeys and templates) runs the
ASL files in moto with the real activity handlers, on virtual time. Each lead reacts the
way its path says - a click, a page view, an open, an attendance - by an event on the lead's
stream, which route_events matches to the waiting execution exactly as in production; a lead
that does not react lets the wait time out. Welcome leads enter through the demo form (the
stream starts welcome_nurture); seminar and re-engagement leads are imported without a form and
entered manually, as the CLI does, so no other journey shares their frequency cap.

Counting rule (how Step Functions Standard bills): one transition for every state entered - the
``*StateEntered`` events of the execution history - plus one for every Retry attempt (a Task
scheduled again within the same state). Cost per 1,000 entries = transitions x 1,000 x
$0.025 / 1,000 transitions (the free tier and Lambda, DynamoDB and SES costs are not included).
The counts are printed, and the goal as met or not; only the path each lead took is asserted.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT
from tests.journeys.harness import Runtime, import_lead
from tests.support.bench_report import BenchReport
from tests.support.runtime import execution_history
from tsunagu import services
from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.ids import new_id
from tsunagu.journeys.lifecycle import enter
from tsunagu.journeys.waits import EventMatch, JourneyWait
from tsunagu.leads.model import LeadEvent
from tsunagu.settings import Settings

TITLE = "journey state transitions per lead (Step Functions Standard)"
PRICE_PER_1000_TRANSITIONS = 0.025
SEMINAR_GOAL = 12
STEP = timedelta(hours=6)
"""The runtime runs on virtual time. The benchmark moves it to the next reaction it knows of (a
wait that is open, plus the lead's delay), and at most six hours at a time, so a wait that opens
during a move gets its reaction at most six hours late (every wait here lasts days)."""
CLOCK_START = "2026-12-06T22:00:00Z"
"""Monday 7 December 2026, 07:00 in Tokyo; setting up the leads takes a few simulated hours."""
RUN_TIMEOUT = 600.0
"""Real seconds: a bound for a broken run only."""
JST = ZoneInfo("Asia/Tokyo")
SITE = "https://www.example.com"


# ---------------------------------------------------------------- the paths
@dataclass(frozen=True)
class Reaction:
    """What the lead does while the execution waits in ``state``."""

    state: str
    label: str
    """Which of the awaited events (its EventMatch label) the lead produces."""
    after: timedelta
    """Simulated time after the wait was registered."""


@dataclass(frozen=True)
class MainPath:
    journey: str
    name: str
    reactions: tuple[Reaction, ...]
    steps: tuple[str, ...]
    """The mails sent and lead updates made, in order: the states named "Send ..." or "Tag ..."
    that the execution must enter for this path."""

    @property
    def imported(self) -> bool:
        return self.journey != "welcome_nurture"


SEMINAR_WAIT = "Wait for a click on the invitation or for attendance"
VISIT_WAIT = "Wait for a visit to the pricing or case-study page"
CLICK_WAIT = "Wait for a click on the second mail"
OPEN_WAIT = "Wait for the third mail to be opened"
FIRST_CLICK_WAIT = "Wait for a click on the we-miss-you mail"
LAST_CLICK_WAIT = "Wait for a click on the last re-engagement mail"
REACT = timedelta(hours=12)

PATHS = (
    MainPath(
        "seminar_follow_up",
        "clicked -> mail A next business morning",
        (Reaction(SEMINAR_WAIT, "clicked", timedelta(hours=4)),),
        ("Send the invitation", "Send mail A"),
    ),
    MainPath(
        "seminar_follow_up",
        "no click in 3 days -> mail B",
        (),
        ("Send the invitation", "Send mail B"),
    ),
    MainPath(
        "seminar_follow_up",
        "attended -> mail C the same day",
        (Reaction(SEMINAR_WAIT, "attended", REACT),),
        ("Send the invitation", "Send mail C"),
    ),
    MainPath(
        "welcome_nurture",
        "pricing / clicked / opened",
        (
            Reaction(VISIT_WAIT, "pricing", REACT),
            Reaction(CLICK_WAIT, "clicked", REACT),
            Reaction(OPEN_WAIT, "opened", REACT),
        ),
        (
            "Send the welcome mail",
            "Tag the lead as interested in pricing",
            "Send the campaign offer",
            "Send the demo invitation",
            "Send the next steps",
        ),
    ),
    MainPath(
        "welcome_nurture",
        "case study / clicked / not opened",
        (Reaction(VISIT_WAIT, "case_study", REACT), Reaction(CLICK_WAIT, "clicked", REACT)),
        (
            "Send the welcome mail",
            "Tag the lead as a case-study reader",
            "Send the detailed material",
            "Send the demo invitation",
            "Send the last welcome mail",
        ),
    ),
    MainPath(
        "welcome_nurture",
        "no visit / no click / opened",
        (Reaction(OPEN_WAIT, "opened", REACT),),
        (
            "Send the welcome mail",
            "Send the getting-started guide",
            "Send the customer stories",
            "Send the next steps",
        ),
    ),
    MainPath(
        "welcome_nurture",
        "no visit / no click / not opened",
        (),
        (
            "Send the welcome mail",
            "Send the getting-started guide",
            "Send the customer stories",
            "Send the last welcome mail",
        ),
    ),
    MainPath(
        "re_engagement",
        "clicked the first mail",
        (Reaction(FIRST_CLICK_WAIT, "clicked", REACT),),
        ("Send the we-miss-you mail", "Tag the lead as re-engaged"),
    ),
    MainPath(
        "re_engagement",
        "clicked the last mail",
        (Reaction(LAST_CLICK_WAIT, "clicked", REACT),),
        (
            "Send the we-miss-you mail",
            "Send the last re-engagement mail",
            "Tag the lead as re-engaged after the last mail",
        ),
    ),
    MainPath(
        "re_engagement",
        "silent through both -> dormant",
        (),
        (
            "Send the we-miss-you mail",
            "Send the last re-engagement mail",
            "Tag the lead as dormant",
        ),
    ),
)


# ---------------------------------------------------------------- the runtime
@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """``make up`` on free ports, fresh, on virtual time; ready once it serves."""
    running = Runtime.launch(
        "journey-transitions",
        tmp_path_factory.mktemp("journey-transitions"),
        clock_start=CLOCK_START,
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


# ---------------------------------------------------------------- leads
def submit_demo_form(runtime: Runtime, email: str, name: str) -> str:
    body = json.dumps(
        {"email": email, "name": name, "company": "Example 株式会社", "consent": True}
    )
    request = urllib.request.Request(
        f"{runtime.api_url}/forms/demo/submissions",
        data=body.encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as response:  # our own loopback runtime
        assert response.status == 201
        lead_id: str = json.loads(response.read())["lead_id"]
    return lead_id


def record(settings: Settings, clock: Clock, lead_id: str, match: EventMatch) -> None:
    """What the lead did, as the tracking endpoints (or `tsunagu leads record`) store it."""
    now = clock.now()
    properties: dict[str, Any] = {"automated": False, "reasons": []}
    if match.message_id is not None:
        properties["message_id"] = match.message_id
    if match.type == "link_clicked":
        properties.update(link_id="l1", url=f"{SITE}/seminar")
    if match.url_contains is not None:
        properties.update(url=f"{SITE}{match.url_contains}", path=match.url_contains)
    if match.type == "seminar_attended":
        properties = {"source": "cli", "seminar": "2026-12"}
    event = LeadEvent(new_id("evt", now), match.type, isoformat(now), lead_id, None, properties)
    services.lead_repository(settings).put_event(event)


# ---------------------------------------------------------------- one lead on one path
@dataclass
class Run:
    path: MainPath
    lead_id: str
    execution_arn: str | None = None
    reacted: set[str] = field(default_factory=set)
    status: str = "RUNNING"
    events: list[dict[str, Any]] = field(default_factory=list)

    def awaits_reaction(self) -> bool:
        """Still running with a reaction of its path to make (or not yet entered)."""
        if self.status != "RUNNING":
            return False
        return self.execution_arn is None or any(
            reaction.state not in self.reacted for reaction in self.path.reactions
        )

    def entered(self) -> list[str]:
        """The states entered, in order."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.events
            if e["type"].endswith("StateEntered")
        ]

    def retries(self) -> int:
        scheduled = sum(1 for e in self.events if e["type"] == "TaskScheduled")
        tasks = sum(1 for e in self.events if e["type"] == "TaskStateEntered")
        return scheduled - tasks

    def transitions(self) -> int:
        return len(self.entered()) + self.retries()

    def steps(self) -> tuple[str, ...]:
        return tuple(s for s in self.entered() if s.startswith(("Send ", "Tag ")))

    def loops(self) -> int:
        """Gate re-checks: deferrals under the frequency cap and parks while paused."""
        return sum(1 for s in self.entered() if s.startswith(("Defer ", "Hold ")))


def timeouts() -> dict[str, int]:
    """Each wait state's TimeoutSeconds, from the ASL files."""
    seconds = {}
    for path in (ROOT / "statemachines").glob("*.asl.json"):
        for name, state in json.loads(path.read_text(encoding="utf-8"))["States"].items():
            if "TimeoutSeconds" in state:
                seconds[name] = int(state["TimeoutSeconds"])
    return seconds


def react(
    runs: list[Run], settings: Settings, clock: Clock, timeout_of: dict[str, int]
) -> datetime | None:
    """Produce each reaction once its wait is registered and its delay has passed; answer when the
    next reaction of an open wait is due, if one is."""
    waits = services.wait_repository(settings)
    next_due: datetime | None = None
    for run in runs:
        if run.execution_arn is None or run.status != "RUNNING":
            continue
        execution = run.execution_arn.rsplit(":", 1)[1]
        registered: list[JourneyWait] = waits.waits_of(run.lead_id)
        for wait in registered:
            name, _, state = wait.wait_id.partition(":")
            reaction = next((r for r in run.path.reactions if r.state == state), None)
            if name != execution or reaction is None or state in run.reacted:
                continue
            registered_at = parse_instant(wait.deadline) - timedelta(seconds=timeout_of[state])
            due = registered_at + reaction.after
            if clock.now() < due:
                next_due = due if next_due is None else min(next_due, due)
                continue
            [match] = [m for m in wait.matches if m.label == reaction.label]
            record(settings, clock, run.lead_id, match)
            run.reacted.add(state)
    return next_due


def finish(runs: list[Run], runtime: Runtime) -> None:
    stepfunctions = runtime.client("stepfunctions")
    for run in runs:
        if run.execution_arn is None or run.status != "RUNNING":
            continue
        run.status = stepfunctions.describe_execution(executionArn=run.execution_arn)["status"]
        if run.status != "RUNNING":
            run.events = execution_history(stepfunctions, run.execution_arn)


# ---------------------------------------------------------------- the report
def dollars(transitions: int) -> str:
    return f"${transitions * 1000 * PRICE_PER_1000_TRANSITIONS / 1000:.3f}"


def jst(instant: datetime) -> str:
    return instant.astimezone(JST).strftime("%a %m-%d %H:%M")


def report_lines(runs: list[Run], runtime: Runtime) -> list[str]:
    header = (
        f"{'journey':<18} {'main path':<40} {'transitions':>11} {'re-checks':>9} "
        f"{'mails':>5} {'$ / 1,000 entries':>17}  {'simulated run (JST)':<22}"
    )
    lines = [
        "transitions = states entered (*StateEntered events of the execution history) + Retry",
        "  attempts (none here); re-checks = Defer/Hold states entered (frequency cap, pause);",
        "  cost per 1,000 entries = transitions x $0.025 (Standard: $0.025 per 1,000",
        "  transitions; free tier, Lambda, DynamoDB and SES not included).",
        f"  Embedded runtime, template.yaml as shipped, virtual time; each lead reacts"
        f" {REACT.total_seconds() / 3600:g} simulated hours",
        "  after its wait opens (the seminar click: 4 hours) with an event on its stream.",
        "",
        header,
        "-" * len(header),
    ]
    for run in runs:
        count = run.transitions()
        mails = sum(1 for s in run.steps() if s.startswith("Send "))
        if run.events:
            first = run.events[0]["timestamp"]  # the runtime stamps history with its clock
            last = run.events[-1]["timestamp"]
            days = (last - first).total_seconds() / 86400
            span = f"{jst(first)} +{days:.1f} d"
        else:
            span = "did not finish"
        status = "" if run.status == "SUCCEEDED" else f"  [{run.status}]"
        lines.append(
            f"{run.path.journey:<18} {run.path.name:<40} {count:>11} {run.loops():>9} "
            f"{mails:>5} {dollars(count):>17}  {span:<22}{status}"
        )
    seminar = [r.transitions() for r in runs if r.path.journey == "seminar_follow_up"]
    longest = max(seminar)
    verdict = "met" if longest <= SEMINAR_GOAL else "NOT met"
    lines += [
        "",
        f"goal: seminar_follow_up's longest main path takes {longest} transitions "
        f"(goal: at most {SEMINAR_GOAL}): {verdict}",
    ]
    for journey in dict.fromkeys(r.path.journey for r in runs):
        counts = [r.transitions() for r in runs if r.path.journey == journey]
        lines.append(
            f"  {journey}: {min(counts)}-{max(counts)} transitions per lead, "
            f"{dollars(min(counts))}-{dollars(max(counts))} per 1,000 entries"
        )
    return lines


# ---------------------------------------------------------------- the benchmark
def test_journey_transitions_per_lead(runtime: Runtime, bench_report: BenchReport) -> None:
    settings = runtime.settings
    clock = services.clock(settings)
    journeys = services.journey_repository(settings)
    runs: list[Run] = []

    # Given a lead for every path: welcome leads fill in the demo form, the others are imported
    for number, path in enumerate(PATHS, start=1):
        email = f"bench{number:02d}@example.jp"
        name = f"ベンチ {number:02d}"
        if path.imported:
            runs.append(Run(path, import_lead(runtime, email, name, tags=())))
        else:
            runs.append(Run(path, submit_demo_form(runtime, email, name)))

    # When the seminar and re-engagement leads are entered by hand (as the CLI does) ...
    for run in runs:
        if not run.path.imported:
            continue
        journey = journeys.get_journey(run.path.journey)
        assert journey is not None, f"{run.path.journey} is not installed"
        result = enter(
            journey,
            run.lead_id,
            cause="manual:benchmark",
            trigger="manual",
            trigger_event_id=None,
            payload={},
            state_machine_arn=services.state_machine_arn(settings, journey),
            store=journeys,
            executions=services.executions(settings),
            clock=clock,
        )
        assert result.entered, result
        run.execution_arn = result.execution_arn

    # ... and every lead reacts as its path says until every execution ends
    timeout_of = timeouts()
    deadline = time.monotonic() + RUN_TIMEOUT
    while any(r.status == "RUNNING" for r in runs) and time.monotonic() < deadline:
        runtime.settle()
        for run in runs:
            if run.execution_arn is None:  # the stream has yet to enter the form lead
                entry = journeys.entry(run.lead_id, run.path.journey)
                run.execution_arn = entry.execution_arn if entry else None
        next_reaction = react(runs, settings, clock, timeout_of)
        finish(runs, runtime)
        if any(run.awaits_reaction() for run in runs):
            step_end = runtime.now() + STEP
            if next_reaction is not None and next_reaction < step_end:
                runtime.advance_to(next_reaction)
            else:
                runtime.advance_to(step_end)
        else:
            # No lead has anything left to do: the rest of every journey runs by itself, and
            # virtual time gives it the same instants however far the clock is moved at once.
            runtime.run_until_idle()
    finish(runs, runtime)
    for run in runs:
        if run.status == "RUNNING" and run.execution_arn is not None:
            runtime.client("stepfunctions").stop_execution(executionArn=run.execution_arn)
            run.events = execution_history(runtime.client("stepfunctions"), run.execution_arn)

    # Then the report, and each lead took its path
    bench_report.add(TITLE, *report_lines(runs, runtime))
    for run in runs:
        assert run.status == "SUCCEEDED", (run.path.name, run.status, runtime.output()[-3000:])
        assert run.steps() == run.path.steps, (run.path.name, run.entered())
