"""Capturing a web-form submission: one person, one lead, stored whole or not at all."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.errors import (
    ConcurrentUpdate,
    IdempotencyConflict,
    NotFound,
    OriginNotAllowed,
    TooManyRequests,
)
from tsunagu.forms import RawValue
from tsunagu.forms.stored import StoredForm, is_form_id
from tsunagu.forms.validation import (
    Submission,
    is_honeypot_filled,
    validate_submission,
)
from tsunagu.ids import new_id
from tsunagu.leads.history import (
    AnonymousEvent,
    HistoryStore,
    came_from,
    claimable,
    own_hosts,
    read_history,
)
from tsunagu.leads.merge import merge_fields
from tsunagu.leads.model import (
    ConsentEvidence,
    Lead,
    LeadEvent,
    email_identity,
    visitor_identity,
)
from tsunagu.leads.submission_limits import NO_LIMITS, CountedWindow, SubmissionLimits
from tsunagu.mail.consent import (
    PlannedOn,
    SkipReason,
    TopicRecord,
    UnsubscribeLifted,
    lift_unsubscribe_from_all,
    marketing_refusal,
    opt_outs_of,
    sets_topic_state,
)

FORM_SUBMITTED = "form_submitted"
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class RequestContext:
    """Where a submission came from; kept as consent evidence and for the origin check."""

    origin: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None


@dataclass(frozen=True)
class CaptureResult:
    lead_id: str
    """The id the public answer names: the lead's own for a lead this submission created, a
    fresh one that names no lead for an address that was a lead already (and for a honeypot
    hit), so that the form tells nobody whether an address is a lead (replays answer alike)."""
    created: bool
    thank_you_url: str | None = None
    ignored_fields: list[str] = field(default_factory=list)
    replayed: bool = False
    stored: bool = True
    """False only for a honeypot hit, which is answered as a success but stores nothing."""


@dataclass(frozen=True)
class CaptureWrite:
    """Everything one submission stores, committed in one transaction."""

    lead: Lead
    is_new: bool
    claim_identities: list[str]
    """Identities that must not exist yet (the address of a new lead)."""
    point_identities: list[str]
    """Identities that now point at this lead (visitor ids: the latest form wins)."""
    event: LeadEvent
    consent: ConsentEvidence | None
    idempotency_key: str | None
    request_hash: str
    response: dict[str, Any]
    counted: list[CountedWindow] = field(default_factory=list)
    """Rate-limit counters this submission adds to, each refused when full."""
    opt_in_lifts_unsubscribe: bool = True
    """Whether an opt-in here may end an earlier unsubscribe from all mail; a list's "yes"
    never does - it may be older than the no. A form's ticked box of a lead who said no is
    stored pending (only the confirmation mail ends the no: _opted_out), so a form's write
    lifts an unsubscribe only if the lead's "no" is one it did not read."""
    history: list[LeadEvent] = field(default_factory=list)
    """The lead's copies of what its visitor did before this link, each claimed with it (a
    claim record that must not exist yet, and the copy): tsunagu.leads.history."""
    lifted: UnsubscribeLifted | None = None
    """The lead's unsubscribe from all mail that this opt-in ends, and the topics it keeps out
    (tsunagu.mail.consent.lift_unsubscribe_from_all): planned on the lead's topics as read."""
    planned_on: PlannedOn | None = None
    """A form's opt-in of a lead that exists: the records it was decided on (the topic's and
    all mail's, as read; None: it had none). The topic's state is written only while each is
    still that record, as the preference page's save is (PreferenceStore.change_consents): a
    "no" given between the read and the write (the preference page, the unsubscribe link, the
    mail app's one-click) refuses the write, and the capture reads again and decides again
    (_opted_out: the ticked box then waits for the person's confirmation), so a later opt-out
    is never overwritten by an earlier opt-in."""

    @property
    def lifts_unsubscribe(self) -> bool:
        """Whether the write may end the lead's unsubscribe from all mail (a new lead has none):
        the lead's topics are read to plan it (``lifted``)."""
        return self._opts_in_a_lead_that_exists and self.opt_in_lifts_unsubscribe

    @property
    def checks_no_opt_out(self) -> bool:
        """Whether the write holds only while the lead has not opted out (of the topic or of
        all mail) nor been suppressed: a list's opt-in, so that a "no" given a moment before
        it is written wins - the write is refused, read again and planned without it. Two
        condition checks (all mail, suppression) and a condition on the topic's own put."""
        return self._opts_in_a_lead_that_exists and not self.opt_in_lifts_unsubscribe

    @property
    def _opts_in_a_lead_that_exists(self) -> bool:
        """An opt-in (not one stored pending) of a lead that was there before: the one rule
        ``lifts_unsubscribe`` and ``checks_no_opt_out`` split by who writes it. A form reads
        the lead's topics on a wider rule, on purpose (capture_submission): before this
        status is known, since what it reads decides it (_opted_out: pending)."""
        consent = self.consent
        return consent is not None and consent.status == "opted_in" and not self.is_new

    @property
    def planned_on_checks(self) -> PlannedOn:
        """The records of ``planned_on`` the write checks without writing them (a condition
        check each): all but the topic's own, whose put carries its condition, and those the
        end of an unsubscribe conditions itself (``lifted``)."""
        if self.planned_on is None or self.consent is None:
            return {}
        written = {self.consent.topic} | (self.lifted.topics if self.lifted else set())
        return {t: r for t, r in self.planned_on.items() if t not in written}

    @property
    def items(self) -> int:
        """The items its transaction holds (what counts against MAX_TRANSACTION_ITEMS)."""
        consent = 0
        if self.consent is not None:
            consent = (
                2
                + (self.lifted.items if self.lifted is not None else 0)
                + (2 if self.checks_no_opt_out else 0)
                + len(self.planned_on_checks)
            )
        return (
            (1 if self.idempotency_key else 0)
            + len(self.claim_identities)
            + len(self.point_identities)
            + 2  # the lead, its event
            + consent
            + len(self.counted)
            + 2 * len(self.history)
        )


MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's limit on the items of one TransactWriteItems."""
ITEM_BYTES = 400_000
"""What one DynamoDB item may hold ("400 KB"), a put of more refused and a transaction with it:
read as 400,000 bytes, a little under what DynamoDB itself takes (409,600) and the local
runtime's moto (405,000, counted without the overheads tsunagu.store.transactions.item_bytes
adds), so that a row the plan lets through is written in either."""


@dataclass(frozen=True)
class RememberedSubmission:
    request_hash: str
    response: dict[str, Any]


class WriteConflict(Exception):
    """The store refused a capture because something changed underneath it (``history``:
    another capture claimed one of the visitor's events first), or (``rate``) because one of
    its counters, ``window``, was full."""

    def __init__(
        self,
        kind: Literal["submission", "identity", "lead", "rate", "history"],
        window: CountedWindow | None = None,
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.window = window


class CaptureStore(HistoryStore, Protocol):
    def get_form(self, form_id: str) -> StoredForm | None: ...

    def find_lead(self, identity: str) -> Lead | None: ...

    def get_submission(self, key: str) -> RememberedSubmission | None: ...

    def topic_records(self, lead_id: str) -> dict[str, TopicRecord]:
        """Each topic's state record, read strongly consistent."""
        ...

    def commit_capture(self, write: CaptureWrite) -> None:
        """Store the whole write or nothing; raise WriteConflict when a condition fails."""
        ...


def _request_hash(form_id: str, raw: Mapping[str, RawValue]) -> str:
    canonical = json.dumps([form_id, raw], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plan(
    form: StoredForm,
    submission: Submission,
    existing: Lead | None,
    context: RequestContext,
    clock: Clock,
    request_hash: str,
    limits: SubmissionLimits,
    history: Sequence[AnonymousEvent] = (),
    topics: Mapping[str, TopicRecord] | None = None,
) -> CaptureWrite:
    """What the submission writes; ``history``: what its visitor did before, as read for it
    (read_history), of which the write claims what is free and fits the transaction;
    ``topics``: the existing lead's topic records, read when the box is ticked: they decide
    whether the opt-in waits for a confirmation, and plan the end of an unsubscribe from all
    mail it may bring."""
    now = clock.now()
    at = isoformat(now)
    if existing is None:
        lead = Lead(
            lead_id=new_id("lead", now),
            email=submission.email.address,
            fields={},
            sources=[],
            visitor_ids=set(),
            stage="lead",
            created_at=at,
            updated_at=at,
        )
    else:
        lead = existing
    merged = merge_fields(lead.fields, submission.fields, source=form.source, at=at)
    lead.fields = merged.fields
    lead.updated_at = at
    if form.source.value not in lead.sources:
        lead.sources = [*lead.sources, form.source.value]
    point = []
    visitor = _linked_visitor(submission, existing, context)
    if visitor:
        lead.visitor_ids = lead.visitor_ids | {visitor}
        point.append(visitor_identity(visitor))

    event = LeadEvent(
        event_id=new_id("evt", now),
        type=FORM_SUBMITTED,
        occurred_at=at,
        lead_id=lead.lead_id,
        visitor_id=visitor,
        properties={
            "form_id": form.form_id,
            "source": form.source.value,  # the channel the funnel counts a new lead under
            "submission_id": submission.submission_id,
            "fields": submission.fields,
            "changed_fields": merged.changed,
            "kept_fields": merged.kept,
            "consent_given": submission.consent_given,
            "referrer": context.referrer,
            # The form report's source (tsunagu.reports.counting.form_source), decided here,
            # where the visitor's history and the form's own site are known
            "came_from": came_from(
                history,
                lead.lead_id,
                context.referrer,
                own_hosts(form.allowed_origins, context.origin),
            ),
            "new_lead": existing is None,
        },
    )
    consent = None
    if _gives_consent(form, submission):
        assert form.consent is not None  # _gives_consent: the form asks for consent
        confirm = form.consent.double_opt_in or _opted_out(topics, form.consent.topic)
        if confirm:
            event.properties["consent_pending"] = form.consent.topic
            event.properties["confirmation_template"] = form.consent.confirmation_template
        consent = ConsentEvidence(
            evidence_id=new_id("cns", now),
            lead_id=lead.lead_id,
            email=lead.email,
            topic=form.consent.topic,
            status="pending" if confirm else "opted_in",
            at=at,
            text=form.consent.text,
            text_version=form.consent.version,
            form_id=form.form_id,
            ip=context.source_ip,
            user_agent=context.user_agent,
        )
    key = f"form:{form.form_id}:{submission.submission_id}" if submission.submission_id else None
    claims = [email_identity(submission.email.identity_key)] if existing is None else []
    write = CaptureWrite(
        lead=lead,
        is_new=existing is None,
        claim_identities=claims,
        point_identities=point,
        event=event,
        consent=consent,
        idempotency_key=key,
        request_hash=request_hash,
        # A known address is answered as a new one, with an id of no lead (CaptureResult)
        response={
            "lead_id": lead.lead_id if existing is None else new_id("lead", now),
            "created": existing is None,
        },
        counted=limits.windows(
            email_identity(submission.email.identity_key), context.source_ip, now
        ),
    )
    if consent is not None and sets_topic_state(consent.status) and topics is not None:
        # Decided on these records (_opted_out): written only while they are still as read
        planned = {topic: topics.get(topic) for topic in opt_outs_of(consent.topic)}
        write = replace(write, planned_on=planned)
    if write.lifts_unsubscribe and topics is not None:
        assert consent is not None  # lifts_unsubscribe: an opt-in
        lifted = lift_unsubscribe_from_all(
            topics,
            {consent.topic},
            lead_id=lead.lead_id,
            email=lead.email,
            at=at,
            new_evidence_id=lambda: new_id("cns", now),
        )
        write = replace(write, lifted=lifted)
    if not history:
        return write
    room = (MAX_TRANSACTION_ITEMS - write.items) // 2
    return replace(write, history=claimable(history, lead.lead_id, at, room))


def _opted_out(topics: Mapping[str, TopicRecord] | None, topic: str) -> bool:
    """Whether the lead whose topics are ``topics`` said no to ``topic`` (to it, or to all mail).

    A ticked box then asks for the double opt-in's confirmation whatever the form says: anyone
    can post a form naming an address, and only the person's own new consent ends their "no"
    (Japan's 特定電子メール法; the confirmation is what ends it, tsunagu.mail.preferences)."""
    if not topics:
        return False
    states = {name: record.status for name, record in topics.items()}
    return marketing_refusal(states, topic) is SkipReason.OPTED_OUT


def _linked_visitor(
    submission: Submission, existing: Lead | None, context: RequestContext
) -> str | None:
    """The browser the submission links to its lead, if any.

    A known lead's activity is whatever its browsers do; a post without Origin (no browser's:
    a server, or a script) naming someone's address and the poster's own visitor id made every
    page view of the poster that person's. So a visitor joins a known lead only on a browser's
    post, whose Origin the form allows (open_form refused any other); a new lead is the
    poster's own making, and takes the visitor either way."""
    if existing is not None and context.origin is None:
        return None
    return submission.visitor_id


def _gives_consent(form: StoredForm, submission: Submission) -> bool:
    """Whether the submission ticks the form's consent box."""
    return form.consent is not None and submission.consent_given


def open_form(form_id: str, origin: str | None, *, store: CaptureStore) -> StoredForm:
    """The form a request names, if that request may use it.

    A browser always sends Origin on a cross-site POST; a request from a site the form was not
    registered for is refused. Server-side posts carry no Origin and are accepted (but link no
    browser to a lead that exists: _linked_visitor).
    """
    if not is_form_id(form_id):
        raise NotFound(f"there is no form with id {form_id[:64]!r}")
    form = store.get_form(form_id)
    if form is None:
        raise NotFound(f"there is no form with id {form_id!r}")
    if origin is not None and not form.allows_origin(origin):
        raise OriginNotAllowed(f"this form does not accept submissions from {origin}")
    return form


def capture_submission(
    form: StoredForm,
    raw: Mapping[str, RawValue],
    context: RequestContext,
    *,
    store: CaptureStore,
    clock: Clock,
    limits: SubmissionLimits = NO_LIMITS,
) -> CaptureResult:
    """Validate a submission against its form and store the lead, its event and its consent.

    Nothing is written unless every check passes, the submission limits included (see
    tsunagu.leads.submission_limits). A filled honeypot is answered like a success and stores
    nothing, so a bot learns nothing from the answer.
    """
    if is_honeypot_filled(form, raw):
        return CaptureResult(new_id("lead", clock.now()), True, form.thank_you_url, stored=False)

    submission = validate_submission(form, raw)
    request_hash = _request_hash(form.form_id, raw)
    identity = email_identity(submission.email.identity_key)
    for _attempt in range(MAX_ATTEMPTS):
        existing = store.find_lead(identity)
        history: list[AnonymousEvent] = []
        visitor = _linked_visitor(submission, existing, context)
        if visitor:
            # Read before the link is written: the visitor's earlier history comes with it,
            # in the same transaction (tsunagu.leads.history).
            lead_id = existing.lead_id if existing is not None else None
            history = read_history(store, visitor, lead_id, clock.now())
        topics = None
        if existing is not None and _gives_consent(form, submission):
            # An opt-in of a lead who said no waits for the person's confirmation; one of a
            # lead who did not may end an unsubscribe from all mail: planned on the topics read.
            # Wider than CaptureWrite.lifts_unsubscribe on purpose, not the same rule twice:
            # that one reads the evidence's status (opted_in, not pending), which these topics
            # decide - so they are read for every ticked box of a lead that exists
            topics = store.topic_records(existing.lead_id)
        write = _plan(
            form, submission, existing, context, clock, request_hash, limits, history, topics
        )
        try:
            store.commit_capture(write)
        except WriteConflict as conflict:
            if conflict.kind == "submission" and write.idempotency_key:
                return _replay(store, write.idempotency_key, request_hash, form, submission)
            if conflict.window is not None:
                raise _too_many(conflict.window, clock) from None
            # Someone else created or changed this lead meanwhile (or claimed one of the
            # visitor's events, or the lead said no to the topic: write.planned_on): read it
            # again, merge and decide again.
            continue
        return CaptureResult(
            write.response["lead_id"], write.is_new, form.thank_you_url, submission.ignored_fields
        )
    raise ConcurrentUpdate("the lead was changed by another request meanwhile; please retry")


def _too_many(window: CountedWindow, clock: Clock) -> TooManyRequests:
    wait = window.retry_after_seconds(clock.now())
    return TooManyRequests(
        f"too many submissions for {window.what} (at most {window.rule.describe()});"
        f" please try again in {wait} seconds",
        wait,
    )


def _replay(
    store: CaptureStore, key: str, request_hash: str, form: StoredForm, submission: Submission
) -> CaptureResult:
    remembered = store.get_submission(key)
    if remembered is None:  # expired between the conflict and this read
        raise ConcurrentUpdate("the submission is being processed; please retry")
    if remembered.request_hash != request_hash:
        raise IdempotencyConflict("this submission_id was already used for a different submission")
    return CaptureResult(
        remembered.response["lead_id"],
        bool(remembered.response["created"]),
        form.thank_you_url,
        submission.ignored_fields,
        replayed=True,
    )
