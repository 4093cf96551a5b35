"""What every full save of a lead writes for the search indexes (tsunagu.store.lead_search reads
them): its listing, owner, rank and search words. Apart from the search itself, whose query model
is pydantic's: capture_form saves leads and imports no pydantic (README, Deploying to AWS).
"""

from __future__ import annotations

from typing import Any

from tsunagu.leads.model import Lead
from tsunagu.leads.search_words import fold, rank, search_words

LISTING = "lead"
"""On every lead: the key of the ``all_leads`` index."""


def search_attributes(lead: Lead) -> dict[str, Any]:
    owner = lead.fields.get("owner_email")
    name, company = (
        str(lead.fields[field].value) if field in lead.fields else None
        for field in ("name", "company")
    )
    return {
        "listing": LISTING,
        "owner": fold(str(owner.value)) if owner is not None and owner.value else None,
        "rank": rank(lead.score, lead.lead_id),
        "search_words": search_words(lead.email, name, company),
    }
