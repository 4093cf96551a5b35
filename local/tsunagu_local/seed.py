"""What a new user finds in a fresh local runtime: the demo form and the demo site."""

from __future__ import annotations

from tsunagu.forms.model import ConsentSpec, FormDefinition, FormField
from tsunagu.qualification.config import QualificationConfig
from tsunagu.qualification.owners import OwnerRules, RoundRobin
from tsunagu.store.qualification import QualificationRepository
from tsunagu.tracking.sites import SiteDefinition

DEMO_FORM_ID = "demo"
DEMO_SITE_ID = "demo"


def demo_form(api_url: str) -> FormDefinition:
    return FormDefinition(
        form_id=DEMO_FORM_ID,
        name="Demo: white paper download",
        fields=[
            FormField(name="email", type="email", label="E-mail", required=True, max_length=254),
            FormField(name="name", label="Name", max_length=100),
            FormField(name="company", label="Company", max_length=200),
            FormField(name="consent", type="checkbox", label="Newsletter"),
        ],
        allowed_origins=[api_url, api_url.replace("127.0.0.1", "localhost")],
        consent=ConsentSpec(
            field="consent",
            topic="marketing",
            text="Yes, send me news about products and events by e-mail. "
            "I can unsubscribe at any time.",
            version="2026-11",
        ),
        thank_you_url=f"{api_url}/_local/thanks",
    )


def demo_site(api_url: str) -> SiteDefinition:
    """The local runtime's own pages carry the snippet, registered for their origin."""
    return SiteDefinition(
        site_id=DEMO_SITE_ID,
        name="Demo site (local runtime)",
        allowed_origins=[api_url, api_url.replace("127.0.0.1", "localhost")],
    )


DEMO_SALES_TEAM = ("sales.sato@example.com", "sales.suzuki@example.com")


def seed_qualification(store: QualificationRepository) -> None:
    """The default scoring (seed 000's numbers) with a demo sales team taking MQLs in turn, so a
    new MQL's notification shows in the mail viewer. A user's own settings are kept."""
    if store.has_config():
        return
    owners = OwnerRules(rules=(RoundRobin(team="sales", members=DEMO_SALES_TEAM),))
    store.save_config(QualificationConfig(owners=owners))
