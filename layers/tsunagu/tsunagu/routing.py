"""What route_events does with one event from the events stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tsunagu.errors import TsunaguError
from tsunagu.event_kinds import SYSTEM_EVENT_KINDS
from tsunagu.journeys.lifecycle import Occurrence
from tsunagu.leads.history import is_claimed_history
from tsunagu.observability import logger, metrics
from tsunagu.tracking.settling import HeldClick, awaits_settling


class ActivityStore(Protocol):
    def record_activity(self, lead_id: str, event_type: str, occurred_at: str) -> bool: ...


class Waits(Protocol):
    def resume_matching(
        self,
        lead_id: str,
        event_type: str,
        event_id: str,
        occurred_at: str,
        properties: Mapping[str, Any],
    ) -> int:
        """Resume the lead's journeys waiting for this event; how many were resumed."""
        ...


class Confirmations(Protocol):
    def send_confirmation(self, lead_id: str, template_id: str, key: str) -> None:
        """Send the double opt-in mail, once per key."""
        ...


class Journeys(Protocol):
    def on_event(self, event: Occurrence, *, by_person: bool) -> None:
        """Enter the lead into journeys this event triggers; take it out of those it ends."""
        ...


class Settling(Protocol):
    def hold(self, click: HeldClick) -> None:
        """Come back to this click once its judgement is final (tsunagu.tracking.settling)."""
        ...


class Qualification(Protocol):
    def on_event(self, event: Occurrence, *, automated: bool) -> None:
        """Score the event (once, and never an automated one)."""
        ...

    def on_stage_change(self, event: Occurrence) -> None:
        """Hand a lead that just became MQL to sales."""
        ...


def _confirm(
    confirmations: Confirmations, lead_id: str, properties: Mapping[str, Any], event_id: str
) -> None:
    """Mail the double opt-in confirmation; a mail that cannot go never holds up the sign-up.

    The send records its own failure (mail_failed; "unknown" when SES may have it, alarmed by
    MailUnknown and never sent again). Failing the whole record instead would leave the sign-up
    unscored, out of its journeys and blocking its stream shard through every retry - and a
    missing template or an unknown outcome fails every retry alike."""
    # Imported here: no other event needs the mail path (Jinja and all) loaded.
    from tsunagu.mail.send import SendOutcomeUnknown

    try:
        # Keyed by the event: a redelivered batch never mails the confirmation twice.
        confirmations.send_confirmation(
            lead_id, str(properties["confirmation_template"]), f"doi:{event_id}"
        )
    except SendOutcomeUnknown as unknown:
        metrics.add_metric(name="MailUnknown", unit="Count", value=1)
        logger.warning(
            "confirmation outcome unknown; not sent again",
            extra={"lead_id": lead_id, "message_id": unknown.message_id},
        )
    except TsunaguError as error:
        # SendFailed (SES refused it, the template did not render), NotFound (no such
        # template), SendInProgress (an earlier attempt died mid-send): recorded, not retried.
        # Alarmed (ConfirmationNotSentAlarm): the person's consent stays pending until someone
        # mends the template or the sender - they cannot confirm what never reached them.
        metrics.add_metric(name="ConfirmationNotSent", unit="Count", value=1)
        logger.error("confirmation not sent", extra={"lead_id": lead_id, "error": error.message})


def route_event(
    new_image: Mapping[str, Any] | None,
    *,
    store: ActivityStore,
    confirmations: Confirmations | None = None,
    waits: Waits | None = None,
    journeys: Journeys | None = None,
    qualification: Qualification | None = None,
    settling: Settling | None = None,
) -> None:
    """Apply one stored event. Safe to repeat: a redelivered event changes nothing more."""
    if not new_image:
        return  # a removal (TTL expiry) or a key-only record: nothing follows from it
    lead_id = new_image.get("lead_id")
    if not lead_id:
        # An anonymous visitor's event: the form that links the visitor to a lead claims it,
        # and the lead's copy comes through here (tsunagu.leads.history).
        return
    if settling is not None and awaits_settling(new_image):
        # Nothing acts on a click a later click may still show to be a scanner's: it comes
        # back through the stream, marked settled, once the burst window has passed.
        settling.hold(HeldClick.of(new_image))
        return
    properties = new_image.get("properties") or {}
    if confirmations is not None and properties.get("consent_pending"):
        _confirm(confirmations, str(lead_id), properties, str(new_image["event_id"]))
    automated = bool(properties.get("automated"))
    system = str(new_image.get("type")) in SYSTEM_EVENT_KINDS
    # What the browser did before the form linked it to the lead: scored (once, as any event),
    # but it neither enters nor ends journeys nor resumes a wait - it happened before, and
    # reaches the lead only now (tsunagu.leads.history says why).
    earlier = is_claimed_history(properties)
    occurrence = Occurrence(
        str(lead_id),
        str(new_image["event_id"]),
        str(new_image["type"]),
        str(new_image["occurred_at"]),
        properties,
    )
    if qualification is not None:
        # Scored first: a score crossing a journey's threshold arrives as its own event.
        qualification.on_event(occurrence, automated=automated)
        qualification.on_stage_change(occurrence)
    if journeys is not None and not earlier:
        # Before the filters below: an unsubscribe (a system record) still ends journeys.
        journeys.on_event(occurrence, by_person=not (automated or system))
    if automated:
        return  # a scanner's or proxy's activity is kept as evidence, never as the lead's
    if system:
        # What Tsunagu did or heard about the lead, not something the lead did: it resumes no
        # wait either (event_kinds.resumes_waits, which a journey's checks read)
        return
    changed = store.record_activity(
        str(lead_id), str(new_image["type"]), str(new_image["occurred_at"])
    )
    if waits is not None and not earlier:
        waits.resume_matching(
            str(lead_id),
            str(new_image["type"]),
            str(new_image["event_id"]),
            str(new_image["occurred_at"]),
            properties,
        )
    logger.debug("activity recorded", extra={"lead_id": lead_id, "changed": changed})
