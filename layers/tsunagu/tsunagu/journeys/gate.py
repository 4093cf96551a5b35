"""The gate before every journey mail: send, hold back, skip, or leave the journey.

Each send in a journey's state machine is preceded by the gate (journey_gate). It decides from
what is true *now*, not when the lead entered:

- **exit** — the lead unsubscribed, bounced, was removed, converted (its stage or a goal), or its
  CRM status says sales has it; also when the journey was archived.
- **park** — the journey (or the whole account) is paused: the execution waits on a task token,
  costing nothing, until resume releases it.
- **skip** — resume said to skip the mail held back here (``skip_missed``), or its own deadline
  passed (``expire``), or it belongs to a day that is over (``send_by``, whatever the policy: a
  "thank you for attending today" is never sent a week later, nor deferred past its day).
- **defer** — a mail resume let go would go outside allowed time (quiet hours, a closed day,
  in the lead's time zone: a resume at night, a paced turn at night), the frequency cap across
  all journeys is reached, or ``pace`` spreads the release:
  a Wait state sleeps until ``send_at`` (always an allowed moment), then the gate decides
  again - a deadline or the mail's day that passed meanwhile then skips it.
- **send**.

Steps that are no mail to the lead (update_lead, notify_owner, webhook) pass a lighter gate
(``decide_step``): a paused or stopped journey does nothing to or about its leads, so they
**park** as a mail does, and **exit** when the journey was archived, the lead removed, its
entry ended, or its CRM status says sales has it; else they **go**. Consent, the frequency cap,
quiet hours and a mail's day are rules for mail to the lead, and do not hold them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.clock import isoformat, parse_instant
from tsunagu.journeys.model import Journey
from tsunagu.leads.model import Lead
from tsunagu.mail.consent import ConsentView, SkipReason, marketing_refusal

GateAction = Literal["send", "park", "skip", "defer", "exit", "go"]
"""``go``: the answer of the gate before a step that is no mail (``decide_step``)."""

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


class FrequencyCap(BaseModel):
    """At most this many marketing mails to one lead, across every journey, in any rolling day
    and week; what happens to one more is ``defer`` (to the first moment it fits) or ``skip``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_day: int = Field(default=1, ge=1, le=100)
    per_week: int = Field(default=3, ge=1, le=700)
    over: Literal["defer", "skip"] = "defer"

    @classmethod
    def parse(cls, text: str) -> FrequencyCap:
        """``per_day=1,per_week=3,over=defer`` (the template parameter's format)."""
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            values[name.strip()] = value.strip()
        return cls.model_validate(values)


@dataclass(frozen=True)
class Release:
    """How resume let a parked execution go (it arrives in the state as ``$.release``)."""

    step: str
    action: Literal["send", "skip", "expire"]
    not_before: str | None = None
    """pace: the moment this lead's turn comes."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any], step: str) -> Release | None:
        """The release meant for this step; an older one, for an earlier gate, is ignored."""
        release = state.get("release")
        if not isinstance(release, Mapping) or release.get("step") != step:
            return None
        action = release.get("action")
        if action not in ("send", "skip", "expire"):
            return None
        not_before = release.get("not_before")
        return cls(step, action, str(not_before) if not_before else None)

    @staticmethod
    def expiring(state: Mapping[str, Any]) -> bool:
        """Whether the execution was last let go under ``expire``, at this gate or an earlier
        one: then the deadline of every later mail holds too. An invitation dropped after the
        seminar began must not be followed by its reminder ("you have not clicked yet") days
        later; a later release under another policy ends it."""
        release = state.get("release")
        return isinstance(release, Mapping) and release.get("action") == "expire"

    def as_output(self) -> dict[str, Any]:
        return {"step": self.step, "action": self.action, "not_before": self.not_before}


@dataclass(frozen=True)
class SendLedger:
    """The marketing mails journeys have let through to one lead in the last week (the gate's
    own record, not the mail log): the gate reserves its mail here with a condition on
    ``version``, so two journeys' mails due at the same moment cannot both pass the cap.

    Each reservation is the booking of one pass through a mail's gate (``passes``, beside
    ``times``), so that the gate is the ledger's only writer and books a mail once: asked
    again for the same pass (its task retried) it books it again in its place, and when the
    mail it let through was held instead of sent (SendHeld) it lets that booking go - the
    mail is counted when a later pass lets it through, or never, if the resume skips it."""

    times: tuple[str, ...] = ()
    version: str | None = None
    """None: nothing reserved yet."""
    passes: tuple[str | None, ...] = ()
    """The pass that booked each of ``times`` (steps.GateRequest.booking); None (or missing)
    for one booked before bookings named their pass, which no pass lets go."""

    def within(self, now: datetime, window: timedelta = WEEK) -> tuple[str, ...]:
        return tuple(t for t in self.times if now - parse_instant(t) < window)

    def bookings(self) -> list[tuple[str, str | None]]:
        """Each time with the pass that booked it."""
        return [
            (t, self.passes[i] if i < len(self.passes) else None) for i, t in enumerate(self.times)
        ]

    def holds(self, passes: Collection[str]) -> bool:
        """Whether any of these passes has a booking here."""
        return any(by in passes for _, by in self.bookings())

    def without(self, passes: Collection[str]) -> SendLedger:
        """The ledger without these passes' bookings (its version kept: what is written over)."""
        kept = [(t, by) for t, by in self.bookings() if by not in passes]
        return SendLedger(tuple(t for t, _ in kept), self.version, tuple(by for _, by in kept))

    def booked(self, now: datetime, by: str | None) -> SendLedger:
        """The ledger to write with one more mail booked at ``now`` by the pass ``by``: the
        bookings of the last week and it."""
        kept = [(t, p) for t, p in self.bookings() if now - parse_instant(t) < WEEK]
        kept.append((isoformat(now), by))
        return SendLedger(tuple(t for t, _ in kept), self.version, tuple(p for _, p in kept))


@dataclass(frozen=True)
class EntryState:
    """A lead's entry into a journey, as route_events and the gate see it."""

    status: Literal["active", "exited"]
    exit_reason: str | None = None


@dataclass(frozen=True)
class GateInput:
    journey: Journey | None
    account_paused: bool
    lead: Lead | None
    consent: ConsentView
    entry: EntryState | None
    recent_sends: Sequence[str]
    """When journeys let marketing mail through to this lead in the last week, ISO instants."""
    step: str
    release: Release | None = None
    deadline: str | None = None
    """The mail's own deadline ("the webinar starts"): under ``expire`` it is not sent after."""
    expiring: bool = False
    """The execution was let go under ``expire`` at an earlier gate (Release.expiring): this
    mail's deadline holds as well."""
    send_by: str | None = None
    """The end of the only day the mail makes sense on: past it the mail is skipped under every
    policy, and a deferral that would pass it skips instead."""


@dataclass(frozen=True)
class GateDecision:
    action: GateAction
    reason: str | None = None
    send_at: str | None = None

    def as_output(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "send_at": self.send_at}


def exit_reason(
    journey: Journey | None, lead: Lead | None, consent: ConsentView, entry: EntryState | None
) -> str | None:
    """Why this lead must leave this journey now, or None."""
    gone = _gone(journey, lead, entry)
    if gone is not None:
        return gone
    assert journey is not None  # else _gone said so
    assert lead is not None
    if consent.suppression is not None:
        bounced = consent.suppression.reason in ("hard_bounce", "soft_bounce_limit")
        return "bounced" if bounced else "suppressed"
    refused = marketing_refusal(consent.topics, journey.topic)
    if refused is not None:
        return "unsubscribed" if refused is SkipReason.OPTED_OUT else "no_consent"
    if journey.leaves_on_crm_status(lead.crm_status):
        return "crm_status"
    if journey.leaves_on_stage(lead.stage):
        return "converted"
    return None


def step_exit_reason(
    journey: Journey | None, lead: Lead | None, entry: EntryState | None
) -> str | None:
    """Why this lead must leave this journey now, at a step that is no mail to it, or None.

    Not for want of consent or a suppressed address: those stop mail to the lead, not a tag on
    it or a word to its owner. Not for its stage either: the stage may be the one this
    journey's own update_lead just set (``sql``, then tell the owner); a stage set by anything
    else ends the entry at once (route_events), which ``_gone`` reads."""
    gone = _gone(journey, lead, entry)
    if gone is not None:
        return gone
    assert journey is not None  # else _gone said so
    assert lead is not None
    if journey.leaves_on_crm_status(lead.crm_status):
        return "crm_status"
    return None


def _gone(journey: Journey | None, lead: Lead | None, entry: EntryState | None) -> str | None:
    """The journey archived, the lead removed, or its time in the journey already ended."""
    if journey is None or journey.status == "archived":
        return "journey_archived"
    if lead is None:
        return "removed"
    if entry is not None and entry.status == "exited":
        return entry.exit_reason or "exited"
    return None


def held_reason(journey: Journey | None, account_paused: bool) -> str | None:
    """Why a journey's leads are held where they are: the emergency stop, or the journey's own
    pause; None when neither. The gate parks on it, and a journey mail already past its gate (a
    send retried minutes after SES refused it) is sent back to the gate on it
    (tsunagu.mail.send.SendHeld): a pause or a stop holds every mail not yet sent."""
    if account_paused:
        return "account_paused"
    if journey is not None and journey.status == "paused":
        return "journey_paused"
    return None


def _held(gate: GateInput, journey: Journey) -> GateDecision | None:
    """Park while the journey (or the whole account) is paused."""
    reason = held_reason(journey, gate.account_paused)
    return GateDecision("park", reason) if reason is not None else None


def decide_step(gate: GateInput) -> GateDecision:
    """The gate before a step that is no mail to the lead: exit, park, or go."""
    reason = step_exit_reason(gate.journey, gate.lead, gate.entry)
    if reason is not None:
        return GateDecision("exit", reason)
    assert gate.journey is not None
    return _held(gate, gate.journey) or GateDecision("go")


def next_allowed_by_cap(
    recent_sends: Sequence[str], now: datetime, cap: FrequencyCap
) -> datetime | None:
    """None when one more mail fits under the cap now, else the first moment it will."""
    sends = sorted(t for t in (parse_instant(s) for s in recent_sends) if now - t < WEEK)
    earliest = now
    for window, limit in ((DAY, cap.per_day), (WEEK, cap.per_week)):
        inside = [t for t in sends if now - t < window]
        if len(inside) >= limit:
            # The window admits one more once the oldest send that keeps it full leaves it.
            earliest = max(earliest, inside[len(inside) - limit] + window)
    return None if earliest == now else earliest


def decide(
    gate: GateInput,
    *,
    now: datetime,
    cap: FrequencyCap,
    allowed_at: Callable[[datetime], datetime],
) -> GateDecision:
    """``allowed_at`` moves a moment out of quiet hours and closed days, in the lead's time
    zone: a mail released by resume (at once or at its paced turn) goes in allowed time, and
    every deferral lands there."""
    reason = exit_reason(gate.journey, gate.lead, gate.consent, gate.entry)
    if reason is not None:
        return GateDecision("exit", reason)
    assert gate.journey is not None
    held = _held(gate, gate.journey)
    if held is not None:
        return held
    send_by = parse_instant(gate.send_by) if gate.send_by else None
    if send_by is not None and send_by <= now:
        return GateDecision("skip", "past_its_day")
    release = gate.release
    if release is not None and release.action == "skip":
        return GateDecision("skip", "skipped_on_resume")
    expiring = gate.expiring or (release is not None and release.action == "expire")
    if expiring and gate.deadline and parse_instant(gate.deadline) <= now:
        return GateDecision("skip", "deadline_passed")
    if release is not None and release.not_before and parse_instant(release.not_before) > now:
        return _defer("paced", allowed_at(parse_instant(release.not_before)), send_by)
    if release is not None and not _allowed_now(now, allowed_at):
        # A mail resume let go (send_missed, expire, or a paced turn that came): whenever the
        # marketer resumed, it goes in allowed time. Other sends are not held here yet (a
        # welcome mail at midnight, a send right after a wait for behaviour): the tests'
        # worlds still send those at once, on purpose (tests/unit/test_journey_gate.py).
        return _defer("quiet_hours", allowed_at(now), send_by)
    fits_at = next_allowed_by_cap(gate.recent_sends, now, cap)
    if fits_at is not None:
        if cap.over == "skip":
            return GateDecision("skip", "frequency_cap")
        return _defer("frequency_cap", allowed_at(fits_at), send_by)
    return GateDecision("send")


def _allowed_now(now: datetime, allowed_at: Callable[[datetime], datetime]) -> bool:
    """Whether mail may go at ``now``. Asked of the whole second: ``allowed_at`` answers whole
    seconds, and quiet hours and closed days begin and end on whole minutes."""
    second = now.replace(microsecond=0)
    return allowed_at(second) <= second


def _defer(reason: str, until: datetime, send_by: datetime | None) -> GateDecision:
    """Wait until ``until``; or skip, when that is past the only day the mail makes sense on."""
    if send_by is not None and until > send_by:
        return GateDecision("skip", "past_its_day")
    return GateDecision("defer", reason, wait_timestamp(until))


def wait_timestamp(instant: datetime | str) -> str:
    """The form a Wait state's TimestampPath accepts (UTC, whole seconds, rounded up)."""
    from tsunagu.journeys.business_time import step_functions_timestamp, whole_second_at_or_after

    moment = parse_instant(instant) if isinstance(instant, str) else instant
    return step_functions_timestamp(whole_second_at_or_after(moment))
