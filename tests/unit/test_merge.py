"""Field merge by source priority: which channel's value wins."""

from __future__ import annotations

from tsunagu.leads.merge import Channel, FieldValue, merge_fields

EARLIER = "2026-11-01T09:00:00.000Z"
LATER = "2026-11-22T09:00:00.000Z"


def test_first_values_are_taken() -> None:
    outcome = merge_fields({}, {"company": "Example KK"}, source=Channel.WEB_FORM, at=LATER)
    assert outcome.fields["company"] == FieldValue("Example KK", Channel.WEB_FORM, LATER)
    assert outcome.changed == ["company"]


def test_a_form_does_not_overwrite_what_the_crm_says() -> None:
    # Given a company name a sales rep corrected in the CRM
    existing = {"company": FieldValue("Example Holdings KK", Channel.CRM, EARLIER)}
    # When the lead later types a shorter name into a web form
    outcome = merge_fields(existing, {"company": "Example"}, source=Channel.WEB_FORM, at=LATER)
    # Then the CRM's value stays, and the loss is recorded for audit
    assert outcome.fields["company"].value == "Example Holdings KK"
    assert outcome.changed == []
    assert outcome.kept == ["company"]


def test_a_later_form_updates_an_earlier_form() -> None:
    existing = {"job_title": FieldValue("Engineer", Channel.WEB_FORM, EARLIER)}
    outcome = merge_fields(existing, {"job_title": "Manager"}, source=Channel.WEB_FORM, at=LATER)
    assert outcome.fields["job_title"] == FieldValue("Manager", Channel.WEB_FORM, LATER)


def test_a_higher_channel_overwrites_a_lower_one() -> None:
    existing = {"phone": FieldValue("03-0000-0000", Channel.IMPORT, EARLIER)}
    outcome = merge_fields(existing, {"phone": "03-1111-1111"}, source=Channel.SEMINAR, at=LATER)
    assert outcome.fields["phone"].source is Channel.SEMINAR


def test_blank_values_never_erase() -> None:
    existing = {"company": FieldValue("Example KK", Channel.WEB_FORM, EARLIER)}
    outcome = merge_fields(existing, {"company": ""}, source=Channel.CRM, at=LATER)
    assert outcome.fields["company"].value == "Example KK"
    assert outcome.changed == []


def test_same_value_from_same_channel_is_no_change() -> None:
    existing = {"company": FieldValue("Example KK", Channel.WEB_FORM, EARLIER)}
    outcome = merge_fields(existing, {"company": "Example KK"}, source=Channel.WEB_FORM, at=LATER)
    assert outcome.changed == []
    assert outcome.fields["company"].at == EARLIER
