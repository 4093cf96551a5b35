"""The embedded runtime as the journey tests drive it, and what they read back from it.

A journey test starts ``python -m tsunagu_local`` as ``make up`` does (the product's template,
its shipped journeys and templates, on free ports) on **virtual time**: the runtime's clock stands
still while any work is in flight and moves only when the script advances it, everything due on
the way happening at its own simulated instant. So what a test sees never depends on how fast or
loaded the machine is. The tests act the way people and marketers act (the demo form, a click in
a mail, the ``tsunagu`` CLI) and then read what happened from three places: the Step Functions
execution histories (stamped with the runtime's clock), the mails in the mail viewer's store
(``/_local/mail``) and the rows the functions wrote (events, journey entries, parked executions,
waits).

Everything it talks to is on 127.0.0.1. The tests own their processes and stop them by their id.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from tests.conftest import ROOT
from tests.support.runtime import (
    RuntimeState,
    execution_history,
    http_request,
    local_client,
    move_clock,
    runtime_command,
    runtime_environment,
    tsunagu_cli,
    wait_for,
)
from tsunagu import services
from tsunagu.clock import Clock, isoformat, parse_instant
from tsunagu.ids import new_id
from tsunagu.journeys.lifecycle import JourneyEntry, ParkedExecution
from tsunagu.leads.capture import CaptureWrite
from tsunagu.leads.email import normalise_email
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import (
    ConsentEvidence,
    Lead,
    LeadEvent,
    email_identity,
    visitor_identity,
)
from tsunagu.settings import Settings
from tsunagu_local.runtime import free_port

JST = ZoneInfo("Asia/Tokyo")
START_TIMEOUT = 600.0
"""Real seconds the runtime may take to come up: a bound for one that never does (a process that
exits is seen at once). 60 was passed once, under two busy loops and two more runs beside."""
CLOCK_TIMEOUT = 300.0
"""Real seconds to wait for the runtime's work to settle, or for the script to reach a moment: a
bound for a broken run, never a measure of the product (simulated time does not depend on it)."""
PROBE_TIMEOUT = 60.0
"""Real seconds a probe waits once the clock is where it should be."""
STALL_TIMEOUT = 300.0
"""Real seconds a test waits for a scripted world to end one more step: a bound for a script
that stalls, not a measure (one step took 66 s beside two busy loops and other runs)."""
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SCANNER = "python-requests/2.32.3"
SEMINAR = "seminar_follow_up"
WELCOME = "welcome_nurture"
RE_ENGAGEMENT = "re_engagement"


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment given in Tokyo time."""
    return datetime(year, month, day, hour, minute, tzinfo=JST)


# ---------------------------------------------------------------- the running runtime
@dataclass
class Runtime(RuntimeState):
    """One ``tsunagu-local`` process and the ways to talk to it."""

    name: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    state: dict[str, Any] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- start and stop
    @classmethod
    def launch(
        cls, name: str, workdir: Path, *, clock_start: str, options: tuple[str, ...] = ()
    ) -> Runtime:
        """Start it as ``make up`` does, from ``workdir``, with ``options`` added to its command
        line; returns at once (see ``wait_ready``).

        The process runs in Asia/Tokyo on purpose, as a developer's machine here would: the
        runtime must keep its own clock in UTC."""
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "runtime.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                runtime_command(
                    ROOT / "template.yaml",
                    workdir / ".tsunagu",
                    free_port(),
                    "--no-persist",
                    "--clock-start",
                    clock_start,
                    "--virtual-time",
                    *options,
                ),
                cwd=workdir,
                env=runtime_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(name, process, workdir, log_path)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while "Press Ctrl-C" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.name}: tsunagu-local did not start:\n{self.tail()}")
            time.sleep(0.05)
        state_file = self.workdir / ".tsunagu" / "runtime.json"
        self.state = json.loads(state_file.read_text())

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; killed (this process only) if it does not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, characters: int = 4000) -> str:
        return self.output()[-characters:]

    # -- configuration as the functions see it (and api_url, environment: RuntimeState)
    @cached_property
    def settings(self) -> Settings:
        return Settings.from_environ(self.environment)

    @cached_property
    def clock(self) -> Clock:
        return services.clock(self.settings)

    def function_name(self, logical_id: str) -> str:
        name: str = self.state["functions"][logical_id]
        return name

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = local_client(
                    service,
                    region=self.environment["AWS_REGION"],
                    endpoint_url=self.environment["AWS_ENDPOINT_URL"],
                    max_attempts=3,
                )
            return self._clients[service]

    # -- the clock (virtual: it moves only when the script says so)
    def now(self) -> datetime:
        return self.clock.now()

    def _move_clock(self, body: dict[str, Any]) -> dict[str, Any]:
        return move_clock(self.api_url, body, timeout=CLOCK_TIMEOUT)

    def advance_to(self, instant: datetime) -> None:
        """Let the clock run to ``instant``: everything due on the way happens at its own
        simulated instant; returns once the work has settled there."""
        self._move_clock({"to": isoformat(instant)})

    def advance_by(self, delta: timedelta) -> None:
        """Let the clock run on by ``delta`` (see advance_to)."""
        self._move_clock({"by": delta.total_seconds()})

    def run_until_idle(self) -> None:
        """Let the clock run until nothing is left to happen by itself (only schedules)."""
        self._move_clock({"until_idle": True})

    def settle(self) -> None:
        """Wait for the work in flight (a form's stream records, a started journey's first
        mail), time standing still."""
        self._move_clock({"settle": True})

    def wait_for_clock(self, instant: datetime) -> None:
        """Block until the script has moved the clock to ``instant`` and the work there has
        settled (another thread moves it)."""

        def there() -> bool:
            _, _, reply = self.http("GET", "/_local/clock")
            state = json.loads(reply)
            return bool(parse_instant(state["now"]) >= instant and state["settled"])

        wait_for(there, timeout=CLOCK_TIMEOUT, what=f"{self.name}'s clock to reach {instant}")

    def once_at(self, instant: datetime) -> float:
        """A probe's timeout for something due by ``instant``: waits until the clock is there,
        then allows the probe PROBE_TIMEOUT real seconds."""
        self.wait_for_clock(instant)
        return PROBE_TIMEOUT

    # -- people and marketers
    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The ``tsunagu`` command, run from the folder ``make up`` was started in."""
        return tsunagu_cli(self.workdir, *args)

    def cli_ok(self, *args: str) -> str:
        done = self.cli(*args)
        assert done.returncode == 0, f"tsunagu {' '.join(args)}: {done.stderr}{done.stdout}"
        return done.stdout

    def http(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 15,
    ) -> tuple[int, Message, bytes]:
        """Status, headers and body; never follows redirects. ``path`` may be a full URL of
        this runtime's API."""
        url = path if path.startswith("http") else self.api_url + path
        assert url.startswith(self.api_url), url  # only ever our own loopback runtime
        return http_request(method, url, body, headers, timeout=timeout)

    # -- what it stored
    def mail_viewer(self) -> list[dict[str, Any]]:
        """Every mail moto's SES accepted, as the sent-mail viewer lists it (newest first)."""
        status, _, body = self.http("GET", "/_local/mail?format=json")
        assert status == 200, body[:500]
        mails: list[dict[str, Any]] = json.loads(body)
        return mails

    def events(self, lead_id: str) -> list[LeadEvent]:
        """The lead's events, oldest first."""
        found = services.lead_repository(self.settings).events(lead_id, limit=500)
        return sorted(found, key=lambda e: (e.occurred_at, e.event_id))

    def lead(self, lead_id: str) -> Lead:
        lead = services.lead_repository(self.settings).get_lead(lead_id)
        assert lead is not None, lead_id
        return lead

    def entry(self, lead_id: str, journey_id: str) -> JourneyEntry | None:
        return services.journey_repository(self.settings).entry(lead_id, journey_id)

    def parked(self, journey_id: str) -> list[ParkedExecution]:
        return services.journey_repository(self.settings).parked(journey_id)

    def waits_of(self, lead_id: str) -> list[str]:
        return [w.wait_id for w in services.wait_repository(self.settings).waits_of(lead_id)]

    def state_machine_arn(self, journey_id: str) -> str:
        journey = services.journey_repository(self.settings).get_journey(journey_id)
        assert journey is not None, journey_id
        return services.state_machine_arn(self.settings, journey)

    def executions(self, journey_id: str) -> list[dict[str, Any]]:
        paginator = self.client("stepfunctions").get_paginator("list_executions")
        pages = paginator.paginate(stateMachineArn=self.state_machine_arn(journey_id))
        return [e for page in pages for e in page["executions"]]

    def has_ended(self, execution_arn: str) -> bool:
        described = self.client("stepfunctions").describe_execution(executionArn=execution_arn)
        return bool(described["status"] != "RUNNING")

    def wait_ended(self, execution_arn: str, *, timeout: float, what: str) -> History:
        """The execution's history once it has ended."""
        wait_for(lambda: self.has_ended(execution_arn), timeout=timeout, what=what)
        return self.history(execution_arn)

    def history(self, execution_arn: str) -> History:
        stepfunctions = self.client("stepfunctions")
        description = stepfunctions.describe_execution(executionArn=execution_arn)
        events = execution_history(stepfunctions, execution_arn)
        return History(self, execution_arn, description, events)


# ---------------------------------------------------------------- execution histories
@dataclass(frozen=True)
class History:
    runtime: Runtime
    execution_arn: str
    description: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def status(self) -> str:
        status: str = self.description["status"]
        return status

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def states(self) -> list[str]:
        """Every state entered, in order."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.events
            if e["type"].endswith("StateEntered")
        ]

    def entered(self, state: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
        ]

    def exited(self, state: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state
        ]

    def outputs(self, state: str) -> list[dict[str, Any]]:
        """The state's output each time it was left (the execution's state after it)."""
        return [json.loads(e["stateExitedEventDetails"]["output"]) for e in self.exited(state)]

    def gate(self, step_state: str) -> list[dict[str, Any]]:
        """What the gate said each time it ran before ``step_state`` ("the invitation",
        "mail A"): ``[{"action", "reason", "send_at"}, ...]`` (without when the pass entered
        the gate, which the state keeps for the send's idempotency key)."""
        said = [o["gate"] for o in self.outputs(f"Check the gate before {step_state}")]
        return [{k: v for k, v in gate.items() if k != "entered_at"} for gate in said]

    @staticmethod
    def simulated(event: dict[str, Any]) -> datetime:
        """When a history event happened: the runtime stamps history with its own clock."""
        instant: datetime = event["timestamp"]
        return instant

    def describe(self) -> str:
        return f"{self.status}: " + " -> ".join(self.states())


# ---------------------------------------------------------------- leads
def import_lead(
    runtime: Runtime,
    email: str,
    name: str,
    *,
    tags: Iterable[str] = (),
    visitor_id: str | None = None,
    consent_text: str = "セミナーやイベントのご案内をメールで受け取る",
) -> str:
    """A lead from an attendee list: marketing consent recorded with the list's wording, no form
    event (so no form-triggered journey enters it and its frequency cap is its own); with a
    visitor id, the browser's tracked events are the lead's."""
    now = runtime.now()
    at = isoformat(now)
    address = normalise_email(email)
    lead = Lead(
        lead_id=new_id("lead", now),
        email=address.address,
        fields={"name": FieldValue(name, Channel.IMPORT, at)},
        sources=[Channel.IMPORT.value],
        visitor_ids={visitor_id} if visitor_id else set(),
        stage="lead",
        created_at=at,
        updated_at=at,
        tags=set(tags),
    )
    services.lead_repository(runtime.settings).commit_capture(
        CaptureWrite(
            lead=lead,
            is_new=True,
            claim_identities=[email_identity(address.identity_key)],
            point_identities=[visitor_identity(visitor_id)] if visitor_id else [],
            event=LeadEvent(new_id("evt", now), "lead_imported", at, lead.lead_id, None, {}),
            consent=ConsentEvidence(
                evidence_id=new_id("cns", now),
                lead_id=lead.lead_id,
                email=lead.email,
                topic="marketing",
                status="opted_in",
                at=at,
                text=consent_text,
                text_version="2026-11",
            ),
            idempotency_key=None,
            request_hash="",
            response={},
        )
    )
    return lead.lead_id


def submit_demo_form(
    runtime: Runtime,
    email: str,
    name: str,
    *,
    visitor_id: str | None = None,
    submission_id: str | None = None,
    timeout: float = 15,
) -> tuple[int, dict[str, Any]]:
    """The demo form, posted as the page's script posts it, with the newsletter box ticked
    (``timeout``: real seconds, longer where the runtime is busy with many leads' journeys)."""
    fields: dict[str, Any] = {
        "email": email,
        "name": name,
        "company": "Example 株式会社",
        "consent": True,
    }
    if visitor_id:
        fields["visitor_id"] = visitor_id
    if submission_id:
        fields["submission_id"] = submission_id
    status, _, body = runtime.http(
        "POST",
        "/forms/demo/submissions",
        json.dumps(fields).encode(),
        {"content-type": "application/json", "origin": runtime.api_url},
        timeout=timeout,
    )
    return status, json.loads(body)


def view_page(runtime: Runtime, visitor_id: str, path: str) -> None:
    """The snippet's page-view beacon, from a page of the demo site."""
    beacon = {
        "site_id": "demo",
        "events": [
            {
                "type": "page_view",
                "visitor_id": visitor_id,
                "url": f"{runtime.api_url}/_local/demo{path}",
                "title": path.strip("/"),
            }
        ],
    }
    status, _, body = runtime.http(
        "POST",
        "/t/events",
        json.dumps(beacon).encode(),
        {
            "content-type": "text/plain;charset=UTF-8",
            "origin": runtime.api_url,
            "user-agent": CHROME,
        },
    )
    assert status in (200, 202, 204), body[:500]


# ---------------------------------------------------------------- mail
@dataclass(frozen=True)
class SentMail:
    """A mail in the viewer's store, joined with the ``mail_sent`` row send_email wrote."""

    template_id: str
    sent_at: datetime
    """Simulated time, from the row."""
    message_id: str
    subject: str
    recipients: list[str]
    headers: dict[str, str]
    html: str
    idempotency_key: str

    @property
    def step(self) -> str:
        """The journey state that sent it (its idempotency key ends in the state's name)."""
        return self.idempotency_key.rsplit(":", 1)[-1]

    @property
    def sent_at_jst(self) -> datetime:
        return self.sent_at.astimezone(JST)

    def tracked_links(self) -> list[str]:
        """The signed click links a person can see (not the hidden honeypot), in order."""
        import re

        return re.findall(r'<a href="([^"]+/c/[^"]+)"(?![^>]*display:none)', self.html)

    @property
    def unsubscribe_url(self) -> str:
        return self.headers["List-Unsubscribe"].strip("<>")


def sent_mails(runtime: Runtime, lead_id: str) -> list[SentMail]:
    """The mails sent to this lead, oldest first: each one in the viewer and in the rows."""
    rows = {
        str(e.properties["message_id"]): e for e in runtime.events(lead_id) if e.type == "mail_sent"
    }
    mails = []
    for viewed in runtime.mail_viewer():
        headers = dict(viewed["headers"])
        row = rows.get(headers.get("X-Tsunagu-Message-Id", ""))
        if row is None:
            continue
        mails.append(
            SentMail(
                template_id=str(row.properties["template_id"]),
                sent_at=parse_instant(row.occurred_at),
                message_id=str(row.properties["message_id"]),
                subject=str(viewed["subject"]),
                recipients=list(viewed["recipients"]),
                headers=headers,
                html=str(viewed["html"] or ""),
                idempotency_key=str(row.properties.get("idempotency_key", "")),
            )
        )
    return sorted(mails, key=lambda m: m.sent_at)


def templates_sent(runtime: Runtime, lead_id: str) -> list[str]:
    return [m.template_id for m in sent_mails(runtime, lead_id)]


def mail_of(
    runtime: Runtime, lead_id: str, template_id: str, timeout: float = PROBE_TIMEOUT
) -> SentMail:
    """The lead's first mail of this template (waiting up to ``timeout`` real seconds for it)."""

    def probe() -> SentMail | None:
        found = [m for m in sent_mails(runtime, lead_id) if m.template_id == template_id]
        return found[0] if found else None

    try:
        return wait_for(
            probe, timeout=timeout, what=f"mail {template_id} to {lead_id}", interval=0.2
        )
    except AssertionError as missing:
        raise AssertionError(f"{missing}\n{diagnosis(runtime, lead_id)}") from None


def diagnosis(runtime: Runtime, lead_id: str) -> str:
    """What a test that waited in vain for the lead needs to know: the clock, the lead's events
    and mails, and each of its journeys' executions (status and the states they went through)."""
    lines = []
    try:
        _, _, clock = runtime.http("GET", "/_local/clock")
        lines.append(f"clock: {clock.decode()}")
        lines.append(f"events: {[(e.type, e.occurred_at) for e in runtime.events(lead_id)]}")
        lines.append(f"mails: {[(m.template_id, m.sent_at) for m in sent_mails(runtime, lead_id)]}")
        for entry in services.journey_repository(runtime.settings).entries_of(lead_id):
            history = runtime.history(entry.execution_arn)
            lines.append(f"{entry.journey_id}: {history.describe()}")
    except Exception as failed:  # the diagnosis must never hide the failure it explains
        lines.append(f"(diagnosis stopped: {failed!r})")
    return "\n".join(lines)


# ---------------------------------------------------------------- a script of what happens when
@dataclass
class Step:
    name: str
    action: Callable[[], Any]
    at: datetime | None = None
    """The simulated moment it runs at (when None: at the moment the previous step left)."""


@dataclass
class Director:
    """Runs a world's script on a thread, in order, each step at its simulated moment (the clock
    is advanced to it; a step without one runs once the previous step's work has settled); tests
    wait for a step's result (or its error) by name, so several scenarios share one runtime and
    one run of its clock."""

    runtime: Runtime
    steps: list[Step]
    results: dict[str, Future[Any]] = field(default_factory=dict)
    ran_at: dict[str, datetime] = field(default_factory=dict)
    """When each step started, on the runtime's clock."""
    log: list[str] = field(default_factory=list)
    """What ran when, and how long it took: written next to the runtime's log."""
    steps_ended: int = 0
    """How many steps have ended (worked or failed): what a waiting test reads as progress."""

    def __post_init__(self) -> None:
        for step in self.steps:
            self.results[step.name] = Future()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=f"director-{self.runtime.name}")
        thread.daemon = True
        thread.start()
        return thread

    def _run(self) -> None:
        for step in self.steps:
            future = self.results[step.name]
            began = time.monotonic()
            try:
                if step.at is not None:
                    self.runtime.advance_to(step.at)
                else:
                    self.runtime.settle()
                began = time.monotonic()
                self.ran_at[step.name] = self.runtime.now()
                future.set_result(step.action())
                outcome = "ok"
            except BaseException as error:  # handed to the test that waits for this step
                future.set_exception(error)
                outcome = f"failed: {error!r}"[:300]
            # Not the runtime's clock for a step that never began: the runtime may be gone
            # (the session ended with the script still running), and asking it would raise here.
            at = self.ran_at.get(step.name)
            when = f"{at.astimezone(JST):%a %H:%M} JST" if at else "(did not begin)"
            self.log.append(f"{when}  {time.monotonic() - began:5.2f}s  {step.name}: {outcome}")
            (self.runtime.workdir / "script.log").write_text("\n".join(self.log) + "\n")
            self.steps_ended += 1

    def wait_until_done(self, name: str, timeout: float = STALL_TIMEOUT) -> None:
        """Until the step has run, whether it worked or not (or the script stalls)."""
        self._wait_while_progressing(name, timeout)

    def result(self, name: str, timeout: float = STALL_TIMEOUT) -> Any:
        if not self._wait_while_progressing(name, timeout):
            raise AssertionError(
                f"{self.runtime.name}: step {name!r} did not finish: no step of the script ended"
                f" for {timeout:g}s; runtime output:\n{self.runtime.tail()}"
            )
        return self.results[name].result()

    def _wait_while_progressing(self, name: str, timeout: float) -> bool:
        """Whether the step ended. A test asking for a late step waits for every step before it,
        and on a loaded machine each of them takes longer: so ``timeout`` bounds a stall (no step
        ended for that long), never the script's total time, which follows the machine's speed."""
        future = self.results[name]
        seen = -1
        while self.steps_ended != seen:
            seen = self.steps_ended
            if futures.wait([future], timeout=timeout).done:
                return True
        return future.done()


@dataclass
class ScriptedWorld:
    """One runtime, the leads its script made and the director that runs the script (the steps
    ``script`` gives); tests wait for a step's result by name (``step``)."""

    runtime: Runtime
    leads: dict[str, str] = field(default_factory=dict)
    """E-mail address -> lead id."""
    director: Director | None = None
    step_timeout: ClassVar[float] = STALL_TIMEOUT
    """Real seconds a test waits for the script to end another step (see Director.result)."""

    def script(self) -> list[Step]:
        raise NotImplementedError

    def start(self) -> None:
        self.director = Director(self.runtime, self.script())
        self.director.start()

    def step(self, name: str) -> Any:
        assert self.director is not None
        return self.director.result(name, self.step_timeout)
