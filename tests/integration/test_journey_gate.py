"""journey_gate's handler over the stores (moto, in-process), called with the parameters the
compiler writes for a send: the consent it reads is the journey's own topic's."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonpath_ng import parse

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


def as_the_catch_leaves_it(state: dict[str, Any], error: dict[str, str]) -> dict[str, Any]:
    """The state after the send's Catch for SendHeld, by the compiled Catch's own ResultPath."""
    asl = compile_journey(JourneyDefinition.model_validate(NEWSLETTER))
    [held] = asl["States"]["Send the newsletter"]["Catch"]
    assert held["ErrorEquals"] == ["SendHeld"]
    return parse(held["ResultPath"]).update_or_create(copy.deepcopy(state), error)  # type: ignore[no-any-return]


class HeldMail:
    """A lead on the newsletter whose mail the gate let through (taking its place under the
    cap), SES refused, and the send's retry held (SendHeld) because the journey was paused
    meanwhile: ``back`` is the gate's input as the execution comes back to it."""

    def __init__(self, aws: AwsStack) -> None:
        a_newsletter_journey(aws)
        lead = store_lead(aws, "saburo@example.jp")
        says(aws, lead.lead_id, lead.email, "newsletter", "opted_in")
        self.lead_id = lead.lead_id
        self.gate = aws.function("journey_gate")
        self.journeys = services.journey_repository(aws.settings())
        first = {**gate_event(lead.lead_id), "entered_at": "2026-12-01T01:00:00.000Z"}
        answer = self.gate.invoke(first)
        assert answer["action"] == "send"
        assert len(self.places()) == 1
        self.set_status("paused")
        passed = {**first["state"], "gate": {**answer, "entered_at": first["entered_at"]}}
        held = as_the_catch_leaves_it(passed, {"Error": "SendHeld", "Cause": "held"})
        self.back = {**first, "state": held, "entered_at": "2026-12-01T01:10:00.000Z"}

    def places(self) -> tuple[str, ...]:
        """The lead's places under the frequency cap (its send ledger)."""
        return self.journeys.gate_view("newsletter_drip", self.lead_id).sends.times

    def set_status(self, status: str) -> None:
        journey = self.journeys.get_journey("newsletter_drip")
        assert journey is not None
        self.journeys.put_journey(journey.model_copy(update={"status": status}), AT)


def test_a_mail_held_by_a_pause_gives_its_place_under_the_cap_back_while_it_waits(
    aws: AwsStack,
) -> None:
    held = HeldMail(aws)

    # When the execution comes back to the gate with the journey still paused
    parked = held.gate.invoke(held.back)

    # Then the gate parks the lead and the held mail takes no place under the cap: it is
    # counted when a later pass lets it go, or never if the resume skips it
    assert (parked["action"], parked["reason"]) == ("park", "journey_paused")
    assert held.places() == ()


def test_a_held_mail_back_at_its_gate_after_the_resume_takes_one_place_under_the_cap(
    aws: AwsStack,
) -> None:
    held = HeldMail(aws)

    # When the execution comes back to the gate after the journey was resumed
    held.set_status("active")
    again = held.gate.invoke(held.back)

    # Then the mail goes (its own first pass does not fill a cap of one mail a day), and it
    # takes one place under the cap, not two
    assert again["action"] == "send", again
    assert len(held.places()) == 1
