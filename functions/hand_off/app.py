"""hand_off — telling sales about a lead: the steps of handing a new MQL to sales
(statemachines/hand_off_to_sales.asl.json), and a journey's ``notify_owner`` and ``webhook``
nodes (tsunagu.journeys.compiler), which reuse them.

Input ``{"step": "assign"|"notify"|"push"|"park", "lead_id", ...}``:

- assign: keep the lead's owner, or give it one by the owner rules; ``{"owner", "push"}``.
- notify: mail the owner the lead, every point of its score and its recent activity, once per
  ``key`` (the state machine passes execution and state); with no owner, a note on the lead's
  timeline instead (and, for an MQL no CRM hears of either, the ``MqlNotHandedOff`` metric).
  From a journey: ``assign_owner`` (assign first when no owner is given), ``note`` (the
  marketer's message), ``journey_id``.
- push: POST the lead to the CRM webhook, signed; raises PushFailed (the Retry's backoff).
  ``key`` (the state machine passes execution and state) is sent as ``delivery_id``, the same on
  every retry, for the CRM to drop a repeat. From a journey: ``event`` (the payload's type),
  ``journey_id`` and ``node``.
- park: record a push that failed every retry, for ``tsunagu crm pushes``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.clock import isoformat
from tsunagu.errors import NotFound
from tsunagu.observability import logger, metrics, observed
from tsunagu.qualification import handoff
from tsunagu.settings import Settings, get_settings


class HandOffInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["assign", "notify", "push", "park"]
    lead_id: str = Field(min_length=1, max_length=64)
    owner: str | None = Field(default=None, max_length=254)
    key: str | None = Field(default=None, max_length=500)
    error: dict[str, Any] = Field(default_factory=dict)
    # From a journey's notify_owner and webhook nodes:
    assign_owner: bool = False
    note: str | None = Field(default=None, max_length=1000)
    event: str | None = Field(default=None, max_length=63)
    journey_id: str | None = Field(default=None, max_length=63)
    node: str | None = Field(default=None, max_length=63)

    def journey(self) -> dict[str, str] | None:
        if not self.journey_id:
            return None
        return {"journey_id": self.journey_id, "node": self.node or ""}


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    request = HandOffInput.model_validate(event)
    result = STEPS[request.step](settings, request)
    logger.info("hand-off step", extra={"step": request.step, "lead_id": request.lead_id, **result})
    return result


def _assign(settings: Settings, request: HandOffInput) -> dict[str, Any]:
    owner = handoff.assign(
        request.lead_id,
        config=services.qualification_repository(settings).config(),
        leads=services.lead_repository(settings),
        counter=services.qualification_repository(settings),
        now=services.clock(settings).now(),
    )
    return {"owner": owner, "push": bool(settings.crm_webhook_url)}


def _lead(settings: Settings, lead_id: str) -> Any:
    lead = services.lead_repository(settings).get_lead(lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id!r}")
    return lead


def _notify(settings: Settings, request: HandOffInput) -> dict[str, Any]:
    owner = request.owner
    if not owner and request.assign_owner:
        owner = _assign(settings, request)["owner"]
    now = services.clock(settings).now()
    if not owner:
        # A mail to nobody is on the lead's timeline, from a journey or the MQL hand-off alike
        noted = handoff.note_no_owner(
            request.lead_id,
            request.journey_id,
            key=request.key or f"mql:{request.lead_id}",
            ledger=services.mail_repository(settings),
            now=now,
        )
        if noted and not request.journey_id and not settings.crm_webhook_url:
            # Alarmed (MqlNotHandedOffAlarm): a new MQL with no owner and no CRM to push to
            # reaches nobody in sales; the hand-off itself succeeds, so nothing else would say
            metrics.add_metric(name="MqlNotHandedOff", unit="Count", value=1)
        return {"notified": "no_owner"}
    lead = _lead(settings, request.lead_id)
    qualification = services.qualification_repository(settings)
    note = None
    if request.note:
        note = handoff.JourneyNote(request.journey_id or "journey", request.note)
    message = handoff.notification(
        lead,
        qualification.awards_of(lead.lead_id),
        services.lead_repository(settings).events(lead.lead_id, limit=40),
        qualification.config(),
        now,
        note,
    )
    domains = sorted(settings.sender_domains)
    status = handoff.notify_owner(
        lead,
        owner,
        message,
        key=request.key or f"mql:{lead.lead_id}",
        sender=f"tsunagu@{domains[0] if domains else 'example.com'}",
        production=settings.stage == "prod",
        allowlist=settings.allowlist,
        ledger=services.mail_repository(settings),
        messenger=services.messenger(settings),
        now=now,
    )
    return {"notified": status}


def _push(settings: Settings, request: HandOffInput) -> dict[str, Any]:
    from tsunagu.store.crm_push import post_signed

    if not settings.crm_webhook_url:
        return {"pushed": "not_configured"}
    lead = _lead(settings, request.lead_id)
    payload = handoff.push_payload(lead, request.event or "lead.mql", request.journey())
    if request.key:
        payload["delivery_id"] = request.key
    status = post_signed(
        settings.crm_webhook_url,
        handoff.push_body(payload),
        services.crm_signing_key(settings),
        services.clock(settings).now(),
    )
    metrics.add_metric(name="CrmPushed", unit="Count", value=1)
    return {"pushed": status}


def _park(settings: Settings, request: HandOffInput) -> dict[str, Any]:
    at = isoformat(services.clock(settings).now())
    detail: dict[str, Any] = {"lead_id": request.lead_id, "at": at, "error": request.error}
    if request.event:
        detail.update(type=request.event, journey=request.journey())
    services.qualification_repository(settings).park_push(request.lead_id, at, detail)
    metrics.add_metric(name="CrmPushParked", unit="Count", value=1)
    return {"parked": at}


STEPS = {"assign": _assign, "notify": _notify, "push": _push, "park": _park}
