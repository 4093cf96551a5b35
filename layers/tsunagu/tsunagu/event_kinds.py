"""Event kinds Tsunagu records itself (as opposed to those a site's snippet sends)."""

from __future__ import annotations

MAIL_SKIPPED = "mail_skipped"
"""A mail not sent: by send_email (no consent, suppressed, excluded...) or by a journey's gate
(a deadline passed, a resume policy, the frequency cap); ``reason`` says which."""
MAIL_DEFERRED = "mail_deferred"
"""A journey mail the gate held back until ``until`` (the frequency cap, a pace)."""
LEAD_IMPORTED = "lead_imported"
"""A lead created by an import (the import, file and row, its ``source``): the lead's first
record, which the funnel counts it from. Tsunagu's record, not the lead's activity; a journey
may still start on it, and a scoring rule may still score it (a trade show's visitors)."""
EMAIL_REPLIED = "email_replied"
"""A person answered a mail (SES receiving; tsunagu.mail.replies): the lead's own activity,
scored, ending waits and entering journeys as any other."""
EMAIL_AUTO_REPLIED = "email_auto_replied"
"""An automatic answer to a mail (out of office...): kept as evidence, never the lead's act."""
CONSENT_CHANGED = "consent_changed"
"""A lead's consent for a topic changed: by the person (the preference page, an unsubscribe, a
double opt-in confirmed), a complaint, or an undo withdrawing the opt-in a list recorded
(``method``, and the evidence of it in the consent ledger)."""
DEAL_CHANGED = "deal_changed"
"""A deal as the CRM last sent it (POST /crm/deals, signed; tsunagu.qualification.deals). Not a
system kind: journeys' goals and triggers and the revenue reports take it as the CRM's word."""

# What Tsunagu did, or heard from SES, about a lead - not something the lead did.
SYSTEM_EVENT_KINDS = frozenset(
    {
        "mail_sent",
        MAIL_SKIPPED,
        MAIL_DEFERRED,
        "mail_failed",
        "mail_delivered",
        "mail_bounced",
        "mail_complained",
        "mail_suppressed",
        "mail_unsuppressed",
        CONSENT_CHANGED,
        "stage_changed",
        "crm_status_changed",
        LEAD_IMPORTED,
        "lead_updated",
        "crm_conflict",
        "owner_notified",
        "score_changed",
        "journey_decision",
        EMAIL_AUTO_REPLIED,
    }
)

# Tsunagu's own records that may still enter a lead: a journey can start on a stage or a score,
# or welcome the leads an import created.
ENTERING_SYSTEM_EVENTS = frozenset({"stage_changed", "score_changed", LEAD_IMPORTED})


def resumes_waits(kind: str) -> bool:
    """Whether an event of this kind can end a journey's wait for behaviour: what the lead
    did, not what Tsunagu did or heard about it (route_events resumes no wait on those, nor
    does a wait looking back at the history). A wait_for on another kind never ends but by
    its deadline: the journey's checks name it (tsunagu.journeys.compiler)."""
    return kind not in SYSTEM_EVENT_KINDS


def enters_journeys(kind: str, *, by_person: bool = True) -> bool:
    """Whether an event of this kind can enter a lead into a journey whose trigger it matches:
    a person's (not a scanner's or a proxy's, ``by_person``), or one of Tsunagu's own records a
    journey may start on (ENTERING_SYSTEM_EVENTS). The journey routing asks it of every event,
    and a journey's settings refuse an event trigger no event can fire
    (tsunagu.journeys.problems)."""
    return (by_person and kind not in SYSTEM_EVENT_KINDS) or kind in ENTERING_SYSTEM_EVENTS


# What only Tsunagu writes, from what it saw itself: recorded by hand (tsunagu leads record,
# POST /admin/leads/{lead}/events), one would forge a form submission that enters journeys, or
# opens and clicks that score.
OBSERVED_EVENT_KINDS = SYSTEM_EVENT_KINDS | {
    "form_submitted",
    "mail_opened",
    "link_clicked",
    EMAIL_REPLIED,
}

# Every kind only the server writes: a browser claiming one would forge a form submission, a
# mail open or click, a consent change, or a won deal's revenue; a seminar's attendance comes
# from its attendee list. tests/static/test_event_kinds.py checks that every kind the code
# writes is here.
SERVER_EVENT_KINDS = OBSERVED_EVENT_KINDS | {"seminar_attended", DEAL_CHANGED}
