"""PynamoDB models, one per table. Table names are bound at run time (see ``tables.py``)."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.models import Model


class LeadItem(Model):
    """One person. ``fields`` maps attribute name to {value, source, at} (see leads.merge)."""

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    lead_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute()
    fields: MapAttribute[str, Any] = MapAttribute(default=dict)  # type: ignore[no-untyped-call]
    sources = ListAttribute(of=UnicodeAttribute, default=list)
    visitor_ids = UnicodeSetAttribute(default=set)
    stage = UnicodeAttribute(default="lead")
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    last_activity_at = UnicodeAttribute(null=True)
    last_activity_type = UnicodeAttribute(null=True)
    tags = UnicodeSetAttribute(null=True)
    crm_status = UnicodeAttribute(null=True)
    """What the CRM says about the lead ("in negotiation"): journeys end on some statuses."""
    crm_status_source = UnicodeAttribute(null=True)
    """Who set ``crm_status`` (a ``Channel``: ``crm``, ``sales``, ``journey``)."""
    crm_status_at = UnicodeAttribute(null=True)
    """When ``crm_status`` was set (for the CRM, its record's ``updated_at``)."""
    score = NumberAttribute(null=True)
    """As of ``score_at``: with decay in the rules, not the score now, which every comparison
    reads (tsunagu.qualification.scores)."""
    score_at = UnicodeAttribute(null=True)
    grade = UnicodeAttribute(null=True)
    stage_history = ListAttribute(of=MapAttribute, null=True)
    """Every stage change: {from, to, by, at}. Kept on the lead: events expire, this does not."""
    # What the search indexes read (tsunagu.store.lead_search), written with every full save.
    listing = UnicodeAttribute(null=True)
    """``lead``: every lead is in the ``all_leads`` index."""
    owner = UnicodeAttribute(null=True)
    """The owner's address, case-folded (the ``by_owner`` index holds only owned leads)."""
    rank = UnicodeAttribute(null=True)
    """The score, shifted and zero-padded, then the lead id: each index sorts by it."""
    search_words = ListAttribute(of=UnicodeAttribute, null=True)
    """The words a search finds the lead by (its lead terms are kept from them)."""
    version = VersionAttribute()


class LeadIdentityItem(Model):
    """An identity that points at a lead: ``email:<key>``, ``visitor:<id>``, ``crm:<id>``.

    A conditional put on this item is what makes "one address, one lead" hold under concurrency.
    """

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    identity = UnicodeAttribute(hash_key=True)
    lead_id = UnicodeAttribute()
    created_at = UnicodeAttribute()


class EventItem(Model):
    """Something a lead or visitor did. ``subject`` is ``lead#<id>`` or ``visitor#<id>``."""

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    subject = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    """``<occurred_at>#<event_id>``: a subject's events read back in time order."""
    event_id = UnicodeAttribute()
    type = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    occurred_day = UnicodeAttribute(null=True)
    """The UTC day of ``occurred_at`` (tsunagu.clock.stored_day) and one of the day's shards
    (``2026-12-06#3``, tsunagu.store.converters.day_index_key): the ``events_by_day`` index's
    key. None on events stored before it was kept (tsunagu.store.reports reads their days by a
    Scan)."""
    lead_id = UnicodeAttribute(null=True)
    visitor_id = UnicodeAttribute(null=True)
    properties: MapAttribute[str, Any] = MapAttribute(default=dict)  # type: ignore[no-untyped-call]
    expires_at = NumberAttribute(null=True)
    """Epoch seconds; the table's TTL attribute."""


class ConsentItem(Model):
    """Consent per lead. ``record`` is ``topic#<topic>`` for the current state of a topic,
    ``pending#<topic>`` for consent awaiting its double opt-in, ``evidence#<at>#<id>`` for the
    immutable evidence of one change, ``suppression`` when no mail may go to the lead at all,
    and ``soft_bounces`` for the transient bounces counted so far."""

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    lead_id = UnicodeAttribute(hash_key=True)
    record = UnicodeAttribute(range_key=True)
    topic = UnicodeAttribute()
    status = UnicodeAttribute()
    at = UnicodeAttribute()
    email = UnicodeAttribute()
    text = UnicodeAttribute(null=True)
    text_version = UnicodeAttribute(null=True)
    form_id = UnicodeAttribute(null=True)
    ip = UnicodeAttribute(null=True)
    user_agent = UnicodeAttribute(null=True)
    evidence = UnicodeAttribute(null=True)
    """On a topic record: the evidence record behind the current state."""
    method = UnicodeAttribute(null=True)
    """How the change was made: one_click, preferences, double_opt_in, complaint,
    kept_unsubscribed (tsunagu.mail.consent.lift_unsubscribe_from_all; a form's consent has
    none: its evidence names the form)."""
    feedback_ids = UnicodeSetAttribute(null=True)
    """On the soft_bounces record: SES feedback ids counted (a redelivered event counts once)."""
    listed = UnicodeAttribute(null=True)
    """On the suppression record only: its key in the ``suppressions`` index (newest first),
    which holds nothing else - the suppression list is read without a Scan."""


class FormItem(Model):
    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    form_id = UnicodeAttribute(hash_key=True)
    definition = JSONAttribute()
    updated_at = UnicodeAttribute()
    revision = NumberAttribute(null=True)
    """Counts the saves (store.revisions): a save from a stale copy is refused. None: stored
    before saves were counted, revision 0."""


class JourneyWaitItem(Model):
    """A journey execution waiting for something the lead does (see journeys.waits)."""

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    lead_id = UnicodeAttribute(hash_key=True)
    wait_id = UnicodeAttribute(range_key=True)
    token = UnicodeAttribute()
    match: MapAttribute[str, Any] = MapAttribute(default=dict)  # type: ignore[no-untyped-call]
    deadline = UnicodeAttribute()
    expires_at = NumberAttribute()


class JourneyRecordItem(Model):
    """Journeys and the leads in them, one table:

    - ``journey#<id>`` / ``definition`` — the journey (``data`` holds its JSON);
    - ``journey#<id>`` / ``graph#<which>`` — its draft graph, and each published version's;
    - ``journey#<id>`` / ``publishing`` — the lease one publication or rollback holds;
    - ``account`` / ``control`` — the account-wide emergency stop;
    - ``lead#<lead_id>`` / ``entry#<journey_id>`` — a lead's entry: its execution, when, why;
    - ``parked#<journey_id>`` / ``<execution name>`` — an execution held at a gate while paused;
    - ``waiting#<journey_id>`` / ``<execution name>`` — the wait node an execution is at, and
      until when (the canvas's live counts);
    - ``start#<journey_id>`` / ``<start id>`` — a start for a segment run in the background,
      and its progress (tsunagu.journeys.start_jobs).
    """

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    status = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()
    node = UnicodeAttribute(null=True)
    """On a waiting record: the node (a condition when the wait ends: only that wait's record)."""
    expires_at = NumberAttribute(null=True)
    """Epoch seconds; the table's TTL attribute (waiting records, a day after their wait; the
    publishing lease, a day after it was taken; a start job, tsunagu.journeys.start_jobs
    KEPT_FOR after its last write)."""
    token = UnicodeAttribute(null=True)
    """On a parked record: the task token it holds, its own attribute so that unparking can be
    conditional on it (records parked before it existed hold it in ``data``); on the publishing
    lease, its holder."""
    revision = NumberAttribute(null=True)
    """On a journey's record and its draft graph: how many times it was stored; each write is
    conditional on the revision it read (absent: never stored, or stored before it counted)."""


class QualificationItem(Model):
    """Qualification records, one table:

    - ``config`` / ``qualification`` - the scoring and fit sheets, MQL and owner rules;
    - ``lead#<lead_id>`` / ``award#<event_id>#<rule_id>`` - points one rule gave one event;
    - ``counter#<team>`` / ``round_robin`` - the team's round-robin position;
    - ``replay#<key>`` / ``crm`` - a CRM webhook request already received (until ``expires_at``);
    - ``push#failed`` / ``<at>#<lead_id>`` - a push to the CRM that failed every retry.
    """

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute(null=True)
    value = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    faded = JSONAttribute(null=True)
    """On the rules' item: the kinds of award (worth points, taking them) that fade under these
    rules or any saved before them (tsunagu.qualification.scores.Fading)."""
    revision = NumberAttribute(null=True)
    """On the rules' item: counts its saves (store.revisions), so that a save from a stale copy
    is refused. None: never saved, or saved before saves were counted (in ``value`` then, which
    the next save removes): revision 0."""


class SiteItem(Model):
    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    site_id = UnicodeAttribute(hash_key=True)
    definition = JSONAttribute()
    updated_at = UnicodeAttribute()
    revision = NumberAttribute(null=True)
    """Counts the saves of the settings (store.revisions), as a form's."""
    signing_key_id = UnicodeAttribute(null=True)
    """The site's signing secret's id (tracking.server_posts); the secret itself is not
    stored. Outside the definition, so saving the site's settings keeps it."""
    signing_key_created_at = UnicodeAttribute(null=True)
    previous_signing_key_id = UnicodeAttribute(null=True)
    """The key id the last rotation replaced, still accepted until ``previous_signing_key_until``
    (tracking.stored_sites.SigningKeys); both absent when there is none or it was revoked."""
    previous_signing_key_until = UnicodeAttribute(null=True)


class MailTemplateItem(Model):
    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    template_id = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    definition = JSONAttribute()
    created_at = UnicodeAttribute()
    saved_by = UnicodeAttribute(null=True)


class ImportReceiptItem(Model):
    """What some rows of an import did, written in the same transaction as those rows (the
    imports table: ``import#<id>`` / ``row#<its first row>``, the rows' ``AppliedRow`` records
    as a JSON list): undo reads it, and a retried run finds in it what was applied already. The
    rest of that table is written with the low-level client (tsunagu.store.imports)."""

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    rows = UnicodeAttribute()


class IdempotencyItem(Model):
    """A remembered request: a replay with the same key gets the same answer. Also, keyed
    ``history:<visitor id>:<event key>``, an anonymous event a lead's form claimed
    (tsunagu.leads.history), ``request_hash`` holding that lead's id; keyed
    ``signed-post:<site id>:<replay key>``, a site's signed tracking post, so it is not taken
    twice (tsunagu.tracking.server_posts)."""

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    key = UnicodeAttribute(hash_key=True)
    request_hash = UnicodeAttribute()
    response = JSONAttribute()
    status = UnicodeAttribute(null=True)
    """For sends: sending, sent, skipped or failed."""
    created_at = UnicodeAttribute()
    expires_at = NumberAttribute()


class SubmissionCounterItem(Model):
    """A form-submission rate-limit window (tsunagu.leads.submission_limits), in the idempotency
    table: like a remembered request, a short-lived key DynamoDB's TTL removes."""

    class Meta:
        table_name = "unbound"  # bound per stage in tables.py

    key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute()
    expires_at = NumberAttribute()
