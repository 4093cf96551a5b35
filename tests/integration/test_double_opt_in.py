"""Double opt-in: consent counts only once the person confirms it from the mail."""

from __future__ import annotations

import re
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from tests.conftest import AwsStack, load_event, moto_client
from tests.integration.mail_helpers import (
    capture,
    confirmation_token,
    consent_state,
    lead_events,
    parse,
    parts,
    prepare_mail,
    save_template,
    send,
    sent_messages,
    stream_batch_of_lead_events,
    token_of,
    unsubscribe,
    unsubscribe_url,
    with_body,
    with_token,
)
from tsunagu import routing, services
from tsunagu.client_values import STORED
from tsunagu.forms.model import ConsentSpec, FormDefinition, FormField
from tsunagu.mail.send import MessengerError
from tsunagu.store.ses import SesMessenger

CONFIRMATION_HTML = (
    "<html><body><p>ご登録ありがとうございます。</p>"
    '<p><a href="{{ confirm_url }}">登録を確定する / Confirm</a></p></body></html>'
)


def double_opt_in_form(aws: AwsStack, topic: str = "newsletter") -> None:
    settings = aws.settings()
    form = {
        "form_id": "newsletter",
        "name": "Newsletter",
        "fields": [
            FormField(name="email", type="email", required=True),
            FormField(name="consent", type="checkbox"),
        ],
        "consent": ConsentSpec.model_construct(
            topic=topic, text="Send me the newsletter.", version="v1", double_opt_in=True
        ),
    }
    # As stored (a form on the topic "all" could be saved before the topic was refused)
    definition = FormDefinition.model_validate(form, context={STORED: True})
    services.form_repository(settings).put(definition, services.clock(settings))


def double_opt_in_ready(aws: AwsStack, topic: str = "newsletter") -> None:
    """Mail set up, the double opt-in form on ``topic``, and its transactional confirmation."""
    prepare_mail(aws)
    double_opt_in_form(aws, topic)
    save_template(
        aws,
        template_id="double-opt-in",
        kind="transactional",
        subject="ご登録の確認",
        html=CONFIRMATION_HTML,
    )


def test_consent_waits_for_the_confirmation_and_a_get_confirms_nothing(aws: AwsStack) -> None:
    # Given a form with double opt-in, and its confirmation template
    double_opt_in_ready(aws)
    save_template(aws)  # the marketing "welcome" mail

    # When a person signs up
    lead_id = capture(aws, "doi@example.com", form_id="newsletter")

    # Then the consent is pending: no marketing mail yet
    assert consent_state(aws, lead_id) == {}
    assert send(aws, lead_id)["reason"] == "no_consent"

    # When route_events sees the sign-up (twice: a redelivered batch)
    batch = stream_batch_of_lead_events(aws, lead_id)
    route = aws.function("route_events")
    assert route.invoke(batch) == {"batchItemFailures": []}
    assert route.invoke(batch) == {"batchItemFailures": []}

    # Then exactly one confirmation mail went out, with the confirm link
    confirmations = [
        m for m in sent_messages() if "ご登録の確認" in str(parse(m.raw_data)["Subject"])
    ]
    assert len(confirmations) == 1
    _, html = parts(parse(confirmations[0].raw_data))
    confirm_url = re.search(r'href="([^"]+\?confirm=1)"', html)
    assert confirm_url is not None
    token = token_of(confirm_url.group(1).removesuffix("?confirm=1"))

    # When a scanner (or the person) opens the link: a page with a button, nothing confirmed
    page = with_token(load_event("unsubscribe", "preference_page"), token)
    page["queryStringParameters"] = {"confirm": "1"}
    shown = unsubscribe(aws, page)
    assert shown["statusCode"] == 200 and "Confirm" in shown["body"]
    assert consent_state(aws, lead_id) == {}

    # When the person presses the button
    post = with_body(
        with_token(load_event("unsubscribe", "preferences_form"), token),
        "confirm=1",
        "application/x-www-form-urlencoded",
    )
    confirmed = unsubscribe(aws, post)

    # Then the topic is opted in, with its own evidence, and marketing to that topic may go out
    assert confirmed["statusCode"] == 200
    assert consent_state(aws, lead_id) == {"newsletter": "opted_in"}
    client = moto_client("dynamodb")
    records = [
        {k: TypeDeserializer().deserialize(v) for k, v in item.items()}
        for item in client.scan(TableName=aws.tables["ConsentTable"])["Items"]
    ]
    methods = {r.get("method") for r in records if r["record"].startswith("evidence#")}
    assert "double_opt_in" in methods
    assert not [r for r in records if r["record"].startswith("pending#")]
    save_template(aws, template_id="newsletter-issue", topic="newsletter")
    assert send(aws, lead_id, template_id="newsletter-issue")["status"] == "sent"


def test_a_confirmation_on_a_form_stored_on_the_topic_all_is_kept_not_a_500(
    aws: AwsStack,
) -> None:
    # Given a double opt-in form stored on the topic "all" before the topic was refused
    double_opt_in_ready(aws, topic="all")
    lead_id = capture(aws, "doi.all@example.com", form_id="newsletter")
    token = confirmation_token(aws, lead_id)

    # When the person confirms
    post = with_body(
        with_token(load_event("unsubscribe", "preferences_form"), token),
        "confirm=1",
        "application/x-www-form-urlencoded",
    )
    confirmed = unsubscribe(aws, post)

    # Then the confirmation is stored (one write of the "all" record, not a put and a delete
    # of it in one transaction, which DynamoDB refuses whole)
    assert confirmed["statusCode"] == 200, confirmed
    assert consent_state(aws, lead_id) == {"all": "opted_in"}


def test_a_confirmation_after_unsubscribing_from_all_renews_its_topic_only(aws: AwsStack) -> None:
    # Given a lead opted in to marketing on the demo form, who then unsubscribed from all mail
    double_opt_in_ready(aws)
    save_template(aws)  # the marketing "welcome" mail
    save_template(aws, template_id="newsletter-issue", topic="newsletter")
    lead_id = capture(aws, "doi.again@example.com")
    assert send(aws, lead_id)["status"] == "sent"
    (welcome,) = sent_messages()
    token = token_of(unsubscribe_url(parse(welcome.raw_data)))
    one_click = with_token(load_event("unsubscribe", "one_click_urlencoded"), token)
    assert unsubscribe(aws, one_click)["statusCode"] == 200

    # When they sign up for the newsletter and confirm it from the mail
    capture(aws, "doi.again@example.com", form_id="newsletter")
    post = with_body(
        with_token(load_event("unsubscribe", "preferences_form"), confirmation_token(aws, lead_id)),
        "confirm=1",
        "application/x-www-form-urlencoded",
    )
    assert unsubscribe(aws, post)["statusCode"] == 200

    # Then the newsletter may go, and the marketing mail they left stays stopped
    assert consent_state(aws, lead_id) == {"marketing": "opted_out", "newsletter": "opted_in"}
    assert send(aws, lead_id, template_id="newsletter-issue")["status"] == "sent"
    assert send(aws, lead_id)["reason"] == "opted_out"


def _last_activity(aws: AwsStack, lead_id: str) -> str | None:
    lead = services.lead_repository(aws.settings()).get_lead(lead_id)
    assert lead is not None
    return lead.last_activity_type


def test_a_sign_up_whose_confirmation_template_is_missing_is_still_routed(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a double opt-in form stored with the default confirmation template, which nobody
    # created (a form saved before the save refused it)
    counted: list[str] = []
    monkeypatch.setattr(
        routing.metrics, "add_metric", lambda name, **_: counted.append(name), raising=False
    )
    prepare_mail(aws)
    double_opt_in_form(aws)
    lead_id = capture(aws, "doi@example.com", form_id="newsletter")

    # When route_events sees the sign-up
    route = aws.function("route_events")
    answer = route.invoke(stream_batch_of_lead_events(aws, lead_id))

    # Then the sign-up is routed all the same (its last activity marked, scored, journeys),
    # and the confirmation that could not go is recorded, not retried with the whole record
    assert answer == {"batchItemFailures": []}
    assert _last_activity(aws, lead_id) == "form_submitted"
    [failed] = lead_events(aws, lead_id, "mail_failed")
    assert "double-opt-in" in failed["properties"]["error"]
    assert sent_messages() == []
    # And it is counted, for the alarm that tells the operator
    assert "ConfirmationNotSent" in counted


def test_an_unknown_confirmation_outcome_is_never_resent_and_the_sign_up_is_routed(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a double opt-in form and its confirmation template, and SES whose answer is lost
    double_opt_in_ready(aws)
    lead_id = capture(aws, "doi@example.com", form_id="newsletter")
    handed_over: list[str] = []

    def lost(self: SesMessenger, mail: Any) -> str:
        handed_over.append(mail.recipient)
        raise MessengerError("ReadTimeoutError: read timed out", definite=False)

    monkeypatch.setattr(SesMessenger, "send", lost)
    route = aws.function("route_events")
    batch = stream_batch_of_lead_events(aws, lead_id)

    # When route_events sees the sign-up, and again once SES answers again (a redelivery)
    first = route.invoke(batch)
    monkeypatch.undo()
    second = route.invoke(batch)

    # Then neither fails the record, and the confirmation SES may have is not sent again
    assert first == second == {"batchItemFailures": []}
    assert handed_over == ["doi@example.com"] and sent_messages() == []
    assert _last_activity(aws, lead_id) == "form_submitted"


def test_a_confirmation_ses_refuses_does_not_fail_the_sign_up(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    double_opt_in_ready(aws)
    lead_id = capture(aws, "doi@example.com", form_id="newsletter")

    def refused(self: SesMessenger, mail: Any) -> str:
        raise MessengerError("MessageRejected: Email address is not verified.")

    monkeypatch.setattr(SesMessenger, "send", refused)
    route = aws.function("route_events")

    assert route.invoke(stream_batch_of_lead_events(aws, lead_id)) == {"batchItemFailures": []}
    assert _last_activity(aws, lead_id) == "form_submitted"
    [failed] = lead_events(aws, lead_id, "mail_failed")
    assert "MessageRejected" in failed["properties"]["error"]
