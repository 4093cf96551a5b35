"""May this mail go to this lead now? Decided at send time, every time, from Tsunagu's store.

Consent is per topic. Opting in to ``marketing`` (the web forms' consent box) covers every
marketing topic a lead has not opted out of; opting out of ``all`` stops every marketing mail.
Japan's anti-spam law (特定電子メール法) wants prior consent for marketing mail, so no consent
means no marketing mail. A suppression (hard bounce, repeated soft bounces, complaint, manual)
stops every mail, transactional included: the address does not want, or cannot take, mail.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tsunagu.leads.model import ConsentEvidence, Lead

ALL_TOPICS = "all"
MARKETING = "marketing"
PENDING = "pending"
"""Consent waiting for its double opt-in confirmation: kept beside the topic's state
(``pending#<topic>``), never changing it - a second sign-up never downgrades a confirmed
subscription."""
WITHDRAWN = "withdrawn"
"""The status of evidence that put a topic back to no answer at all (an undo withdrawing the
opt-in a list recorded, when the topic had none before the list): the topic has no state after
it. Not an opt-out: the lead may be opted in again, by a form or another list."""


def named_topic(topic: str) -> str:
    """A topic as a marketer names one (a form's consent box, a template's, a journey's): any
    but ``all``, the record of an unsubscribe from all mail. Nobody opts in to it or is mailed
    on it: a form's opt-in to it would both lift and write that record (a returning lead's
    submission failed), and a mail on it would offer "all" as a topic beside "unsubscribe from
    all". ValueError (a validation message) for it."""
    if topic == ALL_TOPICS:
        raise ValueError(
            f"{ALL_TOPICS!r} is reserved: it records an unsubscribe from all mail (name a topic,"
            " such as marketing)"
        )
    return topic


class SkipReason(StrEnum):
    NO_ADDRESS = "no_address"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"
    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"
    EXCLUDED = "excluded"
    """On the account's exclusions (tsunagu.mail.exclusions): marketing mail only."""
    SANDBOXED = "sandboxed"


@dataclass(frozen=True)
class Suppression:
    reason: str
    """hard_bounce, soft_bounce_limit, complaint or manual."""
    at: str


@dataclass(frozen=True)
class SuppressionEntry:
    """A line of the suppression list."""

    lead_id: str
    email: str
    reason: str
    at: str


SUPPRESSION_REASONS = ("hard_bounce", "soft_bounce_limit", "complaint", "manual")

SUPPRESSION_STRENGTH = {"manual": 0, "hard_bounce": 1, "soft_bounce_limit": 1, "complaint": 2}
"""How hard a suppression is to lift, the one ranking of its reasons: a complaint by no one, a
bounce by an admin, a manual one by a marketer (each role's reach on it:
commands.leads.LIFT_REACH). A lead has one suppression record, so a later suppression must
never put a weaker reason in place of a stronger one (a late bounce of a mail sent before the
complaint, a marketer's "suppress" of a bounced address): the next lift would then be judged
on the weaker reason."""


def replaced_by(reason: str) -> tuple[str, ...]:
    """The reasons a new suppression for ``reason`` replaces: the strictly weaker ones. One as
    strong or stronger stands (and keeps its instant, which a lift names)."""
    strength = SUPPRESSION_STRENGTH[reason]
    return tuple(r for r in SUPPRESSION_REASONS if SUPPRESSION_STRENGTH[r] < strength)


@dataclass(frozen=True)
class ConsentView:
    topics: Mapping[str, str]
    """topic -> opted_in | opted_out | pending."""
    suppression: Suppression | None = None


@dataclass(frozen=True)
class TopicConsent:
    """What a lead has said about one topic, as a list's answer for it is weighed."""

    status: str | None
    """The topic's own record: opted_in or opted_out - None when it has none (a pending
    double opt-in is kept apart and sets no state)."""
    refuses_opt_in: bool
    """Opted out of the topic or of all mail, or suppressed: no list opts them in again."""


def sets_topic_state(status: str) -> bool:
    """Whether evidence of this status is what its topic's state becomes (all but a pending
    double opt-in's)."""
    return status != PENDING


@dataclass(frozen=True)
class ConsentRecords:
    """A lead's consent as stored: its evidence, oldest first (the ledger: never edited, never
    deleted while the lead exists), and the evidence each topic's current state rests on."""

    evidence: Sequence[ConsentEvidence]
    rests_on: Mapping[str, str]
    """topic -> the id of the evidence its state record names."""

    def state_before(
        self, evidence: ConsentEvidence, passed_over: Callable[[ConsentEvidence], bool]
    ) -> ConsentEvidence | None:
        """The evidence its topic's state rested on just before ``evidence`` was recorded: the
        latest earlier evidence of that topic that set its state and that ``passed_over`` does
        not leave out; None when there was none (no answer) or it was WITHDRAWN."""
        earlier = self.evidence[: self.evidence.index(evidence)]
        for before in reversed(earlier):
            if before.topic != evidence.topic or not sets_topic_state(before.status):
                continue
            if passed_over(before):
                continue
            return None if before.status == WITHDRAWN else before
        return None


KEPT_UNSUBSCRIBED = "kept_unsubscribed"
"""The method of evidence that opts a topic out because an opt-in to another topic ended an
unsubscribe from all mail (lift_unsubscribe_from_all)."""


@dataclass(frozen=True)
class TopicRecord:
    """A topic's state as stored: opted_in or opted_out, since when, on which evidence."""

    status: str
    at: str
    evidence: str | None = None


PlannedOn = Mapping[str, TopicRecord | None]
"""topic -> its state record as read (None: it had none), for the topics a consent change was
planned on. The change is written only while each is still that record (or still absent): a
change made meanwhile another way - the mail app's one-click unsubscribe, a reply saying
配信停止 - refuses it rather than being undone by it (PreferenceStore.change_consents)."""


@dataclass(frozen=True)
class KeptOut:
    """A topic opted in before an unsubscribe from all mail, opted out as that unsubscribe ends:
    its evidence, and its state as read (written only if that state is still there)."""

    evidence: ConsentEvidence
    was: TopicRecord


@dataclass(frozen=True)
class UnsubscribeLifted:
    """What an opt-in that ends an unsubscribe from all mail writes beside its own records, in
    the same transaction: the unsubscribe's record deleted (if it is still the one read, ``was``)
    and an opt-out for each topic the person had been opted in to before it."""

    was: TopicRecord
    kept_out: tuple[KeptOut, ...]

    @property
    def items(self) -> int:
        """The items it adds to a transaction: the delete, and each opt-out's two records."""
        return 1 + 2 * len(self.kept_out)

    @property
    def topics(self) -> frozenset[str]:
        """The topic records it writes, each conditioned on the record it read: all mail's,
        and each topic kept out."""
        return frozenset({ALL_TOPICS, *(kept.evidence.topic for kept in self.kept_out)})


def lift_unsubscribe_from_all(
    records: Mapping[str, TopicRecord],
    opting_in: Collection[str],
    *,
    lead_id: str,
    email: str,
    at: str,
    new_evidence_id: Callable[[], str],
) -> UnsubscribeLifted | None:
    """A fresh opt-in to ``opting_in`` (a ticked form box, a confirmed double opt-in) by a lead
    whose topics are ``records``: None when the lead is not unsubscribed from all mail.

    The opt-in ends the unsubscribe from all mail - the person's latest word - but it is consent
    to those topics only. Every other topic opted in before the unsubscribe would come back with
    it (the seminar form's box reviving the newsletter the person left), which Japan's
    特定電子メール法 forbids without new consent: each is opted out here, its evidence saying
    why. A topic opted in after the unsubscribe (on the preference page, the box for all mail
    left ticked) was the person's word since, and stays. An opt-in to "all" itself (a form
    stored before the topic was refused) replaces the record with its own put: None."""
    everything = records.get(ALL_TOPICS)
    if everything is None or everything.status != "opted_out" or ALL_TOPICS in opting_in:
        return None
    reason = (
        f"unsubscribed from all mail at {everything.at}"
        + (f" (evidence {everything.evidence})" if everything.evidence else "")
        + f"; the opt-in to {', '.join(sorted(opting_in))} at {at} that ended it is no new"
        " consent to this topic"
    )
    kept_out = tuple(
        KeptOut(
            ConsentEvidence(
                evidence_id=new_evidence_id(),
                lead_id=lead_id,
                email=email,
                topic=topic,
                status="opted_out",
                at=at,
                text=reason,
                method=KEPT_UNSUBSCRIBED,
            ),
            record,
        )
        for topic, record in sorted(records.items())
        if topic != ALL_TOPICS
        and topic not in opting_in
        and record.status == "opted_in"
        and record.at <= everything.at
    )
    return UnsubscribeLifted(everything, kept_out)


@dataclass(frozen=True)
class Recipient:
    lead: Lead | None
    consent: ConsentView


def skip_reason(
    *, address: str | None, kind: str, topic: str, consent: ConsentView
) -> SkipReason | None:
    """Why this mail must not be sent, or None when it may."""
    if not address:
        return SkipReason.NO_ADDRESS
    if consent.suppression is not None:
        bounced = consent.suppression.reason in ("hard_bounce", "soft_bounce_limit")
        return SkipReason.BOUNCED if bounced else SkipReason.SUPPRESSED
    if kind == "transactional":
        return None
    return marketing_refusal(consent.topics, topic)


def marketing_refusal(topics: Mapping[str, str], topic: str) -> SkipReason | None:
    """May a marketing mail on ``topic`` go to a lead whose consent is ``topics``? None when it
    may, else why not. The one rule: send_email asks it for the template's topic; a journey's
    gate, its dry run and route_events (when an opt-out arrives) for the journey's topic.

    An opt-out of the topic or of all mail always wins; an opt-out of ``marketing`` ends the
    blanket consent, not another topic's own opt-in."""
    if any(topics.get(refusing) == "opted_out" for refusing in opt_outs_of(topic)):
        return SkipReason.OPTED_OUT
    if topics.get(topic) == "opted_in" or topics.get(MARKETING) == "opted_in":
        return None
    return SkipReason.NO_CONSENT


def opt_outs_of(topic: str) -> tuple[str, ...]:
    """The topics whose opt-out refuses marketing mail on ``topic`` (marketing_refusal's
    OPTED_OUT): the topic itself and all mail. What a decision on whether the lead said no to
    ``topic`` rests on, so what a write planned on that decision is conditioned on (a form's
    ticked box: tsunagu.leads.capture)."""
    return (topic,) if topic == ALL_TOPICS else (topic, ALL_TOPICS)


UNSUBSCRIBED_FROM_ALL = "opted_out (unsubscribed from all mail)"


def consent_as_sends_see_it(topics: Mapping[str, str]) -> dict[str, str]:
    """Each topic's status as skip_reason reads it: an opt-out from all mail overrides a topic's
    earlier opt-in, so a lead unsubscribed from everything shows no topic as opted in."""
    everything_off = topics.get(ALL_TOPICS) == "opted_out"
    shown = {
        topic: UNSUBSCRIBED_FROM_ALL if everything_off else status
        for topic, status in topics.items()
        if topic != ALL_TOPICS
    }
    if everything_off:
        shown[ALL_TOPICS] = "opted_out"
    return shown


def allowed_outside_production(address: str, allowlist: frozenset[str]) -> bool:
    """In any stage but prod, mail goes only to allowlisted addresses or domains. Text that is
    no address (an owner stored before owners were checked) is not allowed: held back, never
    an error that fails the step sending it."""
    address = address.casefold()
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        return False
    return address in allowlist or domain in allowlist
