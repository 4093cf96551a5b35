"""The property virtual time is for: a journey's outcome does not depend on the machine.

The same seminar_follow_up scenario - three leads over Japan's long weekend of November 2026: one
clicks the invitation on Friday, one never does (its three days run out on Monday, a holiday),
one attends the seminar on Friday afternoon (within a day of the invitation, so the frequency cap
would hold its "thank you for attending today" past the long weekend, and the mail is skipped as
past its day) - runs twice on fresh runtimes,
once on an idle machine and once with both cores hogged by busy loops. Every mail must be sent at
the same simulated instant both times, and every gate decision must be the same.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from tests.journeys.harness import (
    CHROME,
    JST,
    SEMINAR,
    Runtime,
    import_lead,
    jst,
    mail_of,
    sent_mails,
)

CLOCK_START = "2026-11-19T23:00:00Z"
"""Friday 20 November 2026, 08:00 in Tokyo. Monday the 23rd is a national holiday."""
TAG = "seminar-property"
CLICKS = "clicks@example.jp"
NEVER_CLICKS = "never.clicks@example.jp"
ATTENDS = "attends@example.com"
BUSY_LOOPS = 2

Outcome = dict[str, list[tuple[str, datetime]]]
"""Per lead: (template, simulated send instant) of every mail, in order."""


@contextmanager
def cpu_hogged() -> Iterator[None]:
    """Both cores of the machine busy with loops that never yield, for the block's duration."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY_LOOPS)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=10)


def run_scenario(workdir: Path) -> tuple[Outcome, dict[str, list[str]]]:
    runtime = Runtime.launch("property", workdir, clock_start=CLOCK_START)
    try:
        runtime.wait_ready()
        leads = {
            email: import_lead(runtime, email, "参加 予定者", tags=[TAG])
            for email in (CLICKS, NEVER_CLICKS, ATTENDS)
        }
        # A tag is found through the lead terms, which the leads table's stream keeps: the
        # imports' stream records are applied before the segment is read.
        runtime.settle()
        started = runtime.cli_ok(
            "journeys", "start", SEMINAR, "--segment", f"tag={TAG}", "--key", TAG
        )
        assert "-- 3 entered, 0 not entered, of 3 selected" in started, started
        runtime.settle()
        # Friday 09:00: a person clicks the invitation in a browser
        runtime.advance_to(jst(2026, 11, 20, 9))
        invitation = mail_of(runtime, leads[CLICKS], "seminar-invitation")
        status, _, _ = runtime.http(
            "GET", invitation.tracked_links()[0], headers={"user-agent": CHROME}
        )
        assert status in (302, 303), status
        # Friday 15:00: the seminar's attendance list is recorded
        runtime.advance_to(jst(2026, 11, 20, 15))
        runtime.cli_ok("leads", "record", ATTENDS, "seminar_attended")
        # Then the week runs out
        runtime.advance_to(jst(2026, 11, 27, 18))
        outcome = {
            email: [(m.template_id, m.sent_at) for m in sent_mails(runtime, lead_id)]
            for email, lead_id in leads.items()
        }
        decisions = {}
        for email, lead_id in leads.items():
            entry = runtime.entry(lead_id, SEMINAR)
            assert entry is not None, email
            history = runtime.history(entry.execution_arn)
            decisions[email] = [
                f"{exited_at(e)} {e['stateExitedEventDetails']['name']}"
                for e in history.events
                if e["type"].endswith("StateExited")
            ]
        return outcome, decisions
    finally:
        runtime.stop()


def exited_at(event: dict[str, object]) -> str:
    instant = event["timestamp"]
    assert isinstance(instant, datetime)
    return instant.astimezone(JST).isoformat()


def test_the_same_scenario_gives_the_same_instants_on_an_idle_and_a_loaded_machine(
    tmp_path: Path,
) -> None:
    # Given the scenario run once on an idle machine
    idle, idle_decisions = run_scenario(tmp_path / "idle")
    # When it runs again with every core busy
    with cpu_hogged():
        loaded, loaded_decisions = run_scenario(tmp_path / "loaded")

    # Then every mail went at the same simulated instant, and every state was left at the same
    # instant, both times
    assert loaded == idle
    assert loaded_decisions == idle_decisions
    # And the instants are the journey's own: the invitation on Friday, mail A to the clicker
    # and mail B to the one who did not click on the first business morning after the holiday;
    # the attendee's mail C could not go on Friday (the cap) and is not sent on Tuesday
    tuesday_ten = jst(2026, 11, 24, 10)
    assert [t for t, _ in idle[CLICKS]] == ["seminar-invitation", "seminar-clicked-follow-up"]
    assert [t for t, _ in idle[NEVER_CLICKS]] == ["seminar-invitation", "seminar-no-click-reminder"]
    assert [t for t, _ in idle[ATTENDS]] == ["seminar-invitation"]
    assert any(d.endswith(" Note that mail C was skipped") for d in idle_decisions[ATTENDS])
    for mails in idle.values():
        assert mails[0][1].astimezone(JST).date() == jst(2026, 11, 20).date()
    assert idle[CLICKS][1][1] == tuesday_ten
    assert idle[NEVER_CLICKS][1][1] == tuesday_ten
