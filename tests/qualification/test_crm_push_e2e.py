"""The outbound CRM webhook on the embedded runtime: a new MQL is pushed to the CRM signed, the
push is retried with backoff when the CRM fails, and parked when it keeps failing.

``tsunagu-local`` takes no template parameters on its command line, so the runtime is started
on a copy of template.yaml whose ``CrmWebhookUrl`` defaults to a small CRM served by this test
on 127.0.0.1 (the functions, state machines and layer are the project's own, linked in). Its
clock runs 300 times real speed, so the Retry's 30 s, 60 s, ... intervals (which the runtime
scales with its clock) pass in a few seconds.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import start_tsunagu
from tests.qualification.embedded import CLOCK_START, Embedded
from tsunagu.clock import parse_instant
from tsunagu.qualification.crm import verify_signature
from tsunagu_local.seed import DEMO_SALES_TEAM

pytestmark = pytest.mark.e2e

HAND_OFF = "hand-off-to-sales"
TIME_SCALE = 300
FLAKY_FAILURES = 2
RETRY_INTERVAL = 30  # IntervalSeconds of the push's Retry (BackoffRate 2, MaxAttempts 5)
PUSH_ATTEMPTS = 1 + 5
DEFAULT_URL = 'CrmWebhookUrl:\n    Type: String\n    Default: ""'


@dataclass(frozen=True)
class Received:
    at: float
    """time.time() when it arrived."""
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Crm:
    """A CRM's inbound webhook: 500 for the first FLAKY_FAILURES pushes of a lead whose address
    starts with "flaky", 500 always for "down", 200 otherwise."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes) -> int:
        email = str(json.loads(body).get("email", ""))
        earlier = sum(1 for r in self.received if r.payload.get("email") == email)
        if email.startswith("down") or (email.startswith("flaky") and earlier < FLAKY_FAILURES):
            return 500
        return 200

    def of(self, email: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.payload.get("email") == email]


def serve(crm: Crm) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with crm.lock:
                status = crm.answer(body)
                crm.received.append(
                    Received(
                        time.time(), {k.lower(): v for k, v in self.headers.items()}, body, status
                    )
                )
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}' if status == 200 else b'{"error": "try later"}')

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="crm", daemon=True).start()
    crm.url = f"http://127.0.0.1:{server.server_port}/crm/inbound"
    return server


def template_pushing_to(url: str, folder: Path) -> Path:
    """template.yaml with CrmWebhookUrl defaulting to ``url``, beside links to the code."""
    text = (ROOT / "template.yaml").read_text("utf-8")
    assert text.count(DEFAULT_URL) == 1, "template.yaml's CrmWebhookUrl parameter moved"
    folder.mkdir()
    for linked in ("functions", "statemachines", "layers"):
        (folder / linked).symlink_to(ROOT / linked, target_is_directory=True)
    variant = folder / "template.yaml"
    variant.write_text(text.replace(DEFAULT_URL, DEFAULT_URL[:-2] + f'"{url}"'), "utf-8")
    return variant


@pytest.fixture(scope="module")
def crm() -> Iterator[Crm]:
    found = Crm()
    server = serve(found)
    yield found
    server.shutdown()


@pytest.fixture(scope="module")
def embedded(crm: Crm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    workdir = tmp_path_factory.mktemp("crm-push")
    template = template_pushing_to(crm.url, workdir / "stack")
    running = start_tsunagu(
        workdir,
        "--no-persist",
        "--template",
        str(template),
        "--clock-start",
        CLOCK_START,
        "--time-scale",
        str(TIME_SCALE),
    )
    try:
        yield Embedded(running)
    finally:
        if running.process.poll() is None:
            running.stop()


def becomes_mql(e: Embedded, email: str, name: str) -> str:
    """The demo form (10) and three seminars (60)."""
    lead_id = e.sign_up(email, name)
    for _ in range(3):
        e.record(email, "seminar_attended")
    e.wait_for_score(lead_id, 70)
    return lead_id


def simulated_seconds(e: Embedded, real: float) -> float:
    env = e.environment
    start = parse_instant(env["TSUNAGU_CLOCK_START"])
    elapsed = (real - float(env["TSUNAGU_CLOCK_EPOCH"])) * float(env["TSUNAGU_TIME_SCALE"])
    return (start + timedelta(seconds=elapsed)).timestamp()


def crm_key(e: Embedded) -> bytes:
    secret = e.client("secretsmanager").get_secret_value(
        SecretId=e.environment["TSUNAGU_CRM_SECRET_ARN"]
    )
    return str(json.loads(secret["SecretString"])["signing_key"]).encode()


def test_a_push_the_crm_refuses_is_retried_with_backoff_until_it_takes_it(
    embedded: Embedded, crm: Crm
) -> None:
    e = embedded
    email = "flaky.lead@example.jp"
    # Given a CRM that answers 500 twice, When a lead becomes MQL
    lead_id = becomes_mql(e, email, "小林 陸")

    # Then the hand-off succeeds on the third push
    assert e.finished(HAND_OFF, lead_id)["status"] == "SUCCEEDED"
    pushes = crm.of(email)
    assert [p.answered for p in pushes] == [500] * FLAKY_FAILURES + [200]
    # And the retries waited 30 s, then twice as long (the runtime's clock)
    stamps = [int(p.headers["x-tsunagu-timestamp"]) for p in pushes]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert gaps[0] >= RETRY_INTERVAL - 1, stamps
    assert gaps[1] >= 2 * RETRY_INTERVAL - 1 and gaps[1] > gaps[0], stamps
    # And what the CRM got is signed with the shared key, and says who and why
    taken = pushes[-1]
    assert taken.headers["content-type"] == "application/json"
    verify_signature(
        crm_key(e),
        taken.headers["x-tsunagu-timestamp"],
        taken.body,
        taken.headers["x-tsunagu-signature"],
        now=parse_instant("1970-01-01T00:00:00Z")
        + timedelta(seconds=simulated_seconds(e, taken.at)),
    )
    payload = taken.payload
    owner = e.lead(lead_id)["fields"]["owner_email"]["value"]
    assert payload["type"] == "lead.mql"
    assert (payload["lead_id"], payload["email"], payload["stage"]) == (lead_id, email, "mql")
    assert payload["score"] == 70
    assert payload["owner"] == owner and owner in DEMO_SALES_TEAM
    # And nothing is parked for it
    assert lead_id not in e.cli("crm", "pushes")


def test_a_push_that_keeps_failing_is_parked_and_the_hand_off_fails_visibly(
    embedded: Embedded, crm: Crm
) -> None:
    e = embedded
    email = "down.lead@example.jp"
    # Given a CRM that always answers 500, When a lead becomes MQL
    lead_id = becomes_mql(e, email, "中村 陽菜")

    # Then the push was tried once and retried five times, and the hand-off failed
    finished = e.finished(HAND_OFF, lead_id)
    assert finished["status"] == "FAILED"
    history = e.client("stepfunctions").get_execution_history(
        executionArn=finished["executionArn"], reverseOrder=True
    )["events"]
    failed = next(h for h in history if h["type"] == "ExecutionFailed")
    assert failed["executionFailedEventDetails"]["error"] == "CrmPushParked"
    assert [p.answered for p in crm.of(email)] == [500] * PUSH_ATTEMPTS
    # And the owner was still told
    owner = e.lead(lead_id)["fields"]["owner_email"]["value"]
    assert any("中村 陽菜" in m["subject"] for m in e.mails_to(owner))
    # And `tsunagu crm pushes` lists the parked push, with why
    listed = e.cli("crm", "pushes")
    (parked,) = [json.loads(line) for line in listed.splitlines() if lead_id in line]
    assert parked["lead_id"] == lead_id
    assert "PushFailed" in json.dumps(parked["error"])
    assert "the CRM answered 500" in json.dumps(parked["error"])
    assert listed.rstrip().endswith("pushes to the CRM failed every retry")
