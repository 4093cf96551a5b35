"""Unsubscribing and the preference page, from the personal link in every mail.

RFC 8058 one-click: a POST with ``List-Unsubscribe=One-Click`` unsubscribes at once. A GET only
shows the preference page and changes nothing until the person submits it: security scanners
follow every GET in a mail, and must never unsubscribe anyone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.errors import ConcurrentUpdate, MalformedRequest, NotFound
from tsunagu.event_kinds import CONSENT_CHANGED as CONSENT_CHANGED  # read from here too
from tsunagu.ids import new_id
from tsunagu.leads.model import ConsentEvidence, Lead, LeadEvent
from tsunagu.mail.consent import (
    ALL_TOPICS,
    MARKETING,
    PlannedOn,
    TopicRecord,
    UnsubscribeLifted,
    lift_unsubscribe_from_all,
)
from tsunagu.tracking.tokens import InvalidToken, TokenKind, TokenSigner, TrackingToken


@dataclass(frozen=True)
class PreferenceContext:
    ip: str | None
    user_agent: str | None
    words: str | None = None
    """What the person wrote to ask for the change (a reply's "配信停止してください"), kept in
    the consent evidence as their words."""


@dataclass(frozen=True)
class Preferences:
    lead_id: str
    masked_email: str
    topics: dict[str, bool]
    """topic -> subscribed?"""
    unsubscribed_from_all: bool
    pending: list[str]
    """Topics signed up for and waiting for the double opt-in confirmation."""
    changed_meanwhile: bool = False
    """The choices posted were made on a page showing other settings than these (changed since
    it was loaded: the mail app's unsubscribe button, a reply): nothing was saved."""

    @property
    def version(self) -> str:
        """What this page shows the person to choose from, as a digest: the page's form carries
        it (SHOWN_FIELD), and a post made on a page that showed other settings than the lead
        has now saves nothing (update_preferences). Compared, not signed: the link's token
        already says whose settings these are."""
        shown = json.dumps(
            [sorted(self.topics.items()), self.unsubscribed_from_all], ensure_ascii=False
        )
        return hashlib.sha256(shown.encode()).hexdigest()[:VERSION_LENGTH]


PREFERENCE_FORM = ("form", "preferences")
"""The hidden field the preference page's form carries. Without it an empty form post would be
indistinguishable from "untick every box", and any stray POST to the link would unsubscribe."""

TOPIC_FIELD_PREFIX = "topic:"
SHOWN_FIELD = "shown"
"""The hidden field with the version of the page the choices were made on (Preferences.version)."""
VERSION_LENGTH = 32


@dataclass(frozen=True)
class OneClickUnsubscribe:
    """RFC 8058: a mail provider's unsubscribe button posted ``List-Unsubscribe=One-Click``."""


@dataclass(frozen=True)
class SubscriptionConfirmation:
    """The double opt-in confirmation page's button."""


@dataclass(frozen=True)
class PreferenceChoices:
    """The preference page's form: the topics left ticked, and the "unsubscribe from all" box."""

    ticked_topics: frozenset[str]
    unsubscribe_all: bool
    shown: str | None = None
    """The version of the page they were made on (Preferences.version); None from a page
    served before pages carried it."""


UnsubscribeLinkPost = OneClickUnsubscribe | SubscriptionConfirmation | PreferenceChoices


def read_unsubscribe_link_post(form: Mapping[str, Sequence[str]]) -> UnsubscribeLinkPost:
    """What a POST to the unsubscribe link asks for, or MalformedRequest (400) when it is none of
    the three forms that post there: a consent change is only ever made on a request that says
    exactly what it wants."""

    def single(name: str) -> str:
        values = form[name]
        if len(values) != 1:
            raise MalformedRequest(f"the field {name!r} is sent more than once; nothing changed")
        return values[0]

    if "List-Unsubscribe" in form:
        # RFC 8058 fixes the value; providers may add fields of their own, which are ignored.
        if single("List-Unsubscribe") != "One-Click":
            raise MalformedRequest(
                "List-Unsubscribe must be One-Click (RFC 8058); nothing was changed"
            )
        return OneClickUnsubscribe()
    if "confirm" in form:
        if single("confirm") != "1" or len(form) != 1:
            raise MalformedRequest("the confirmation form sends only confirm=1; nothing changed")
        return SubscriptionConfirmation()
    marker, expected = PREFERENCE_FORM
    if marker in form and single(marker) == expected:
        ticked: set[str] = set()
        shown = None
        if SHOWN_FIELD in form:
            shown = single(SHOWN_FIELD)
            if not re.fullmatch(f"[0-9a-f]{{{VERSION_LENGTH}}}", shown):
                raise MalformedRequest(
                    "the preference form's record of what it showed cannot be read; nothing was"
                    " changed. Open the link in the mail again."
                )
        for name in form:
            if name in (marker, SHOWN_FIELD):
                continue
            if name != "unsubscribe_all" and not name.startswith(TOPIC_FIELD_PREFIX):
                raise MalformedRequest(
                    f"the preference form has no field {name[:64]!r}; nothing was changed"
                )
            if single(name) != "on":
                raise MalformedRequest(f"a ticked box sends {name[:64]}=on; nothing was changed")
            if name.startswith(TOPIC_FIELD_PREFIX):
                ticked.add(name.removeprefix(TOPIC_FIELD_PREFIX))
        return PreferenceChoices(frozenset(ticked), "unsubscribe_all" in form, shown)
    raise MalformedRequest(
        "this is neither a one-click unsubscribe (List-Unsubscribe=One-Click) nor the "
        "preference page's form; nothing was changed. Open the link in the mail again."
    )


class PreferenceStore(Protocol):
    def get_lead(self, lead_id: str) -> Lead | None: ...

    def consent_state(self, lead_id: str) -> dict[str, str]: ...

    def change_consents(
        self,
        changes: Sequence[Change],
        lifted: UnsubscribeLifted | None = None,
        planned_on: PlannedOn | None = None,
    ) -> None:
        """Store every change of one request together, or none; with ``lifted``, the end of the
        unsubscribe from all mail it plans; with ``planned_on``, only while each of those topic
        records is still as read. ConcurrentUpdate when either changed meanwhile."""
        ...

    def topic_records(self, lead_id: str) -> dict[str, TopicRecord]: ...

    def pending_topics(self, lead_id: str) -> list[str]: ...


def _token(text: str, signer: TokenSigner) -> TrackingToken:
    try:
        token = signer.verify(text)
    except InvalidToken:
        raise NotFound("this unsubscribe link is not valid") from None
    if token.kind is not TokenKind.UNSUBSCRIBE:
        raise NotFound("this unsubscribe link is not valid")
    return token


def _lead(store: PreferenceStore, token: TrackingToken) -> Lead:
    lead = store.get_lead(token.lead_id)
    if lead is None:
        raise NotFound("this unsubscribe link is not valid")
    return lead


def mask(email: str) -> str:
    """Enough for a person to recognise their address; not enough to harvest it."""
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}{'*' * max(1, len(local) - 1)}@{domain}"


def _effective(topic: str, state: Mapping[str, str], marketing: bool) -> bool:
    """Would this topic's mail go out? (The same rule as mail.consent.skip_reason.)"""
    explicit = state.get(topic)
    if explicit in ("opted_in", "opted_out"):
        return explicit == "opted_in"
    return marketing


def preferences(text: str, *, signer: TokenSigner, store: PreferenceStore) -> Preferences:
    token = _token(text, signer)
    lead = _lead(store, token)
    # Read strongly consistent, as the save checks the page's version against: a page built
    # from a lagging read, just after a save, would carry a version the next save refuses
    records = store.topic_records(lead.lead_id)
    state = {topic: record.status for topic, record in records.items()}
    return _page(lead, state, token.topic, store.pending_topics(lead.lead_id))


def _page(
    lead: Lead, state: Mapping[str, str], topic: str | None, pending: list[str]
) -> Preferences:
    """The preference page of the mail on ``topic``, for a lead whose consent is ``state``."""
    marketing = state.get(MARKETING) == "opted_in"
    shown = {t for t in state if t != ALL_TOPICS} | {topic or MARKETING}
    topics = {t: _effective(t, state, marketing) for t in shown}
    return Preferences(
        lead.lead_id, mask(lead.email), topics, state.get(ALL_TOPICS) == "opted_out", pending
    )


Change = tuple[ConsentEvidence, str, LeadEvent]


def _change(
    lead: Lead,
    topic: str,
    status: str,
    method: str,
    context: PreferenceContext,
    message_id: str,
    clock: Clock,
) -> Change:
    now = clock.now()
    at = isoformat(now)
    evidence = ConsentEvidence(
        evidence_id=new_id("cns", now),
        lead_id=lead.lead_id,
        email=lead.email,
        topic=topic,
        status=status,
        at=at,
        text=context.words,
        ip=context.ip,
        user_agent=(context.user_agent or "")[:400] or None,
    )
    event = LeadEvent(
        event_id=new_id("evt", now),
        type=CONSENT_CHANGED,
        occurred_at=at,
        lead_id=lead.lead_id,
        properties={"topic": topic, "status": status, "method": method, "message_id": message_id},
    )
    return evidence, method, event


def unsubscribe_one_click(
    text: str,
    context: PreferenceContext,
    *,
    signer: TokenSigner,
    store: PreferenceStore,
    clock: Clock,
) -> None:
    """RFC 8058: unsubscribe from all marketing mail, at once."""
    token = _token(text, signer)
    lead = _lead(store, token)
    change = _change(lead, ALL_TOPICS, "opted_out", "one_click", context, token.message_id, clock)
    store.change_consents([change])


def update_preferences(
    text: str,
    subscribed: Mapping[str, bool],
    unsubscribe_all: bool,
    context: PreferenceContext,
    *,
    signer: TokenSigner,
    store: PreferenceStore,
    clock: Clock,
    shown: str | None = None,
) -> Preferences:
    """Apply what the person chose on the preference page; only changes are recorded.

    ``shown``: the version of the page the choices were made on (Preferences.version). The
    form posts every box, changed or not, so a page loaded before a change made another way
    (the mail app's one-click button, a reply saying 配信停止) would undo that change: when
    the settings are no longer those the page showed, nothing is saved and the page comes back
    with the settings now, ``changed_meanwhile``. A post that does not say what its page showed
    (a page served before pages said it) may withdraw consent, never give it: an unticked box
    opts out, a ticked one opts in to nothing, and a box for all mail left unticked does not
    end an unsubscribe from all."""
    token = _token(text, signer)
    lead = _lead(store, token)
    # Read strongly consistent: the write below is conditional on these very records
    records = store.topic_records(lead.lead_id)
    state = {topic: record.status for topic, record in records.items()}
    now = _page(lead, state, token.topic, [])
    if shown is not None and shown != now.version:
        return replace(now, pending=store.pending_topics(lead.lead_id), changed_meanwhile=True)
    if shown is None:
        subscribed = {t: wanted and now.topics.get(t, False) for t, wanted in subscribed.items()}
        unsubscribe_all = unsubscribe_all or now.unsubscribed_from_all
    mail = _MailOfChange(token.message_id, token.topic, "preferences")
    changes = _choice_changes(lead, mail, state, subscribed, unsubscribe_all, context, clock)
    if changes:
        try:
            store.change_consents(changes, planned_on=_planned_on(records, token.topic))
        except ConcurrentUpdate:
            # Changed between the read and the write (a one-click, a reply): stale as above
            return replace(preferences(text, signer=signer, store=store), changed_meanwhile=True)
    return preferences(text, signer=signer, store=store)


def _planned_on(records: Mapping[str, TopicRecord], topic: str | None) -> PlannedOn:
    """The records the preference page's changes are planned on: every topic record the lead
    has, and - absent - all mail, marketing and the mail's topic, which a change made
    meanwhile may create. (What the page shows and every change it makes rests on these.)"""
    planned: dict[str, TopicRecord | None] = dict(records)
    for absent in (ALL_TOPICS, MARKETING, topic or MARKETING):
        planned.setdefault(absent, None)
    return planned


@dataclass(frozen=True)
class _MailOfChange:
    message_id: str
    topic: str | None
    method: str


def _choice_changes(
    lead: Lead,
    mail: _MailOfChange,
    state: Mapping[str, str],
    subscribed: Mapping[str, bool],
    unsubscribe_all: bool | None,
    context: PreferenceContext,
    clock: Clock,
) -> list[Change]:
    """The changes the person's choices make to the consent they have (only changes); the
    topics they may choose are those the preference page shows them for this mail.
    ``unsubscribe_all`` None: that box is not part of the choice."""
    shown = {t for t in state if t != ALL_TOPICS} | {mail.topic or MARKETING}
    changes: list[Change] = []

    def record(topic: str, wanted: bool) -> None:
        status = "opted_in" if wanted else "opted_out"
        changes.append(_change(lead, topic, status, mail.method, context, mail.message_id, clock))

    if unsubscribe_all is not None and unsubscribe_all != (state.get(ALL_TOPICS) == "opted_out"):
        record(ALL_TOPICS, not unsubscribe_all)
    choices = {t: w for t, w in subscribed.items() if t in shown}
    marketing = state.get(MARKETING) == "opted_in"
    if MARKETING in choices and choices[MARKETING] != marketing:
        record(MARKETING, choices[MARKETING])
        marketing = choices[MARKETING]
    for topic, wanted in choices.items():
        # A topic without its own record follows marketing; if marketing just changed, the
        # person's choice for it is written down so it does not silently follow.
        if topic != MARKETING and _effective(topic, state, marketing) != wanted:
            record(topic, wanted)
    return changes


def stop_topic_by_reply(
    lead: Lead,
    topic: str,
    message_id: str,
    words: str,
    *,
    store: PreferenceStore,
    clock: Clock,
) -> list[Change]:
    """A reply that asks to stop: the changes that opt the lead out of the mail's topic, as
    unticking that topic on the mail's preference page does (the same rule), with the person's
    words as the evidence. Returned, not stored: the reply stores them with its own record."""
    state = store.consent_state(lead.lead_id)
    mail = _MailOfChange(message_id, topic, "reply")
    context = PreferenceContext(None, None, words)
    return _choice_changes(lead, mail, state, {topic: False}, None, context, clock)


def confirm_subscription(
    text: str,
    context: PreferenceContext,
    *,
    signer: TokenSigner,
    store: PreferenceStore,
    clock: Clock,
) -> list[str]:
    """Double opt-in: the person confirmed (by submitting the confirmation page — a GET of the
    link confirms nothing, scanners follow links). Returns the topics now opted in."""
    token = _token(text, signer)
    lead = _lead(store, token)
    topics = store.pending_topics(lead.lead_id)
    changes = [
        _change(lead, topic, "opted_in", "double_opt_in", context, token.message_id, clock)
        for topic in topics
    ]
    if changes:
        now = clock.now()
        # The confirmation ends an unsubscribe from all mail, for these topics only
        lifted = lift_unsubscribe_from_all(
            store.topic_records(lead.lead_id),
            topics,
            lead_id=lead.lead_id,
            email=lead.email,
            at=isoformat(now),
            new_evidence_id=lambda: new_id("cns", now),
        )
        store.change_consents(changes, lifted)
    return topics
