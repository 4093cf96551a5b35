"""Lead capture against an in-memory store: dedupe, idempotency, honeypot, retries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tsunagu.clock import FixedClock, isoformat
from tsunagu.errors import ConcurrentUpdate, IdempotencyConflict, NotFound, OriginNotAllowed
from tsunagu.forms.model import ConsentSpec, FormDefinition, FormField
from tsunagu.forms.stored import StoredForm
from tsunagu.leads.capture import (
    CaptureWrite,
    RememberedSubmission,
    RequestContext,
    WriteConflict,
    capture_submission,
    open_form,
)
from tsunagu.leads.history import HISTORY_EVENTS, LINKED_AT, AnonymousEvent, VisitorLink
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import Lead, LeadEvent
from tsunagu.mail.consent import TopicRecord

# As the capture function reads it: saved through FormDefinition, read back without pydantic.
FORM = StoredForm.from_definition(
    FormDefinition(
        form_id="seminar",
        name="Seminar sign-up",
        fields=[
            FormField(name="email", type="email", required=True),
            FormField(name="company"),
            FormField(name="consent", type="checkbox"),
        ],
        allowed_origins=["https://www.example.com"],
        consent=ConsentSpec(text="Send me seminar news.", version="2026-11"),
        thank_you_url="https://www.example.com/thanks",
        source=Channel.SEMINAR,
    ).model_dump(mode="json")
)
CONTEXT = RequestContext(origin="https://www.example.com", source_ip="198.51.100.7")


class MemoryStore:
    """Keeps what commit_capture would write; enforces the same conditions DynamoDB would."""

    def __init__(self) -> None:
        self.forms = {FORM.form_id: FORM}
        self.identities: dict[str, str] = {}
        self.leads: dict[str, Lead] = {}
        self.submissions: dict[str, RememberedSubmission] = {}
        self.writes: list[CaptureWrite] = []
        self.interfere: list[str] = []
        """Conflicts to simulate before the next commits (another writer got there first)."""
        self.browsed: dict[str, list[LeadEvent]] = {}
        """What each visitor id did while anonymous, oldest first (``visitor#<id>``)."""
        self.claims: dict[tuple[str, str], str] = {}
        """(visitor id, storage key) -> the lead that claimed the event."""
        self.linked_at: dict[str, str] = {}
        self.topics: dict[str, dict[str, TopicRecord]] = {}
        """lead id -> topic -> its state record."""
        self.before_commit: list[Callable[[], None]] = []
        """What other writers do between the next capture's reads and its write, in turn."""

    def get_form(self, form_id: str) -> StoredForm | None:
        return self.forms.get(form_id)

    def find_lead(self, identity: str) -> Lead | None:
        lead_id = self.identities.get(identity)
        return replace(self.leads[lead_id]) if lead_id else None

    def get_submission(self, key: str) -> RememberedSubmission | None:
        return self.submissions.get(key)

    def topic_records(self, lead_id: str) -> dict[str, TopicRecord]:
        return dict(self.topics.get(lead_id, {}))

    def visitor_link(self, visitor_id: str) -> VisitorLink | None:
        lead_id = self.identities.get(f"visitor:{visitor_id}")
        return VisitorLink(lead_id, self.linked_at[visitor_id]) if lead_id else None

    def anonymous_events(self, visitor_id: str, since: str, limit: int) -> list[AnonymousEvent]:
        events = [e for e in self.browsed.get(visitor_id, []) if e.storage_key >= since]
        return [
            AnonymousEvent(e, self.claims.get((visitor_id, e.storage_key))) for e in events[-limit:]
        ]

    def commit_capture(self, write: CaptureWrite) -> None:
        if self.before_commit:
            self.before_commit.pop(0)()
        if self.interfere:
            raise WriteConflict(self.interfere.pop(0))  # type: ignore[arg-type]
        topics = self.topics.setdefault(write.lead.lead_id, {})
        if write.planned_on is not None and any(
            topics.get(topic) != record for topic, record in write.planned_on.items()
        ):
            raise WriteConflict("lead")  # as the store: a consent condition failed
        if write.idempotency_key in self.submissions:
            raise WriteConflict("submission")
        if any(i in self.identities for i in write.claim_identities):
            raise WriteConflict("identity")
        stored = self.leads.get(write.lead.lead_id)
        if (stored.version if stored else None) != write.lead.version:
            raise WriteConflict("lead")
        if any((e.visitor_id, e.storage_key) in self.claims for e in write.history):
            raise WriteConflict("history")
        if write.idempotency_key:
            self.submissions[write.idempotency_key] = RememberedSubmission(
                write.request_hash, write.response
            )
        for identity in write.claim_identities + write.point_identities:
            self.identities[identity] = write.lead.lead_id
        for identity in write.point_identities:
            self.linked_at[identity.removeprefix("visitor:")] = write.lead.updated_at
        for copy in write.history:
            self.claims[(str(copy.visitor_id), copy.storage_key)] = write.lead.lead_id
        self.leads[write.lead.lead_id] = replace(write.lead, version=(write.lead.version or 0) + 1)
        consent = write.consent
        if consent is not None and consent.status != "pending":
            topics[consent.topic] = TopicRecord(consent.status, consent.at, consent.evidence_id)
        self.writes.append(write)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))


def submit(store: MemoryStore, clock: FixedClock, **raw: object) -> object:
    return capture_submission(FORM, raw, CONTEXT, store=store, clock=clock)  # type: ignore[arg-type]


def test_new_address_creates_a_lead_with_event_and_consent(store, clock) -> None:
    result = submit(store, clock, email="hanako@example.jp", company="Example KK", consent="on")
    assert result.created is True
    write = store.writes[-1]
    assert write.lead.email == "hanako@example.jp"
    assert write.lead.fields["company"].source is Channel.SEMINAR
    assert write.event.type == "form_submitted"
    assert write.event.properties["form_id"] == "seminar"
    assert write.consent is not None
    assert write.consent.text == "Send me seminar news."
    assert write.consent.text_version == "2026-11"
    assert write.consent.ip == "198.51.100.7"
    assert write.consent.at == "2026-11-20T09:00:00.000Z"


def test_same_person_is_one_lead(store, clock) -> None:
    first = submit(store, clock, email="Hanako@example.jp")
    clock.advance(days=1)
    second = submit(store, clock, email="hanako@EXAMPLE.jp", company="Example KK")
    assert (first.created, second.created) == (True, False)
    assert len(store.leads) == 1
    assert store.leads[first.lead_id].fields["company"].value == "Example KK"
    # The second answer names no lead: the form tells nobody that the address is one
    assert second.lead_id.startswith("lead_") and second.lead_id not in store.leads


def test_no_consent_box_records_no_consent(store, clock) -> None:
    submit(store, clock, email="hanako@example.jp")
    assert store.writes[-1].consent is None


def test_only_an_opt_in_of_a_lead_that_exists_may_end_its_unsubscribe_or_is_checked(
    store, clock
) -> None:
    # One rule (CaptureWrite._opts_in_a_lead_that_exists), split by who writes: a form's
    # opt-in may end an unsubscribe from all mail, a list's is checked against a "no" instead
    submit(store, clock, email="hanako@example.jp", consent="on")
    new = store.writes[-1]
    clock.advance(days=1)
    submit(store, clock, email="hanako@example.jp", consent="on")
    known = store.writes[-1]
    assert known.consent is not None and known.consent.status == "opted_in"
    listed = replace(known, opt_in_lifts_unsubscribe=False)
    pending = replace(known, consent=replace(known.consent, status="pending"))
    refused = replace(listed, consent=replace(known.consent, status="opted_out"))
    unticked = replace(known, consent=None)
    ruled = {
        name: (write.lifts_unsubscribe, write.checks_no_opt_out)
        for name, write in [
            ("new", new),
            ("known", known),
            ("listed", listed),
            ("pending", pending),
            ("refused", refused),
            ("unticked", unticked),
        ]
    }
    assert ruled == {
        "new": (False, False),
        "known": (True, False),
        "listed": (False, True),
        "pending": (False, False),
        "refused": (False, False),
        "unticked": (False, False),
    }


def test_a_forms_opt_in_is_written_only_on_the_topic_records_it_was_decided_on(
    store, clock
) -> None:
    # Given a lead opted in to marketing
    submit(store, clock, email="hanako@example.jp", consent="on")
    lead_id = store.writes[-1].lead.lead_id
    opted_in = store.topics[lead_id]["marketing"]
    clock.advance(days=1)

    # When the box is ticked again
    submit(store, clock, email="hanako@example.jp", consent="on")

    # Then the opt-in holds only while the topic and all mail are as read (all: no record)
    write = store.writes[-1]
    assert write.planned_on == {"marketing": opted_in, "all": None}
    # ... all mail's by a condition check of its own (the topic's is on its put)
    assert write.planned_on_checks == {"all": None}
    # And a new lead's opt-in, or a box left unticked, is planned on nothing
    assert store.writes[0].planned_on is None
    submit(store, clock, email="hanako@example.jp")
    assert store.writes[-1].planned_on is None


@pytest.mark.parametrize("no_to", ["marketing", "all"])
def test_a_no_given_between_the_captures_read_and_its_write_wins_over_its_opt_in(
    store, clock, no_to: str
) -> None:
    # Given a lead opted in to marketing
    submit(store, clock, email="hanako@example.jp", consent="on")
    lead_id = store.writes[-1].lead.lead_id
    clock.advance(days=1)

    # When the box is ticked again, and the person says no (unticks marketing on the
    # preference page, or presses the mail app's unsubscribe: all) after the capture read
    # their topics and before it writes - a moment later than the form's opt-in
    def said_no() -> None:
        later = isoformat(clock.now() + timedelta(seconds=1))
        store.topics[lead_id][no_to] = TopicRecord("opted_out", later, "cns_no")

    store.before_commit = [said_no]
    result = submit(store, clock, email="hanako@example.jp", consent="on")

    # Then the later no stands: the capture, refused, read again and decided again by the
    # rule for a lead who said no - its ticked box waits for the person's confirmation
    assert result.created is False
    assert store.topics[lead_id][no_to].status == "opted_out"
    write = store.writes[-1]
    assert write.consent is not None and write.consent.status == "pending"
    assert write.event.properties["consent_pending"] == "marketing"
    # And the submission is stored once, whole (the refused write stored nothing)
    assert len(store.writes) == 2


def test_a_replayed_submission_answers_the_same_and_writes_nothing(store, clock) -> None:
    first = submit(store, clock, email="hanako@example.jp", submission_id="sub-00000001")
    again = submit(store, clock, email="hanako@example.jp", submission_id="sub-00000001")
    assert again.replayed and again.lead_id == first.lead_id and again.created is True
    assert len(store.writes) == 1


def test_a_reused_submission_id_with_other_content_is_refused(store, clock) -> None:
    submit(store, clock, email="hanako@example.jp", submission_id="sub-00000001")
    with pytest.raises(IdempotencyConflict):
        submit(store, clock, email="other@example.jp", submission_id="sub-00000001")


def test_a_concurrent_first_submission_is_merged_not_duplicated(store, clock) -> None:
    # Given another request creates the same lead between our read and our write
    store.interfere = ["identity"]
    submit(store, clock, email="hanako@example.jp")
    # Then we re-read and still end with exactly one lead
    assert len(store.leads) == 1


def test_endless_conflicts_give_up_with_a_clear_error(store, clock) -> None:
    store.interfere = ["lead"] * 10
    with pytest.raises(ConcurrentUpdate):
        submit(store, clock, email="hanako@example.jp")
    assert store.leads == {}


def test_a_filled_honeypot_looks_like_success_and_stores_nothing(store, clock) -> None:
    result = submit(store, clock, email="bot@example.com", website="http://spam.example.net")
    assert result.created is True and result.stored is False
    assert result.lead_id.startswith("lead_")
    assert store.writes == [] and store.leads == {}


def test_open_form_checks_the_form_and_the_origin(store) -> None:
    assert open_form("seminar", None, store=store) is FORM  # server-side post: no Origin
    assert open_form("seminar", "https://www.example.com", store=store) is FORM
    with pytest.raises(NotFound):
        open_form("nope", None, store=store)
    with pytest.raises(OriginNotAllowed):
        open_form("seminar", "https://evil.example.net", store=store)


# ---------------------------------------------------------------- what the browser did before


VISITOR = "v_0a1b2c3d4e5f6a7b"


def browsed(store: MemoryStore, visitor: str, *times: str) -> list[str]:
    """Page views the visitor made while anonymous, at these instants; their event ids."""
    events = [
        LeadEvent(f"view-{at}", "page_view", at, None, visitor, {"path": "/pricing"})
        for at in times
    ]
    store.browsed.setdefault(visitor, []).extend(events)
    return [e.event_id for e in events]


def test_the_form_claims_what_its_browser_did_before_in_the_same_write(store, clock) -> None:
    # Given a browser that read two pages yesterday and this morning, and one four months ago
    views = browsed(store, VISITOR, "2026-07-01T09:00:00.000Z", "2026-11-19T10:00:00.000Z",
                    "2026-11-20T08:59:00.000Z")  # fmt: skip

    # When it submits the form
    result = submit(store, clock, email="hanako@example.jp", visitor_id=VISITOR)

    # Then the capture's one write holds the lead's copies of the last 90 days' views, marked
    # with the instant of the link
    write = store.writes[-1]
    assert [e.event_id for e in write.history] == views[1:]
    assert {(e.lead_id, e.visitor_id) for e in write.history} == {(result.lead_id, VISITOR)}
    assert {e.properties[LINKED_AT] for e in write.history} == {write.event.occurred_at}
    assert all(e.properties["path"] == "/pricing" for e in write.history)

    # When the same person posts the form again from that browser
    clock.advance(hours=1)
    submit(store, clock, email="hanako@example.jp", visitor_id=VISITOR)

    # Then nothing is claimed twice
    assert store.writes[-1].history == []


def test_a_later_person_on_the_same_browser_gets_only_what_came_after_the_first_link(
    store, clock
) -> None:
    # Given a shared browser: a page read, then the first person's form; then a page view kept
    # under the visitor though it came after that link (the first form's claims missed it)
    browsed(store, VISITOR, "2026-11-20T08:30:00.000Z")
    first = submit(store, clock, email="ichiro@example.jp", visitor_id=VISITOR)
    clock.advance(minutes=10)
    late = browsed(store, VISITOR, "2026-11-20T09:05:00.000Z")

    # When a second person submits the form on it
    clock.advance(minutes=10)
    second = submit(store, clock, email="jiro@example.jp", visitor_id=VISITOR)

    # Then the first person's page is theirs alone; the second gets only the later view
    assert [e.lead_id for e in store.writes[0].history] == [first.lead_id]
    assert [(e.event_id, e.lead_id) for e in store.writes[-1].history] == [
        (late[0], second.lead_id)
    ]


def test_a_visitor_linked_before_to_another_lead_gives_none_of_that_time_to_the_next(
    store, clock
) -> None:
    # Given a browser linked to another lead at 08:00 that read a page at 07:00 which nobody
    # claimed (stored before claims existed)
    store.identities[f"visitor:{VISITOR}"] = "lead_other"
    store.linked_at[VISITOR] = "2026-11-20T08:00:00.000Z"
    browsed(store, VISITOR, "2026-11-20T07:00:00.000Z")

    # When a new person submits the form on it
    submit(store, clock, email="jiro@example.jp", visitor_id=VISITOR)

    # Then the page read before the other person's link is not given to the new lead
    assert store.writes[-1].history == []


def test_a_claim_made_by_another_capture_meanwhile_is_read_again(store, clock) -> None:
    # Given a page read anonymously, claimed by another form while this one was being planned
    browsed(store, VISITOR, "2026-11-20T08:30:00.000Z")
    store.interfere = ["history"]

    # When the form's write is refused for it
    result = submit(store, clock, email="hanako@example.jp", visitor_id=VISITOR)

    # Then it is read again and stored whole, the view claimed once
    assert result.created is True
    assert [e.event_id for e in store.writes[-1].history] == ["view-2026-11-20T08:30:00.000Z"]


def test_a_browser_with_thousands_of_views_brings_its_newest_in_one_transaction(
    store, clock
) -> None:
    # Given a crawler-like visitor with a thousand page views in the last day
    times = [f"2026-11-20T0{h}:{m:02}:{s:02}.000Z" for h in range(6, 9) for m in range(60)
             for s in range(0, 60, 3)][-1000:]  # fmt: skip
    browsed(store, VISITOR, *times)

    # When it submits a form with a consent box (more items in the write)
    submit(store, clock, email="hanako@example.jp", visitor_id=VISITOR, consent="on")

    # Then the newest HISTORY_EVENTS come with it, and the write fits one transaction
    write = store.writes[-1]
    assert [e.occurred_at for e in write.history] == times[-HISTORY_EVENTS:]
    assert write.items <= 100
