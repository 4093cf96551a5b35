"""One business day of pausing and resuming seminar_follow_up, one resume policy at a time.

The clock starts at 08:00 Tokyo time on Tuesday 1 December 2026 (an ordinary business day), on
virtual time: it stands still while the marketer and the runtime work, and moves only where the
script says (pace's one-minute turns, the seminar's start passing). A webinar's attendee list is
imported and entered while the journey is paused, and the held invitations are skipped on resume
(so no mail has used anyone's frequency cap). Then, one cycle per policy: the marketer pauses
the journey while the leads wait for a click or attendance; a lead attends, so mail C ("thanks
for attending", due the same day) reaches its gate and parks there; ``tsunagu journeys status``
shows it; the marketer resumes under the policy. Last, the account-wide emergency stop and
``resume-all``. The script is over by late morning, long before mail C's 19:00 cutoff.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from tests.journeys.harness import (
    RE_ENGAGEMENT,
    SEMINAR,
    ScriptedWorld,
    Step,
    import_lead,
    mail_of,
    wait_for,
)
from tsunagu.clock import isoformat

CLOCK_START = "2026-11-30T23:00:00Z"
"""Tuesday 1 December 2026, 08:00 in Tokyo."""
HOLD_INVITATION = "Send the invitation"
HOLD_MAIL_C = "Send mail C"
HOLD_WE_MISS_YOU = "Send the we-miss-you mail"
WEBINAR_TAG = "webinar-2026-12"
WEBINAR_KEY = "webinar-2026-12"

SENT_ON_RESUME = "held.then.sent@example.jp"
SKIPPED_ON_RESUME = "held.then.skipped@example.com"
PACED_FIRST = "paced.first@example.jp"
PACED_SECOND = "paced.second@example.jp"
NO_DEADLINE = "held.no.deadline@example.com"
HELD_BY_STOP_ALL = "held.by.stop.all@example.jp"
WEBINAR_LEADS = (
    SENT_ON_RESUME,
    SKIPPED_ON_RESUME,
    PACED_FIRST,
    PACED_SECOND,
    NO_DEADLINE,
    HELD_BY_STOP_ALL,
)
AFTER_THE_SEMINAR = "after.the.seminar@example.jp"
"""Entered (and held) with the seminar's start time as the invitation's deadline."""
DORMANT = "dormant@example.com"
"""Entered into re_engagement during the emergency stop."""
CYCLE_TIMEOUT = 120.0
"""Real seconds to wait for the runtime's work: a bound for a broken run only."""


@dataclass
class PauseDay(ScriptedWorld):
    def script(self) -> list[Step]:
        return [
            Step("attendee list", self.import_attendees),
            Step("entered while paused", self.enter_while_paused),
            Step("skip_missed before the wait", self.skip_the_held_invitations),
            Step("send_missed", lambda: self.cycle("send_missed", [SENT_ON_RESUME])),
            Step("skip_missed", lambda: self.cycle("skip_missed", [SKIPPED_ON_RESUME])),
            Step("pace", lambda: self.cycle("pace", [PACED_FIRST, PACED_SECOND], rate=1)),
            Step("expire", self.expire_cycle),
            Step("stop-all", self.stop_all_cycle),
        ]

    # ------------------------------------------------------------ helpers
    def execution_of(self, email: str, journey_id: str = SEMINAR) -> tuple[str, str]:
        """(execution name, ARN) of the lead's entry."""
        entry = wait_for(
            lambda: self.runtime.entry(self.leads[email], journey_id),
            timeout=10,
            what=f"{email} to enter {journey_id}",
        )
        return entry.execution_name, entry.execution_arn

    def wait_parked(self, journey_id: str, emails: list[str], step: str) -> None:
        names = {self.execution_of(e, journey_id)[0] for e in emails}

        def parked() -> bool:
            held = {p.execution_name: p.step for p in self.runtime.parked(journey_id)}
            return all(held.get(name) == step for name in names)

        wait_for(parked, timeout=CYCLE_TIMEOUT, what=f"{emails} parked at {step!r}")

    def wait_finished(self, emails: list[str], journey_id: str = SEMINAR) -> None:
        for email in emails:
            arn = self.execution_of(email, journey_id)[1]
            self.runtime.wait_ended(arn, timeout=CYCLE_TIMEOUT, what=f"{email}'s execution to end")

    def status(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.runtime.cli_ok("journeys", "status"))
        return report

    # ------------------------------------------------------------ the script
    def import_attendees(self) -> None:
        for email in WEBINAR_LEADS:
            self.leads[email] = import_lead(
                self.runtime, email, "ウェビナー 参加者", tags=[WEBINAR_TAG]
            )
        self.leads[AFTER_THE_SEMINAR] = import_lead(
            self.runtime, AFTER_THE_SEMINAR, "遅れて 登録", tags=["late-entry"]
        )
        self.leads[DORMANT] = import_lead(self.runtime, DORMANT, "休眠 顧客", tags=["dormant"])

    def enter_while_paused(self) -> dict[str, Any]:
        paused = self.runtime.cli_ok("journeys", "pause", SEMINAR)
        started = self.runtime.cli_ok(
            "journeys", "start", SEMINAR, "--segment", f"tag={WEBINAR_TAG}", "--key", WEBINAR_KEY
        )
        self.wait_parked(SEMINAR, list(WEBINAR_LEADS), HOLD_INVITATION)
        return {"paused": paused, "started": started, "status": self.status()}

    def skip_the_held_invitations(self) -> str:
        resumed = self.runtime.cli_ok("journeys", "resume", SEMINAR, "--policy", "skip_missed")
        for email in WEBINAR_LEADS:
            lead_id = self.leads[email]
            wait_for(
                partial(self.runtime.waits_of, lead_id),
                timeout=CYCLE_TIMEOUT,
                what=f"{email} to wait for a click or attendance",
            )
        return resumed

    def cycle(
        self, policy: str, attendees: list[str], *, rate: int | None = None
    ) -> dict[str, Any]:
        """Pause while they wait; they attend; mail C parks; status; resume under ``policy``."""
        paused = self.runtime.cli_ok("journeys", "pause", SEMINAR)
        for email in attendees:
            self.runtime.cli_ok("leads", "record", email, "seminar_attended")
        self.wait_parked(SEMINAR, attendees, HOLD_MAIL_C)
        status = self.status()
        resumed_at = self.runtime.now()
        options = ["--policy", policy] + (["--rate", str(rate)] if rate else [])
        resumed = self.runtime.cli_ok("journeys", "resume", SEMINAR, *options)
        if rate:
            # Each lead after the first gets its turn a minute later: let the clock get there.
            self.runtime.advance_to(resumed_at + timedelta(minutes=len(attendees) / rate))
        self.wait_finished(attendees)
        return {"paused": paused, "status": status, "resumed": resumed, "resumed_at": resumed_at}

    def expire_cycle(self) -> dict[str, Any]:
        """Under ``expire``: a held mail C (no deadline of its own), and an invitation held past
        the seminar's start, which its lead was entered with as the deadline."""
        paused = self.runtime.cli_ok("journeys", "pause", SEMINAR)
        self.runtime.cli_ok("leads", "record", NO_DEADLINE, "seminar_attended")
        seminar_at = self.runtime.now() + timedelta(minutes=10)
        late = self.runtime.cli_ok(
            "journeys",
            "start",
            SEMINAR,
            "--lead",
            AFTER_THE_SEMINAR,
            "--key",
            WEBINAR_KEY,
            "--input",
            f"seminar_at={isoformat(seminar_at)}",
        )
        self.wait_parked(SEMINAR, [NO_DEADLINE], HOLD_MAIL_C)
        self.wait_parked(SEMINAR, [AFTER_THE_SEMINAR], HOLD_INVITATION)
        self.runtime.advance_to(seminar_at + timedelta(minutes=5))
        resumed_at = self.runtime.now()
        resumed = self.runtime.cli_ok("journeys", "resume", SEMINAR, "--policy", "expire")
        self.wait_finished([NO_DEADLINE])
        _, arn = self.execution_of(AFTER_THE_SEMINAR)

        def decided() -> bool:
            states = self.runtime.history(arn).states()
            return "Send the invitation" in states or "Note that the invitation was skipped" in (
                states
            )

        wait_for(decided, timeout=CYCLE_TIMEOUT, what="the late lead's invitation to be decided")
        return {
            "paused": paused,
            "late": late,
            "seminar_at": seminar_at,
            "resumed": resumed,
            "resumed_at": resumed_at,
        }

    def stop_all_cycle(self) -> dict[str, Any]:
        """The emergency stop holds every journey: a seminar lead's mail C, and a lead entered
        into re_engagement meanwhile; resume-all releases each by its journey's own policy."""
        stopped = self.runtime.cli_ok("journeys", "stop-all")
        self.runtime.cli_ok("leads", "record", HELD_BY_STOP_ALL, "seminar_attended")
        entered = self.runtime.cli_ok(
            "journeys", "start", RE_ENGAGEMENT, "--lead", DORMANT, "--key", "dormant-2026-12"
        )
        self.wait_parked(SEMINAR, [HELD_BY_STOP_ALL], HOLD_MAIL_C)
        self.wait_parked(RE_ENGAGEMENT, [DORMANT], HOLD_WE_MISS_YOU)
        status = self.status()
        listed = self.runtime.cli_ok("journeys", "list")
        resumed_at: datetime = self.runtime.now()
        resumed = self.runtime.cli_ok("journeys", "resume-all")
        self.wait_finished([HELD_BY_STOP_ALL])
        # The mail itself, not its state entered: send_email may still be sending it, and this
        # is the script's last step (no settle follows it)
        mail_of(self.runtime, self.leads[DORMANT], "reengage-we-miss-you", timeout=CYCLE_TIMEOUT)
        return {
            "stopped": stopped,
            "entered": entered,
            "status": status,
            "listed": listed,
            "resumed": resumed,
            "resumed_at": resumed_at,
        }
