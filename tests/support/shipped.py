"""The shipped journeys and their mails, installed as a fresh deployment would have them, for
tests that need them in their stack."""

from __future__ import annotations

from typing import Any

from tests.conftest import ROOT
from tsunagu import services
from tsunagu.journeys.install import install_shipped, shipped_graphs


def install_shipped_journeys(settings: Any, *, with_graphs: bool = False) -> list[str]:
    """What was added; ``with_graphs``: the journeys/*.json graphs too (the console's editor)."""
    return install_shipped(
        journeys=services.journey_repository(settings),
        templates=services.mail_repository(settings),
        clock=services.clock(settings),
        site_url="https://www.example.com",
        sender="news@example.com",
        graphs=shipped_graphs(ROOT / "journeys") if with_graphs else None,
    )
