"""The hand-off when the owner's notification cannot be sent: SES refuses every mail (the
runtime's ``ses_throttled`` fault at probability 1). The lead still reaches the CRM, the notice
is tried again after the push under the same key (at most one mail, whichever attempt sends
it), and the execution then fails there, visibly, instead of succeeding with nobody told.

On virtual time: the notice's retries and the push happen at simulated instants the test
moves the clock through (see tests.qualification.embedded)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import start_tsunagu
from tests.qualification.embedded import VIRTUAL_TIME, Embedded
from tests.qualification.test_crm_push_e2e import HAND_OFF, becomes_mql
from tests.support.crm import Crm

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ses_refusing(crm: Crm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    workdir = tmp_path_factory.mktemp("notice-fails")
    running = start_tsunagu(
        workdir,
        "--no-persist",
        "--parameter",
        f"CrmWebhookUrl={crm.url}",
        "--faults",
        "ses_throttled=1",
        *VIRTUAL_TIME,
    )
    try:
        yield Embedded(running)
    finally:
        if running.process.poll() is None:
            running.stop()


def notify_tasks(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Payload of every notify attempt the execution scheduled, oldest first."""
    payloads = [
        json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]
        for event in history
        if event["type"] == "TaskScheduled"
    ]
    return [p for p in payloads if p["step"] == "notify"]


def entered(history: list[dict[str, Any]]) -> list[str]:
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in history
        if event["type"].endswith("StateEntered")
    ]


def test_a_notice_ses_keeps_refusing_does_not_keep_the_lead_from_the_crm(
    ses_refusing: Embedded, crm: Crm
) -> None:
    e = ses_refusing
    email = "notice.lost@example.jp"
    # Given SES refusing every mail, When a lead becomes MQL and the clock runs through every
    # retry of the notice (before the push and after it: well within two hours)
    lead_id = becomes_mql(e, email, "山本 蓮")
    e.advance(by="2h")

    # Then the CRM took the lead, with its owner, although nobody could be told by mail
    (pushed,) = crm.of(email)
    assert pushed.answered == 200
    owner = e.lead(lead_id)["fields"]["owner_email"]["value"]
    assert pushed.payload["owner"] == owner
    assert e.mails_to(owner) == []

    # And the hand-off failed visibly, at the second try of the notice, after the push
    finished = e.finished(HAND_OFF, lead_id)
    assert finished["status"] == "FAILED"
    history = e.history(finished["executionArn"])
    states = entered(history)
    assert states.index("Notify the owner") < states.index("Push the lead to the CRM")
    assert states.index("Push the lead to the CRM") < states.index("Tell the owner again")
    assert states[-1] == "Tell the owner again"
    failed = next(h for h in history if h["type"] == "ExecutionFailed")
    assert failed["executionFailedEventDetails"]["error"] == "MessengerError"

    # And every attempt at the notice, before the push and after it, carried the same key: the
    # mail goes out at most once, whichever attempt (or a redrive) gets through
    keys = {task["key"] for task in notify_tasks(history)}
    assert len(notify_tasks(history)) > 2 and len(keys) == 1
