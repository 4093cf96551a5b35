"""Form definitions and submission validation."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.mail_fakes import MemoryMailStore
from tsunagu.client_values import STORED
from tsunagu.commands.definitions import check_confirmation
from tsunagu.errors import ValidationFailed
from tsunagu.forms.model import ConsentSpec, FormDefinition, FormField
from tsunagu.forms.stored import StoredConsent, StoredField, StoredForm
from tsunagu.forms.validation import is_honeypot_filled, validate_submission
from tsunagu.leads.merge import Channel
from tsunagu.mail.templates import MailTemplate


def stored(form: FormDefinition) -> StoredForm:
    """The form as the capture function reads it back from the store."""
    return StoredForm.from_definition(form.model_dump(mode="json"))


def make_form(**overrides: Any) -> FormDefinition:
    values: dict[str, Any] = {
        "form_id": "whitepaper",
        "name": "White paper",
        "fields": [
            FormField(name="email", type="email", required=True),
            FormField(name="name", max_length=20),
            FormField(name="company"),
            FormField(name="phone", type="tel"),
            FormField(name="size", type="select", options=["1-50", "51-500", "500+"]),
            FormField(name="note", type="textarea", max_length=500),
            FormField(name="consent", type="checkbox"),
        ],
        "allowed_origins": ["https://www.example.com"],
        "consent": ConsentSpec(text="Send me news.", version="v1"),
    }
    values.update(overrides)
    return FormDefinition(**values)


class TestDefinition:
    def test_a_form_needs_a_required_email_field(self) -> None:
        with pytest.raises(ValidationError, match="email"):
            make_form(fields=[FormField(name="name")])

    def test_field_names_are_unique(self) -> None:
        with pytest.raises(ValidationError, match="unique"):
            make_form(
                fields=[
                    FormField(name="email", type="email", required=True),
                    FormField(name="email", type="email"),
                ]
            )

    def test_reserved_names_cannot_be_fields(self) -> None:
        with pytest.raises(ValidationError, match="reserved"):
            make_form(
                fields=[
                    FormField(name="email", type="email", required=True),
                    FormField(name="submission_id"),
                ]
            )

    @pytest.mark.parametrize(
        "field",
        [FormField(name="stage"), FormField(name="score"), FormField(name="x", lead_field="tags")],
    )
    def test_the_lead_s_own_attributes_cannot_be_fields(self, field: FormField) -> None:
        with pytest.raises(ValidationError, match="the lead's own"):
            make_form(fields=[FormField(name="email", type="email", required=True), field])

    def test_a_form_stored_before_that_rule_still_loads(self) -> None:
        # Stored forms are read back with the STORED context: refused when saved, never when
        # a submission reads one that was saved before the rule existed
        document = make_form().model_dump(mode="json")
        document["fields"].append({"name": "stage"})
        with pytest.raises(ValidationError, match="the lead's own"):
            FormDefinition.model_validate(document)
        loaded = FormDefinition.model_validate(document, context={STORED: True})
        assert loaded.fields[-1].name == "stage"
        # and the capture function, which reads it without pydantic, takes submissions for it
        assert StoredForm.from_definition(document).fields[-1].name == "stage"

    def test_a_form_cannot_take_consent_for_the_reserved_topic_all(self) -> None:
        # "all" is not a topic one opts in to: it is where "unsubscribe from all" is kept
        consent = ConsentSpec(text="Send me everything.", version="1", topic="all")
        with pytest.raises(ValidationError, match="'all' is reserved"):
            make_form(consent=consent)
        # A form saved before that rule still loads, as the store reads it back
        document = make_form().model_dump(mode="json")
        document["consent"] = consent.model_dump(mode="json")
        loaded = FormDefinition.model_validate(document, context={STORED: True})
        assert loaded.consent is not None and loaded.consent.topic == "all"

    def test_consent_must_point_at_a_checkbox(self) -> None:
        with pytest.raises(ValidationError, match="checkbox"):
            make_form(consent=ConsentSpec(field="company", text="t", version="1"))

    def test_origins_are_normalised_and_checked(self) -> None:
        form = make_form(allowed_origins=["HTTPS://WWW.Example.com/"])
        assert form.allowed_origins == ["https://www.example.com"]
        assert stored(form).allows_origin("https://www.example.com")
        assert not stored(form).allows_origin("https://www.example.com.evil.example.net")
        assert not stored(form).allows_origin("null")
        with pytest.raises(ValidationError):
            make_form(allowed_origins=["https://www.example.com/path"])

    def test_thank_you_url_must_be_absolute(self) -> None:
        with pytest.raises(ValidationError):
            make_form(thank_you_url="javascript:alert(1)")


class TestSubmission:
    def test_a_good_submission_is_cleaned(self) -> None:
        submission = validate_submission(
            stored(make_form()),
            {
                "email": " ｈａｎａｋｏ＠example.jp ",
                "name": "  Hanako ",
                "phone": "０３－１２３４－５６７８",
                "size": "51-500",
                "consent": "on",
                "submission_id": "3f1c9a5e-0d7b-4f8e",
                "visitor_id": "v_8f14e45fceea167a",
            },
        )
        assert submission.email.address == "hanako@example.jp"
        assert submission.fields == {"name": "Hanako", "phone": "03-1234-5678", "size": "51-500"}
        assert submission.consent_given is True
        assert submission.submission_id == "3f1c9a5e-0d7b-4f8e"
        assert submission.visitor_id == "v_8f14e45fceea167a"

    def test_all_problems_are_reported_at_once(self) -> None:
        with pytest.raises(ValidationFailed) as failure:
            validate_submission(
                stored(make_form()),
                {"name": "x" * 21, "size": "huge", "phone": "call me", "consent": "maybe"},
            )
        fields = {e.field for e in failure.value.errors}
        assert fields == {"email", "name", "size", "phone", "consent"}

    @pytest.mark.parametrize(
        "raw",
        [
            {"email": ["a@example.com"]},
            {"email": {"nested": "a@example.com"}},
            {"email": "a@example.com", "name": True},
            {"email": "a@example.com", "name": "line\x00break"},
            # Line and paragraph separators end a mail header as surely as CR LF: a name holding
            # one made every templated mail to the lead fail.
            {"email": "a@example.com", "name": "Taro\u2028Yamada"},
            {"email": "a@example.com", "company": "Example\u2029KK"},
            {"email": "a@example.com", "company": "Example\x85KK"},
            {"email": "a@example.com", "submission_id": "<script>"},
            {"email": "a@example.com", "visitor_id": "short"},
            # Ids are text: a number would pass the pattern once read as text, and true would
            # vanish as "no id" (both were accepted, against the API document).
            {"email": "a@example.com", "submission_id": 12345678},
            {"email": "a@example.com", "visitor_id": True},
            {"email": "a@example.com", "submission_id": "3f1c9a5e-0d7b-4f8e\n"},
            {"email": "a@example.com", **{f"extra{i}": "x" for i in range(100)}},
        ],
    )
    def test_hostile_values_are_refused(self, raw: dict[str, Any]) -> None:
        with pytest.raises(ValidationFailed):
            validate_submission(stored(make_form()), raw)

    def test_textarea_keeps_line_breaks(self) -> None:
        submission = validate_submission(
            stored(make_form()), {"email": "a@example.com", "note": "line one\nline two"}
        )
        assert submission.fields["note"] == "line one\nline two"

    def test_textarea_writes_unicode_separators_as_line_breaks(self) -> None:
        submission = validate_submission(
            stored(make_form()), {"email": "a@example.com", "note": "one\u2028two\u2029three"}
        )
        assert submission.fields["note"] == "one\ntwo\nthree"

    def test_a_name_typed_with_a_japanese_ime_s_space_is_kept_as_one_name(self) -> None:
        # 山田　太郎 (U+3000) and 山田 太郎 are the same person's name: stored one way, so a
        # list bringing the other later changes nothing (the import cleans names the same way)
        submission = validate_submission(
            stored(make_form()), {"email": "a@example.com", "name": " 山田　 太郎 "}
        )
        assert submission.fields["name"] == "山田 太郎"

    def test_unchecked_consent_is_not_consent(self) -> None:
        for value in ("", "off", "false", False, None):
            submission = validate_submission(
                stored(make_form()), {"email": "a@example.com", "consent": value}
            )
            assert submission.consent_given is False

    def test_unknown_fields_are_reported_not_stored(self) -> None:
        submission = validate_submission(
            stored(make_form()), {"email": "a@example.com", "favourite_colour": "blue"}
        )
        assert submission.ignored_fields == ["favourite_colour"]
        assert "favourite_colour" not in submission.fields

    def test_lead_field_maps_a_form_field_to_another_attribute(self) -> None:
        form = make_form(
            fields=[
                FormField(name="email", type="email", required=True),
                FormField(name="kaisha", lead_field="company"),
            ],
            consent=None,
        )
        submission = validate_submission(
            stored(form), {"email": "a@example.com", "kaisha": "Example KK"}
        )
        assert submission.fields == {"company": "Example KK"}

    def test_a_field_that_fills_the_owner_takes_only_an_address(self) -> None:
        form = make_form(
            fields=[
                FormField(name="email", type="email", required=True),
                FormField(name="tantou", lead_field="owner_email"),
            ],
            consent=None,
        )
        # When the page sends a name where the owner's address belongs
        with pytest.raises(ValidationFailed) as refused:
            validate_submission(stored(form), {"email": "a@example.com", "tantou": "佐藤 営業部"})
        # Then the field is named, as every other bad value is
        assert [e.field for e in refused.value.errors] == ["tantou"]
        assert "owner_email must be an e-mail address" in refused.value.errors[0].message
        # And an address is stored as the lead's own address is
        submission = validate_submission(
            stored(form), {"email": "a@example.com", "tantou": "Sato@Example.COM"}
        )
        assert submission.fields == {"owner_email": "Sato@example.com"}

    def test_honeypot(self) -> None:
        form = stored(make_form())
        assert is_honeypot_filled(form, {"website": "http://spam.example.net"})
        assert not is_honeypot_filled(form, {"website": ""})
        assert not is_honeypot_filled(form, {})


def test_a_stored_form_reads_every_field_a_form_definition_saves() -> None:
    # The capture function reads forms without pydantic (tsunagu.forms.stored): a field added
    # to the model and not to the records would be lost on that path.
    assert {f.name for f in fields(StoredForm)} == set(FormDefinition.model_fields)
    assert {f.name for f in fields(StoredField)} == set(FormField.model_fields)
    assert {f.name for f in fields(StoredConsent)} == set(ConsentSpec.model_fields)
    form = make_form(
        allowed_origins=["https://www.example.com"],
        thank_you_url="https://www.example.com/thanks",
        honeypot_field="homepage",
        source="seminar",
        consent=ConsentSpec(
            topic="events", text="t", version="2", double_opt_in=True, confirmation_template="c"
        ),
        fields=[
            FormField(name="email", type="email", required=True, label="E-mail"),
            FormField(name="plan", type="select", options=["a", "b"], max_length=10),
            FormField(name="kaisha", lead_field="company"),
            FormField(name="consent", type="checkbox"),
        ],
    )
    read = stored(form)
    assert read == StoredForm(
        form_id=form.form_id,
        name=form.name,
        fields=(
            StoredField(name="email", type="email", required=True, label="E-mail"),
            StoredField(name="plan", type="select", options=("a", "b"), max_length=10),
            StoredField(name="kaisha", lead_field="company"),
            StoredField(name="consent", type="checkbox"),
        ),
        allowed_origins=("https://www.example.com",),
        consent=StoredConsent(
            topic="events", text="t", version="2", double_opt_in=True, confirmation_template="c"
        ),
        thank_you_url="https://www.example.com/thanks",
        honeypot_field="homepage",
        source=Channel.SEMINAR,
    )
    assert read.fields[2].target == "company"
    assert read.allows_origin("HTTPS://www.example.com/") and not read.allows_origin("null")


def confirmation_template(kind: str = "transactional") -> MailTemplate:
    return MailTemplate(
        template_id="double-opt-in",
        name="Confirmation",
        kind=kind,  # type: ignore[arg-type]
        subject="ご登録の確認",
        html='<p><a href="{{ confirm_url }}">登録を確定する</a></p>',
        from_address="news@example.com",
    )


@pytest.mark.parametrize("double", [True, False], ids=["double-opt-in", "single-opt-in"])
@pytest.mark.parametrize(
    ("kept", "code", "words"),
    [
        ([], "confirmation_template_missing", "no mail template 'double-opt-in'"),
        (
            [confirmation_template("marketing")],
            "confirmation_template_not_transactional",
            'save it with "kind": "transactional"',
        ),
    ],
)
def test_a_consent_asking_form_needs_its_transactional_confirmation_mail(
    kept: list[MailTemplate], code: str, words: str, double: bool
) -> None:
    # Given no confirmation template, or one saved as a marketing mail (never sent to a person
    # whose consent is pending: no sign-up could ever be confirmed)
    templates = MemoryMailStore()
    for template in kept:
        templates.add_template(template)
    # When a form with a consent box naming it is saved - with double opt-in, or without (its
    # box ticked by a lead who had opted out is confirmed from that mail too), Then it is
    # refused, saying why in words and by a code the console says in the marketer's language
    form = make_form(consent=ConsentSpec(text="Send me news.", version="v1", double_opt_in=double))
    with pytest.raises(ValidationFailed) as refused:
        check_confirmation(form, templates)
    [problem] = refused.value.errors
    assert problem.field == "consent.confirmation_template"
    assert words in problem.message
    assert (problem.code, problem.params) == (code, {"template": "double-opt-in"})


@pytest.mark.parametrize("double", [True, False], ids=["double-opt-in", "single-opt-in"])
def test_a_consent_asking_form_with_its_confirmation_mail_is_saved(double: bool) -> None:
    templates = MemoryMailStore()
    templates.add_template(confirmation_template().model_copy(update={"template_id": "doi-ja"}))
    consent = ConsentSpec(
        text="Send me news.", version="v1", double_opt_in=double, confirmation_template="doi-ja"
    )

    check_confirmation(make_form(consent=consent), templates)
    # A form without a consent box needs no confirmation mail at all
    check_confirmation(make_form(consent=None), MemoryMailStore())
