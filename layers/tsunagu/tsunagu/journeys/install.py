"""Putting the shipped journeys and their templates where a fresh install can use them."""

from __future__ import annotations

from typing import Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.journeys.model import Journey
from tsunagu.journeys.shipped import SHIPPED_JOURNEYS, SHIPPED_MAILS, shipped_template
from tsunagu.mail.templates import MailTemplate


class JourneyDefinitions(Protocol):
    def get_journey(self, journey_id: str) -> Journey | None: ...

    def put_journey(self, journey: Journey, at: str) -> Journey: ...


class Templates(Protocol):
    def template(self, template_id: str, version: int | None) -> MailTemplate | None: ...

    def save_template(self, template: MailTemplate, clock: Clock) -> MailTemplate: ...


def install_shipped(
    *,
    journeys: JourneyDefinitions,
    templates: Templates,
    clock: Clock,
    site_url: str,
    sender: str,
) -> list[str]:
    """Add what is missing; returns what was added ("template welcome", "journey ...")."""
    added = []
    for mail in SHIPPED_MAILS:
        if templates.template(mail.template_id, None) is None:
            templates.save_template(shipped_template(mail, site_url=site_url, sender=sender), clock)
            added.append(f"template {mail.template_id}")
    for journey in SHIPPED_JOURNEYS:
        if journeys.get_journey(journey.journey_id) is None:
            journeys.put_journey(journey, isoformat(clock.now()))
            added.append(f"journey {journey.journey_id}")
    return added
