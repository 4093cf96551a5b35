"""journey_gate's handler over the stores (moto, in-process), called with the parameters the
compiler writes for a send: the consent it reads is the journey's own topic's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AwsStack
from tests.support.leads import store_lead
from tsunagu import services
from tsunagu.journeys.compiler import compile_journey
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.journeys.model import Journey
from tsunagu.leads.model import ConsentEvidence
from tsunagu.store.converters import consent_items
from tsunagu.store.tables import bind_tables

AT = "2026-12-01T01:00:00Z"
NEWSLETTER: dict[str, Any] = {
    "$format": "tsunagu.journey/1",
    "journey_id": "newsletter_drip",
    "description": "One newsletter mail.",
    "start": "mail",
    "nodes": [{"id": "mail", "kind": "send", "label": "the newsletter", "template": "welcome"}],
}


def a_newsletter_journey(aws: AwsStack) -> None:
    services.journey_repository(aws.settings()).put_journey(
        Journey(
            journey_id="newsletter_drip",
            name="Newsletter drip",
            state_machine="journey-newsletter-drip",
            status="active",
            topic="newsletter",
        ),
        AT,
    )


def says(aws: AwsStack, lead_id: str, email: str, topic: str, status: str) -> None:
    evidence = ConsentEvidence(f"cns_{topic}", lead_id, email, topic, status, AT, text="x")
    for item in consent_items(bind_tables(aws.settings()), evidence):
        item.save()


def gate_event(lead_id: str) -> dict[str, Any]:
    """The gate's task input, as the compiled state machine builds it."""
    asl = compile_journey(JourneyDefinition.model_validate(NEWSLETTER))
    payload = asl["States"]["Check the gate before the newsletter"]["Parameters"]["Payload"]
    given = {k: v for k, v in payload.items() if not k.endswith(".$")}
    return {
        **given,
        "lead_id": lead_id,
        "execution_name": f"newsletter_drip-{lead_id}-abc",
        "state": {"lead_id": lead_id, "journey_id": "newsletter_drip"},
        "entered_at": AT,
    }


@pytest.mark.parametrize(
    ("consent", "action", "reason"),
    [
        ({"marketing": "opted_in", "newsletter": "opted_out"}, "exit", "unsubscribed"),
        ({"newsletter": "opted_in"}, "send", None),
        ({"marketing": "opted_out", "newsletter": "opted_in"}, "send", None),
        ({"marketing": "opted_in"}, "send", None),
        ({"seminars": "opted_in"}, "exit", "no_consent"),
    ],
    ids=[
        "out of the topic, in to marketing",
        "in to the topic only",
        "out of marketing, in to the topic",
        "in to marketing only",
        "in to another topic only",
    ],
)
def test_the_gate_judges_consent_on_the_journeys_own_topic(
    aws: AwsStack, consent: dict[str, str], action: str, reason: str | None
) -> None:
    # Given a journey whose mails are on the "newsletter" topic, and a lead's consent
    a_newsletter_journey(aws)
    lead = store_lead(aws, "taro@example.jp")
    for topic, status in consent.items():
        says(aws, lead.lead_id, lead.email, topic, status)

    # When the gate before its mail runs, as the compiled state machine calls it
    decision = aws.function("journey_gate").invoke(gate_event(lead.lead_id))

    # Then it sends or lets the lead go by the topic the mail is on, not by "marketing"
    assert (decision["action"], decision["reason"]) == (action, reason)


TAGGING: dict[str, Any] = {
    **NEWSLETTER,
    "start": "tag",
    "nodes": [
        {"id": "tag", "kind": "update_lead", "label": "Tag the reader", "add_tags": ["reader"],
         "next": "mail"},
        *NEWSLETTER["nodes"],
    ],
}  # fmt: skip


def step_gate_event(lead_id: str) -> dict[str, Any]:
    """The input of the gate before the update_lead step, as the compiled state machine
    builds it."""
    asl = compile_journey(JourneyDefinition.model_validate(TAGGING))
    payload = asl["States"]["Check the gate: Tag the reader"]["Parameters"]["Payload"]
    given = {k: v for k, v in payload.items() if not k.endswith(".$")}
    return {
        **given,
        "lead_id": lead_id,
        "execution_name": f"newsletter_drip-{lead_id}-def",
        "state": {"lead_id": lead_id, "journey_id": "newsletter_drip"},
        "entered_at": AT,
    }


def test_the_gate_before_a_step_holds_it_while_paused_and_lets_it_go_without_consent(
    aws: AwsStack,
) -> None:
    # Given a lead that never consented to the newsletter (mail to it would leave the journey)
    a_newsletter_journey(aws)
    lead = store_lead(aws, "jiro@example.jp")
    gate = aws.function("journey_gate")

    # When the gate before tagging it runs, it goes on: tagging is no mail to the lead,
    # and it takes no place under the frequency cap
    assert gate.invoke(step_gate_event(lead.lead_id))["action"] == "go"
    view = services.journey_repository(aws.settings()).gate_view("newsletter_drip", lead.lead_id)
    assert view.sends.times == ()

    # Then, once the journey is paused, it holds the step as it holds a mail
    journeys = services.journey_repository(aws.settings())
    journey = journeys.get_journey("newsletter_drip")
    assert journey is not None
    journeys.put_journey(journey.model_copy(update={"status": "paused"}), AT)
    decision = gate.invoke(step_gate_event(lead.lead_id))
    assert (decision["action"], decision["reason"]) == ("park", "journey_paused")
