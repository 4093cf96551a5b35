"""The outbound CRM webhook on the embedded runtime: a new MQL is pushed to the CRM signed, the
push is retried with backoff when the CRM fails, and parked when it keeps failing.

The runtime is started with ``--parameter CrmWebhookUrl=...`` pointing at a small CRM served by
this test on 127.0.0.1 (tests.support.crm). It runs on virtual time: simulated time stands
still while the lead is scored and handed off, and the Retry's 30 s, 60 s, ... intervals pass
only when the test advances the clock past them, each retry running at its own simulated
instant. Each push carries ``x-tsunagu-timestamp`` from the runtime's clock, so the gaps between
pushes are exact, whatever the machine's load.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import start_tsunagu
from tests.qualification.embedded import VIRTUAL_TIME, Embedded
from tests.support.crm import FLAKY_FAILURES, Crm
from tsunagu.clock import isoformat, parse_instant
from tsunagu.qualification.crm import verify_signature
from tsunagu_local.seed import DEMO_SALES_TEAM

pytestmark = pytest.mark.e2e

HAND_OFF = "hand-off-to-sales"
RETRY_INTERVAL = 30  # IntervalSeconds of the push's Retry (BackoffRate 2, MaxAttempts 5)
PUSH_ATTEMPTS = 1 + 5
BACKOFF = [RETRY_INTERVAL * 2**n for n in range(PUSH_ATTEMPTS - 1)]
"""Simulated seconds between one push and the next: 30, 60, 120, 240, 480."""


@pytest.fixture(scope="module")
def embedded(crm: Crm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    workdir = tmp_path_factory.mktemp("crm-push")
    running = start_tsunagu(
        workdir,
        "--no-persist",
        "--parameter",
        f"CrmWebhookUrl={crm.url}",
        *VIRTUAL_TIME,
    )
    try:
        yield Embedded(running)
    finally:
        if running.process.poll() is None:
            running.stop()


def becomes_mql(e: Embedded, email: str, name: str) -> str:
    """The demo form (10) and three seminars (60), routed; the hand-off has then made its first
    push, at the instant the lead became MQL (time stands still while it works)."""
    lead_id = e.sign_up(email, name)
    for _ in range(3):
        e.record(email, "seminar_attended")
    assert e.settled_score(lead_id) == 70
    return lead_id


def at(instant: datetime, seconds: float = 0) -> datetime:
    return instant + timedelta(seconds=seconds)


def push_attempts(e: Embedded, execution_arn: str) -> list[dict[str, Any]]:
    """The history's TaskScheduled events of "Push the lead to the CRM", one per attempt."""
    return [
        event
        for event in e.history(execution_arn)
        if event["type"] == "TaskScheduled"
        and json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]["step"]
        == "push"
    ]


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
    mql_at = e.now()
    lead_id = becomes_mql(e, email, "小林 陸")

    # Then it was pushed once, at once, and the hand-off waits for its first retry, 30 s later
    assert [(p.sent_at, p.answered) for p in crm.of(email)] == [(mql_at, 500)]
    (running,) = e.executions(HAND_OFF, lead_id)
    assert running["status"] == "RUNNING"
    assert e.now() == mql_at

    # When 30 s pass, Then the first retry was pushed (and refused), at exactly 30 s
    e.advance(by=f"{RETRY_INTERVAL}s")
    assert [(p.sent_at, p.answered) for p in crm.of(email)] == [
        (mql_at, 500),
        (at(mql_at, 30), 500),
    ]
    assert e.executions(HAND_OFF, lead_id)[0]["status"] == "RUNNING"

    # When 60 s more pass, Then the second retry came twice as long (60 s) after the first,
    # the CRM took it, and the hand-off succeeded then
    e.advance(to=isoformat(at(mql_at, 30 + 60)))
    finished = e.finished(HAND_OFF, lead_id)
    assert finished["status"] == "SUCCEEDED"
    pushes = crm.of(email)
    assert [p.answered for p in pushes] == [500] * FLAKY_FAILURES + [200]
    sent = [p.sent_at for p in pushes]
    assert sent == [mql_at, at(mql_at, 30), at(mql_at, 90)], sent
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent)]
    assert gaps == BACKOFF[:FLAKY_FAILURES], gaps
    # And the execution's history says the same, to the millisecond
    scheduled = [h["timestamp"] for h in push_attempts(e, finished["executionArn"])]
    assert scheduled == sent, scheduled
    assert finished["startDate"] == mql_at and finished["stopDate"] == at(mql_at, 90)
    # And what the CRM got is signed with the shared key, and says who and why
    taken = pushes[-1]
    assert taken.headers["content-type"] == "application/json"
    verify_signature(
        crm_key(e),
        taken.headers["x-tsunagu-timestamp"],
        taken.body,
        taken.headers["x-tsunagu-signature"],
        now=e.now(),  # the runtime's clock, which has not moved since it pushed
    )
    assert e.now() == taken.sent_at
    payload = taken.payload
    owner = e.lead(lead_id)["fields"]["owner_email"]["value"]
    assert payload["type"] == "lead.mql"
    assert (payload["lead_id"], payload["email"], payload["stage"]) == (lead_id, email, "mql")
    assert payload["score"] == 70
    assert payload["owner"] == owner and owner in DEMO_SALES_TEAM
    # And every try carried the same delivery_id, from the execution and the push's state, so a
    # CRM that processed a try whose answer timed out can drop the retry as a repeat
    push_state = "Push the lead to the CRM"
    assert {p.payload.get("delivery_id") for p in pushes} == {
        f"{finished['executionArn']}:{push_state}"
    }
    # And nothing is parked for it
    assert lead_id not in e.cli("crm", "pushes")


def test_a_push_that_keeps_failing_is_parked_and_the_hand_off_fails_visibly(
    embedded: Embedded, crm: Crm
) -> None:
    e = embedded
    email = "down.lead@example.jp"
    # Given a CRM that always answers 500, When a lead becomes MQL
    mql_at = e.now()
    lead_id = becomes_mql(e, email, "中村 陽菜")
    assert [p.sent_at for p in crm.of(email)] == [mql_at]

    # And the clock runs through every retry's backoff (30 + 60 + 120 + 240 + 480 s)
    last_try = at(mql_at, sum(BACKOFF))
    e.advance(to=isoformat(last_try))

    # Then the push was tried once and retried five times, 30 s apart, then twice as long each
    # time, and the hand-off failed at the last try
    finished = e.finished(HAND_OFF, lead_id)
    assert finished["status"] == "FAILED"
    pushes = crm.of(email)
    assert [p.answered for p in pushes] == [500] * PUSH_ATTEMPTS
    sent = [p.sent_at for p in pushes]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(sent)]
    assert sent[0] == mql_at and gaps == BACKOFF, sent
    assert [h["timestamp"] for h in push_attempts(e, finished["executionArn"])] == sent
    assert finished["stopDate"] == last_try
    history = e.history(finished["executionArn"])
    failed = next(h for h in history if h["type"] == "ExecutionFailed")
    assert failed["executionFailedEventDetails"]["error"] == "CrmPushParked"
    assert failed["timestamp"] == last_try
    # And the owner was still told, when the lead became MQL
    owner = e.lead(lead_id)["fields"]["owner_email"]["value"]
    (told,) = [m for m in e.mails_to(owner) if "中村 陽菜" in m["subject"]]
    assert parse_instant(told["sent_at"]) == mql_at
    # And `tsunagu crm pushes` lists the parked push, with why and when
    listed = e.cli("crm", "pushes")
    (parked,) = [json.loads(line) for line in listed.splitlines() if lead_id in line]
    assert parked["lead_id"] == lead_id
    assert parse_instant(parked["at"]) == last_try
    assert "PushFailed" in json.dumps(parked["error"])
    assert "the CRM answered 500" in json.dumps(parked["error"])
    assert listed.rstrip().endswith("pushes to the CRM failed every retry")
