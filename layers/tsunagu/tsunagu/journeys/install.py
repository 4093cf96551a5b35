"""Putting the shipped journeys and their templates where a fresh install can use them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tsunagu.clock import Clock, isoformat
from tsunagu.journeys.model import Journey, StoredGraph
from tsunagu.journeys.shipped import (
    CONFIRMATION_MAIL,
    SHIPPED_JOURNEYS,
    SHIPPED_MAILS,
    shipped_template,
)
from tsunagu.mail.templates import MailTemplate


class JourneyDefinitions(Protocol):
    def get_journey(self, journey_id: str) -> Journey | None: ...

    def put_journey(self, journey: Journey, at: str) -> Journey: ...

    def graph(self, journey_id: str, which: str) -> StoredGraph | None: ...

    def save_graph(self, graph: StoredGraph) -> None: ...


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
    graphs: Mapping[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Add what is missing; returns what was added ("template welcome", "journey ...").
    ``graphs``: the shipped journeys' definitions (journeys/*.json) by journey id, kept as each
    journey's ``shipped`` graph so the console's editor opens them."""
    added = []
    for mail in (*SHIPPED_MAILS, CONFIRMATION_MAIL):
        if templates.template(mail.template_id, None) is None:
            templates.save_template(shipped_template(mail, site_url=site_url, sender=sender), clock)
            added.append(f"template {mail.template_id}")
    for journey in SHIPPED_JOURNEYS:
        if journeys.get_journey(journey.journey_id) is None:
            journeys.put_journey(journey, isoformat(clock.now()))
            added.append(f"journey {journey.journey_id}")
    for journey_id, definition in sorted((graphs or {}).items()):
        if journeys.graph(journey_id, "shipped") is None:
            journeys.save_graph(
                StoredGraph(journey_id, "shipped", definition, "shipped", isoformat(clock.now()))
            )
            added.append(f"graph {journey_id}")
    return added


def shipped_graphs(folder: Path) -> dict[str, dict[str, Any]]:
    """The definitions in a folder like the project's journeys/, by journey id."""
    graphs = {}
    for path in sorted(folder.glob("*.json")):
        definition = json.loads(path.read_text("utf-8"))
        graphs[str(definition["journey_id"])] = definition
    return graphs
