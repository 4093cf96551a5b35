"""A lead stored as an import would store it, for tests that need one to act on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tests.conftest import AwsStack
from tsunagu import services
from tsunagu.leads.capture import CaptureWrite
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead, LeadEvent, email_identity


def store_lead(
    aws: AwsStack,
    email: str,
    *,
    owner: str | None = None,
    name: str = "テスト 太郎",
    company: str | None = None,
    **changes: Any,
) -> Lead:
    """``changes``: any other of the lead's values (stage, score, grade, tags...)."""
    settings = aws.settings()
    now = datetime.now(UTC)
    at = now.isoformat()
    fields = {"name": FieldValue(name, Channel.IMPORT, at)}
    if company:
        fields["company"] = FieldValue(company, Channel.IMPORT, at)
    if owner:
        fields["owner_email"] = FieldValue(owner, Channel.SALES, at)
    lead = Lead(
        lead_id=f"lead_{email.split('@')[0]}",
        email=email,
        fields=fields,
        sources=["import"],
        visitor_ids=set(),
        stage="lead",
        created_at=at,
        updated_at=at,
    )
    lead = replace(lead, **changes)
    services.lead_repository(settings).commit_capture(
        CaptureWrite(
            lead=lead,
            is_new=True,
            claim_identities=[email_identity(email)],
            point_identities=[],
            event=LeadEvent(f"evt_{lead.lead_id}", "lead_imported", at, lead.lead_id, None, {}),
            consent=None,
            idempotency_key=None,
            request_hash="",
            response={},
        )
    )
    return lead
