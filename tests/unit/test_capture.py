"""Lead capture against an in-memory store: dedupe, idempotency, honeypot, retries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tsunagu.clock import FixedClock
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
from tsunagu.leads.merge import Channel
from tsunagu.leads.model import Lead

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

    def get_form(self, form_id: str) -> StoredForm | None:
        return self.forms.get(form_id)

    def find_lead(self, identity: str) -> Lead | None:
        lead_id = self.identities.get(identity)
        return replace(self.leads[lead_id]) if lead_id else None

    def get_submission(self, key: str) -> RememberedSubmission | None:
        return self.submissions.get(key)

    def commit_capture(self, write: CaptureWrite) -> None:
        if self.interfere:
            raise WriteConflict(self.interfere.pop(0))  # type: ignore[arg-type]
        if write.idempotency_key in self.submissions:
            raise WriteConflict("submission")
        if any(i in self.identities for i in write.claim_identities):
            raise WriteConflict("identity")
        stored = self.leads.get(write.lead.lead_id)
        if (stored.version if stored else None) != write.lead.version:
            raise WriteConflict("lead")
        if write.idempotency_key:
            self.submissions[write.idempotency_key] = RememberedSubmission(
                write.request_hash, write.response
            )
        for identity in write.claim_identities + write.point_identities:
            self.identities[identity] = write.lead.lead_id
        self.leads[write.lead.lead_id] = replace(write.lead, version=(write.lead.version or 0) + 1)
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
    assert first.lead_id == second.lead_id
    assert len(store.leads) == 1
    assert store.leads[first.lead_id].fields["company"].value == "Example KK"


def test_no_consent_box_records_no_consent(store, clock) -> None:
    submit(store, clock, email="hanako@example.jp")
    assert store.writes[-1].consent is None


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
