"""Clicks are acted on only once their judgement is final.

A click judged a person's when it arrives can still turn out to be a scanner's: the first click
of a burst looks human until the second link of the same mail is followed a few seconds later
(see ``judgement.link_burst``). Scoring it, or resuming a journey that waits for a click, in
that gap would give a security gateway's visit the lead's points and the "clicked" branch.

So a click judged a person's is *held*: route_events does nothing with it but start a short
Step Functions execution (``statemachines/settle_clicks.asl.json``) that waits until the burst
window has passed and then marks the stored click ``settled``. The events stream delivers that
change, and route_events acts on the click as it then stands: a person's, or a machine's after
a later click of the burst re-judged it. Automated clicks are final when they arrive (no later
signal makes a machine a person) and opens are never re-judged, so neither is held.

Why a state machine and not a sleep: the wait costs nothing while it waits, survives a retried
batch (the execution is named by the event, so a redelivered record starts nothing twice), and
runs on the local runtime's virtual clock like every other wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from tsunagu.clock import isoformat, parse_instant
from tsunagu.tracking.judgement import BURST_WINDOW_SECONDS

LINK_CLICKED = "link_clicked"
SETTLE_MARGIN_SECONDS = 5.0
"""Beyond the burst window: a click at the window's edge is written, with its re-judgement of
the earlier click, well before that earlier click settles."""
SETTLE_AFTER_SECONDS = BURST_WINDOW_SECONDS + SETTLE_MARGIN_SECONDS
SETTLE_CLICKS_STATE_MACHINE = "settle-clicks"


def awaits_settling(image: Mapping[str, Any]) -> bool:
    """A stored click judged a person's whose judgement a later click can still change."""
    properties = image.get("properties") or {}
    return (
        image.get("type") == LINK_CLICKED
        and not properties.get("automated")
        and not properties.get("settled")
    )


@dataclass(frozen=True)
class HeldClick:
    """The stored click's key, and when its judgement is final."""

    subject: str
    sk: str
    event_id: str
    settles_at: str

    @classmethod
    def of(cls, image: Mapping[str, Any]) -> HeldClick:
        occurred = parse_instant(str(image["occurred_at"]))
        return cls(
            subject=str(image["subject"]),
            sk=str(image["sk"]),
            event_id=str(image["event_id"]),
            settles_at=isoformat(occurred + timedelta(seconds=SETTLE_AFTER_SECONDS)),
        )

    def as_input(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "sk": self.sk,
            "event_id": self.event_id,
            "settles_at": self.settles_at,
        }


class ExecutionStarter(Protocol):
    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> object:
        """Start once: the same name again is not a second execution."""
        ...


class ClickSettling:
    """Holds a click until its judgement is final (see the module's text)."""

    def __init__(self, executions: ExecutionStarter, state_machine_arn: str) -> None:
        self._executions = executions
        self._arn = state_machine_arn

    def hold(self, click: HeldClick) -> None:
        self._executions.start(self._arn, click.event_id, click.as_input())
