"""A rebuild of the report counters too long for the admin API's request, run in the background
by the rebuild_reports state machine on the local runtime `make up` runs (in this process, on
virtual time): the admin API's 202, the state machine's day steps executed for real, the job's
progress through the admin API and the CLI's command, and the counts a rebuild in one call
makes of the same days."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from tests.support.admin import event
from tests.support.leads import store_lead
from tests.support.runtime import move_clock, runtime_in_process
from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.commands.access import Role
from tsunagu.leads.model import LeadEvent
from tsunagu_local.runtime import LocalRuntime

JST = ZoneInfo("Asia/Tokyo")
DAYS = ("2026-11-28", "2026-11-29", "2026-11-30")
FIRST_SEND = datetime(2026, 11, 28, 9, 0, tzinfo=JST)


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with runtime_in_process("rebuild-runtime-", datetime(2026, 12, 2, tzinfo=UTC)) as running:
        yield running


def three_days(runtime: LocalRuntime) -> None:
    """Three days of welcome mails: each day four sent, two opened by a person (one of them
    again the next day), one by Apple's proxy, and one clicked by a person."""
    leads = services.lead_repository(runtime.settings())
    stack = cast(Any, SimpleNamespace(settings=runtime.settings))
    for day in range(3):
        sent_at = FIRST_SEND + timedelta(days=day)
        for n in range(4):
            # The leads are stored (route_events, the stream's other reader, reads each)
            lead = store_lead(stack, f"d{day}n{n}@example.com").lead_id
            message = f"msg_d{day}n{n}"
            sent = {"message_id": message, "template_id": "welcome", "template_version": 1}
            put = leads.put_event
            put(LeadEvent(f"evt_s{day}{n}", "mail_sent", isoformat(sent_at), lead, None, sent))
            if n < 2:
                person = {"message_id": message, "automated": False, "reasons": []}
                at = sent_at + timedelta(hours=1)
                put(LeadEvent(f"evt_o{day}{n}", "mail_opened", isoformat(at), lead, None, person))
                again = sent_at + timedelta(days=1)
                put(
                    LeadEvent(f"evt_a{day}{n}", "mail_opened", isoformat(again), lead, None, person)
                )
            if n == 2:
                proxy = {"message_id": message, "automated": True,
                         "reasons": ["apple_privacy_proxy"]}  # fmt: skip
                put(LeadEvent(f"evt_p{day}", "mail_opened", isoformat(sent_at), lead, None, proxy))
            if n == 0:
                click = {"message_id": message, "automated": False, "reasons": [],
                         "link_id": "l1", "settled": True}  # fmt: skip
                at = sent_at + timedelta(hours=2)
                put(LeadEvent(f"evt_c{day}", "link_clicked", isoformat(at), lead, None, click))


def counter_rows(runtime: LocalRuntime) -> dict[tuple[str, str, str], dict[str, int]]:
    repository = services.reports(runtime.settings())
    return {
        (key.subject, key.day, key.part): {k: v for k, v in metrics.items() if v}
        for key, metrics in repository.rows("mail#welcome", DAYS[0], DAYS[-1])
    }


def admin_call(runtime: LocalRuntime, method: str, path: str, body: Any = None) -> Any:
    from tsunagu.api import admin

    response = admin.handle(event(method, path, role=Role.ADMIN, body=body), runtime.settings())
    return response["statusCode"], json.loads(response["body"])


def test_a_rebuild_too_long_for_the_api_runs_on_the_state_machine_and_counts_as_one_call(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tsunagu.api import admin
    from tsunagu.cli_reports import reports_rebuild

    # Given three days of mails counted by report_events, and their counts made again by a
    # rebuild in the admin API's request
    three_days(runtime)
    move_clock(runtime.api_url, {"settle": True}, timeout=120)
    body = {"from": DAYS[0], "to": DAYS[-1]}
    status, in_call = admin_call(runtime, "POST", "/admin/reports/rebuild", body)
    assert status == 200, in_call
    counted_in_call = counter_rows(runtime)
    assert counted_in_call[("mail#welcome", DAYS[1], "v1")]["opened_people_unique"] == 2

    # When the admin API may count only 5 events in its request, and the same days are asked
    monkeypatch.setattr(admin, "API_REBUILD_EVENTS", 5)
    status, job = admin_call(runtime, "POST", "/admin/reports/rebuild", body)

    # Then it is queued (202), and the runtime's state machine counts it a day at a time
    assert status == 202, job
    assert (job["status"], job["days_done"], job["days_total"]) == ("queued", 0, 3)
    move_clock(runtime.api_url, {"settle": True}, timeout=300)
    status, progress = admin_call(runtime, "GET", f"/admin/reports/rebuilds/{job['rebuild_id']}")
    assert status == 200, progress
    assert (progress["status"], progress["days_done"], progress["error"]) == ("done", 3, None)
    [execution] = runtime.client("stepfunctions").list_executions(
        stateMachineArn=runtime.settings().rebuild_state_machine_arn
    )["executions"]
    assert (execution["name"], execution["status"]) == (job["rebuild_id"], "SUCCEEDED")

    # And it counts the days as the rebuild in one call did, event for event
    assert counter_rows(runtime) == counted_in_call
    for name in ("events", "counted", "rows", "rows_replaced"):
        assert progress[name] == in_call[name], name

    # And the CLI's command shows the job
    asked = argparse.Namespace(
        status=job["rebuild_id"], since=None, to=None, background=False, json=False
    )
    assert reports_rebuild(runtime.settings(), asked) == 0
    shown = capsys.readouterr().out
    assert f"{job['rebuild_id']}  done" in shown and "3 of 3 days" in shown, shown
