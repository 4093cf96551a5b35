"""Leads, as people look at them and change them: show, timeline, update, record an offline
event, suppress. The CLI's ``tsunagu leads ...`` commands call these (and the admin API will)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.commands.access import OPERATIONS, SALES_MAY_CHANGE, Actor, Role
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    FieldError,
    Forbidden,
    MalformedRequest,
    NotFound,
    ValidationFailed,
)
from tsunagu.event_kinds import OBSERVED_EVENT_KINDS
from tsunagu.ids import new_id
from tsunagu.journeys.lifecycle import JourneyEntry
from tsunagu.leads.lookup import lead_by_email
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.leads.search import LeadPage, LeadQuery
from tsunagu.leads.search_words import fold
from tsunagu.leads.updates import LeadUpdate
from tsunagu.leads.updates import update_lead as apply_to_stored_lead
from tsunagu.mail.consent import (
    SUPPRESSION_REASONS,
    SUPPRESSION_STRENGTH,
    SuppressionEntry,
    consent_as_sends_see_it,
)
from tsunagu.qualification.scores import LeadScores

EVENT_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")


class LeadStore(Protocol):
    def find_lead(self, identity: str) -> Lead | None: ...

    def get_lead(self, lead_id: str) -> Lead | None: ...

    def save_changes(self, lead: Lead, events: list[LeadEvent]) -> None: ...

    def put_event(self, event: LeadEvent) -> None: ...

    def events(self, lead_id: str, limit: int = 100) -> list[LeadEvent]: ...

    def timeline(
        self, lead: Lead, limit: int = 500, before: str | None = None
    ) -> list[LeadEvent]: ...

    def consent_evidence(self, lead_id: str) -> list[ConsentEvidence]: ...

    def consent_state(self, lead_id: str) -> dict[str, str]: ...

    def search(self, query: LeadQuery) -> LeadPage: ...

    def reindex(self, grading: Callable[[Lead], str] | None = None) -> int: ...


class Suppressions(Protocol):
    def suppress(
        self, lead_id: str, email: str, reason: str, at: str, event: LeadEvent
    ) -> SuppressionEntry | None:
        """None when stored; else the suppression as strong or stronger that stands (and
        nothing was written)."""
        ...

    def suppression(self, lead_id: str) -> SuppressionEntry | None: ...

    def lift_suppression(self, entry: SuppressionEntry, event: LeadEvent) -> bool: ...

    def suppressions(
        self, reason: str | None, limit: int, cursor: str | None
    ) -> tuple[list[SuppressionEntry], str | None]: ...


class JourneyEntries(Protocol):
    def entries_of(self, lead_id: str) -> list[JourneyEntry]: ...


@dataclass(frozen=True)
class LeadCommands:
    """The ports the lead use cases need (built by ``services.lead_commands``)."""

    leads: LeadStore
    suppressions: Suppressions
    audit: AuditLog
    clock: Clock
    journeys: JourneyEntries | None = None
    """The lead's journeys, for the lead page (None where nobody reads them)."""
    grading: Callable[[Lead], str] | None = None
    """The grade a lead's fields give under today's grading rules (a reindex regrades)."""
    scores: Callable[[datetime], LeadScores] | None = None
    """Leads' scores as of an instant, decay included (None: the stored scores are the scores
    now, as where no rule has a half-life)."""


BANDED_READ = 1_000
"""Leads a search with a score band checks against the band, at most, for one page: with decay
in the rules many may have left the band since their score was stored. A page found short of
its limit then offers the next (``next_cursor``)."""


def list_row(lead: Lead) -> dict[str, Any]:
    """What a list of leads shows of each: the admin API's search and a segment's sample, and
    the command line's ``--json`` of them (one shape, so either loads back where the other did)."""

    def field(name: str) -> Any:
        return lead.fields[name].value if name in lead.fields else None

    return {
        "lead_id": lead.lead_id,
        "email": lead.email,
        "name": field("name"),
        "company": field("company"),
        "owner_email": field("owner_email"),
        "stage": lead.stage,
        "score": lead.score,
        "grade": lead.grade,
        "tags": sorted(lead.tags),
        "crm_status": lead.crm_status,
        "last_activity_at": lead.last_activity_at,
        "updated_at": lead.updated_at,
    }


def search(ports: LeadCommands, actor: Actor, query: LeadQuery) -> LeadPage:
    """Leads by a word of their e-mail, name or company and by stage, owner, tag, grade and
    score band, highest score first, a page at a time. An address typed whole is looked up
    directly (the word filter finds parts of one).

    The score a band reads and a page shows is the lead's score now, decay included (what
    ``tsunagu leads score`` explains); the order is the stored scores' (the index's), which
    with decay in the rules is the order of each lead's score as of its last scored event."""
    allowed(ports.audit, ports.clock, actor, "leads.search", "leads")
    now = ports.clock.now()
    scores = ports.scores(now) if ports.scores else LeadScores.stored(now)
    if query.q and "@" in query.q and query.cursor is None:
        try:
            found = lead_by_email(ports.leads, query.q)
        except (MalformedRequest, NotFound):
            pass  # not a whole address: search for it as a word
        else:
            matched = _matches(found, query, scores)
            return LeadPage([scores.as_of_now(found)] if matched else [], None, 1)
    if scores.fading.none:
        return ports.leads.search(query)  # the stored scores are the scores now
    if query.score_min is None and query.score_max is None:
        page = ports.leads.search(query)
        return dataclasses.replace(page, leads=[scores.as_of_now(lead) for lead in page.leads])
    return _banded(ports, query, scores)


def _banded(ports: LeadCommands, query: LeadQuery, scores: LeadScores) -> LeadPage:
    """A page of the leads whose score now is in the query's band: the index narrowed by the
    stored scores only as far as they bound the scores now, each lead found then checked."""
    low, high = scores.index_band(query.score_min, query.score_max)
    asked = query.model_copy(update={"score_min": low, "score_max": high})
    found: list[Lead] = []
    examined, read, truncated = 0, 0, False
    cursor = query.cursor
    while True:
        # As many as the page still lacks: the page read is then used whole, and its cursor
        # goes on after the last lead checked
        limit = query.limit - len(found)
        page = ports.leads.search(asked.model_copy(update={"limit": limit, "cursor": cursor}))
        examined += page.examined
        truncated = truncated or page.truncated
        read += len(page.leads)
        found += [lead for lead in page.leads if _in_band(lead, query, scores)]
        cursor = page.next_cursor
        # (a page of none: the index search spent its own budget; the caller asks on)
        if cursor is None or not page.leads or len(found) >= query.limit or read >= BANDED_READ:
            break
    return LeadPage([scores.as_of_now(lead) for lead in found], cursor, examined, truncated)


def _in_band(lead: Lead, query: LeadQuery, scores: LeadScores) -> bool:
    return (query.score_min is None or scores.at_least(lead, query.score_min)) and (
        query.score_max is None or scores.at_most(lead, query.score_max)
    )


def reindex(ports: LeadCommands, actor: Actor) -> int:
    """Give every lead the search attributes and the grade it should have: after an upgrade,
    or after the grading rules changed (the stream regrades a lead only when it changes);
    returns how many leads were written."""
    with recorded(ports.audit, ports.clock, actor, "leads.reindex", "leads") as log:
        written = ports.leads.reindex(ports.grading)
        log.detail = f"{written} leads given their search attributes and grade"
    return written


def _matches(lead: Lead, query: LeadQuery, scores: LeadScores) -> bool:
    owner = lead.fields["owner_email"].value if "owner_email" in lead.fields else ""
    return (
        (query.stage is None or lead.stage == query.stage)
        and (query.owner is None or fold(str(owner)) == fold(query.owner))
        and (query.tag is None or query.tag in lead.tags)
        and (query.grade is None or lead.grade == query.grade)
        and _in_band(lead, query, scores)
    )


def show(ports: LeadCommands, actor: Actor, email: str, *, events: int = 20) -> dict[str, Any]:
    """The lead, its consent and suppression as sends see them, its evidence and its latest
    events."""
    with recorded(ports.audit, ports.clock, actor, "leads.show", f"lead:{email}"):
        lead = lead_by_email(ports.leads, email)
    suppressed = ports.suppressions.suppression(lead.lead_id)
    return {
        **lead.summary(),
        # As sends see it (an unsubscribe from all mail overrides each topic's opt-in).
        "consent": consent_as_sends_see_it(ports.leads.consent_state(lead.lead_id)),
        # Whether any mail reaches the lead at all: a suppression stops every mail, whatever
        # the consent above says (why none goes, and whom a lift is for: ``unsuppress``)
        "suppression": None if suppressed is None else suppression_json(suppressed),
        "consent_evidence": [e.__dict__ for e in ports.leads.consent_evidence(lead.lead_id)],
        # The journeys it is in or was in; why it took each branch is on its timeline
        # (journey_decision events).
        "journeys": [
            {
                "journey_id": entry.journey_id,
                "status": entry.status,
                "entered_at": entry.entered_at,
                "trigger": entry.trigger,
                "entries": entry.entries,
                "exit_reason": entry.exit_reason,
            }
            for entry in (ports.journeys.entries_of(lead.lead_id) if ports.journeys else [])
        ],
        "recent_events": [
            {"type": e.type, "at": e.occurred_at, **e.properties}
            for e in ports.leads.events(lead.lead_id, limit=events)
        ],
    }


def find(ports: LeadCommands, actor: Actor, email: str) -> Lead:
    """The lead with this address (as capture matches it): NotFound when there is none."""
    with recorded(ports.audit, ports.clock, actor, "leads.show", f"lead:{email}"):
        return lead_by_email(ports.leads, email)


def recent_events(
    ports: LeadCommands, actor: Actor, email: str, *, limit: int = 100
) -> tuple[Lead, list[LeadEvent]]:
    """The lead and its latest events, newest first."""
    lead = find(ports, actor, email)
    return lead, ports.leads.events(lead.lead_id, limit=limit)


@dataclass(frozen=True)
class TimelinePage:
    lead: Lead
    events: list[LeadEvent]
    """Oldest first."""
    earlier: bool
    """Whether events older than this page's first exist (read one ahead, so a page that ends
    exactly at the lead's first event does not offer an empty page before it)."""


def timeline(
    ports: LeadCommands, actor: Actor, email: str, *, limit: int = 500, before: str | None = None
) -> TimelinePage:
    """The lead's newest ``limit`` events (one at least; before ``before``, the ``storage_key``
    of the oldest event a page showed, for the page before it), its browsing before it had a name
    included, oldest first, and whether earlier events exist."""
    with recorded(ports.audit, ports.clock, actor, "leads.timeline", f"lead:{email}"):
        lead = lead_by_email(ports.leads, email)
    limit = max(limit, 1)
    events = ports.leads.timeline(lead, limit=limit + 1, before=before)
    return TimelinePage(lead, events[-limit:], earlier=len(events) > limit)


def update(
    ports: LeadCommands, actor: Actor, email: str, change: LeadUpdate
) -> tuple[Lead, list[LeadEvent]]:
    """A person's change to a lead (stage, CRM status, tags, fields): ranks as the sales
    channel when fields merge. ``sales`` may set stage and CRM status of its own leads only."""
    lead = lead_by_email(ports.leads, email)
    with recorded(ports.audit, ports.clock, actor, "leads.update", f"lead:{lead.lead_id}") as log:
        if actor.role in log.operation.own_leads_only:
            _sales_may(actor, lead, change)
        changed, events = apply_to_stored_lead(
            lead.lead_id,
            change,
            by=f"{actor.via}:{actor.email or actor.user_id}",
            source=Channel.SALES,
            store=ports.leads,
            now=ports.clock.now(),
        )
        log.changed(_audited_view(lead), _audited_view(changed))
    return changed, events


def record_event(
    ports: LeadCommands, actor: Actor, email: str, kind: str, properties: Mapping[str, str]
) -> LeadEvent:
    """An offline event (a seminar's attendee list, a trade-show scan) on the lead's stream:
    scoring, journeys and their waits take it as they take a tracked one."""
    if not EVENT_KIND.fullmatch(kind):
        raise ValidationFailed([FieldError("kind", f"{kind!r} is not an event kind (a_b_c)")])
    if kind in OBSERVED_EVENT_KINDS:
        raise ValidationFailed(
            [FieldError("kind", f"{kind} is recorded by Tsunagu itself, when it happens")]
        )
    lead = lead_by_email(ports.leads, email)
    target = f"lead:{lead.lead_id}"
    with recorded(ports.audit, ports.clock, actor, "leads.record_event", target) as log:
        now = ports.clock.now()
        props: dict[str, Any] = {**properties, "source": actor.via}
        event = LeadEvent(new_id("evt", now), kind, isoformat(now), lead.lead_id, None, props)
        ports.leads.put_event(event)
        log.detail = f"recorded {kind} ({event.event_id})"
    return event


def suppress(ports: LeadCommands, actor: Actor, email: str, note: str | None) -> Lead:
    """Stop every mail to a lead (a person asked by phone, a role address, a legal hold).

    A lead suppressed already is left as it is (AlreadyExists naming why): a manual suppression
    is the weakest, and in place of a complaint or a bounce it would be one a marketer may lift."""
    lead = lead_by_email(ports.leads, email)
    with recorded(ports.audit, ports.clock, actor, "leads.suppress", f"lead:{lead.lead_id}") as log:
        now = ports.clock.now()
        at = isoformat(now)
        event = LeadEvent(
            new_id("evt", now),
            "mail_suppressed",
            at,
            lead.lead_id,
            properties={"reason": "manual", "note": note},
        )
        standing = ports.suppressions.suppress(lead.lead_id, lead.email, "manual", at, event)
        if standing is not None:
            raise AlreadyExists(
                f"{lead.email} is suppressed already ({standing.reason}, since {standing.at}):"
                " nothing changed"
            )
        # Stored only where no suppression was (the store's condition): the real before
        log.changed({"suppressed": None}, {"suppressed": "manual"})
        log.detail = note
    return lead


def suppressions(
    ports: LeadCommands,
    actor: Actor,
    reason: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[SuppressionEntry], str | None]:
    """The suppression list, newest first: every address no mail may reach, and why."""
    allowed(ports.audit, ports.clock, actor, "suppressions.list", "suppressions")
    if reason is not None and reason not in SUPPRESSION_REASONS:
        known = ", ".join(SUPPRESSION_REASONS)
        raise ValidationFailed([FieldError("reason", f"one of {known}")])
    return ports.suppressions.suppressions(reason, limit, cursor)


LIFT_REACH: dict[Role, int] = {
    Role.MARKETER: SUPPRESSION_STRENGTH["manual"],
    Role.ADMIN: SUPPRESSION_STRENGTH["hard_bounce"],
}
"""The strongest suppression each role may lift, on the one ranking of their reasons
(mail.consent.SUPPRESSION_STRENGTH): a marketer a manual one; an admin a bounce too - it is
lifted once the address is corrected or the mailbox works again, as mail to a dead address
harms every lead's delivery (the sender's reputation); a complaint, above every reach, no one."""


def lifted_by(reason: str) -> list[Role]:
    """The roles that may lift a suppression for ``reason`` (none for a complaint), in the
    roles' order: what unsuppress enforces, and what the lead and the suppression list tell the
    console it may offer (``liftable_by``), so no front end keeps a copy of the rule."""
    strength = SUPPRESSION_STRENGTH[reason]
    unsuppressing = OPERATIONS["leads.unsuppress"].roles
    return [role for role in Role if role in unsuppressing and strength <= LIFT_REACH.get(role, -1)]


def suppression_json(entry: SuppressionEntry) -> dict[str, Any]:
    """A suppression as the lead and the suppression list show it: why, since when, and who may
    lift it."""
    return {"reason": entry.reason, "at": entry.at, "liftable_by": lifted_by(entry.reason)}


def unsuppress(ports: LeadCommands, actor: Actor, email: str, note: str) -> SuppressionEntry:
    """Let mail reach a suppressed lead again (consent still decides what it may receive).

    A complaint is never lifted: the person marked our mail as spam, and no mail reaches the
    address again - a new opt-in neither lifts it, nor could its confirmation mail get there."""
    lead = lead_by_email(ports.leads, email)
    target = f"lead:{lead.lead_id}"
    with recorded(ports.audit, ports.clock, actor, "leads.unsuppress", target) as log:
        entry = ports.suppressions.suppression(lead.lead_id)
        if entry is None:
            raise NotFound(f"{lead.email} is not suppressed")
        lifters = lifted_by(entry.reason)
        if not lifters:  # a complaint
            raise Forbidden(
                f"{lead.email} complained about our mail (marked it as spam): no one may lift "
                "that, and no mail reaches the address again"
            )
        if actor.role not in lifters:  # (only unsuppressing roles get here: a bounce)
            raise Forbidden(
                f"{lead.email} is suppressed after bounces ({entry.reason}): only an admin may "
                "lift it, once the address is corrected"
            )
        now = ports.clock.now()
        event = LeadEvent(
            new_id("evt", now),
            "mail_unsuppressed",
            isoformat(now),
            lead.lead_id,
            properties={"reason": entry.reason, "suppressed_at": entry.at, "note": note},
        )
        if not ports.suppressions.lift_suppression(entry, event):
            raise ConcurrentUpdate(f"{lead.email}'s suppression changed meanwhile: read it again")
        log.changed({"suppressed": entry.reason}, {"suppressed": None})
        log.detail = note
    return entry


def _sales_may(actor: Actor, lead: Lead, change: LeadUpdate) -> None:
    owner = lead.fields["owner_email"].value if "owner_email" in lead.fields else None
    if owner is None or owner.casefold() != (actor.email or "").casefold():
        raise Forbidden(f"{lead.email} is not yours: sales may change only the leads it owns")
    asked = {name for name, value in change.model_dump(exclude_defaults=True).items() if value}
    if asked - SALES_MAY_CHANGE:
        names = ", ".join(sorted(asked - SALES_MAY_CHANGE))
        raise Forbidden(f"sales may set stage and CRM status only, not {names}")


def _audited_view(lead: Lead) -> dict[str, Any]:
    """What of a lead the log compares: the values a person changes."""
    return {
        "stage": lead.stage,
        "crm_status": lead.crm_status,
        "tags": sorted(lead.tags),
        **{f"fields.{name}": value.value for name, value in sorted(lead.fields.items())},
    }
