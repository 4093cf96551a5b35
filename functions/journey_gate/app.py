"""journey_gate — the step before every journey mail: send, defer, skip, park or leave.

Task parameters (see statemachines/)::

    {"journey_id": "seminar_follow_up", "lead_id.$": "$.lead_id", "step": "Send mail A",
     "node": "mail_a", "template_id": "seminar-clicked-follow-up",
     "execution_name.$": "$$.Execution.Name", "entered_at.$": "$$.State.EnteredTime",
     "state.$": "$", "deadline_field"?: "seminar_at", "send_by_field"?: "schedule.send_by"}

A mail skipped or deferred is also a ``mail_skipped`` / ``mail_deferred`` line on the lead's
timeline, with the gate's reason.

Output: ``{"action": "send"|"defer"|"skip"|"park"|"exit", "reason", "send_at"}``; the state
machine's Choice follows it. Before a step that is no mail to the lead (update_lead,
notify_owner, webhook) the compiler passes ``"mail": false``: the answer is then ``go``,
``park`` or ``exit`` (tsunagu.journeys.gate.decide_step). With
``"park": {"token.$": "$$.Task.Token"}`` (a ``.waitForTaskToken`` task) it holds the
execution until resume releases it, or fails with ``NotPaused`` when the journey was resumed
meanwhile.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.clock import isoformat, parse_instant
from tsunagu.journeys.steps import GateRequest, check_gate, park_execution
from tsunagu.observability import logger, metrics, observed
from tsunagu.settings import get_settings


class Park(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096)


class JourneyGateInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    journey_id: str = Field(min_length=1, max_length=63)
    lead_id: str = Field(min_length=1, max_length=64)
    step: str = Field(min_length=1, max_length=80)
    node: str | None = Field(default=None, max_length=63)
    """The send node: a mail deferred by the frequency cap is shown waiting there (None: a
    state machine compiled before the gate was told its node)."""
    execution_name: str = Field(min_length=1, max_length=80)
    state: dict[str, Any] = Field(default_factory=dict)
    deadline: str | None = Field(default=None, max_length=40)
    deadline_field: str | None = Field(default=None, max_length=64)
    """The state's field holding the mail's own deadline (``seminar_at``), when it has one:
    a missing field means no deadline, where ``deadline.$`` would fail the execution."""
    send_by_field: str | None = Field(default=None, max_length=64)
    """The state's field (a dotted path) holding the end of the only day the mail makes sense
    on, as next_send_time answers it for a rule with ``only_that_day``."""
    template_id: str | None = Field(default=None, max_length=64)
    entered_at: str | None = Field(default=None, max_length=40)
    """``$$.State.EnteredTime``: a mail skipped or deferred here is a line on the lead's
    timeline keyed on it (tsunagu.journeys.steps.timeline_line)."""
    mail: bool = True
    """False: the gate before a step that is no mail to the lead (update_lead, notify_owner,
    webhook): it answers ``go``, ``park`` or ``exit`` only."""
    park: Park | None = None


def _from_state(state: dict[str, Any], path: str | None) -> str | None:
    """A value at a dotted path of the state; None when the path is not there (a missing field
    means no deadline, where ``deadline.$`` would fail the execution)."""
    if path is None:
        return None
    value: Any = state
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return str(value) if value else None


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    request = JourneyGateInput.model_validate(event)
    gate = GateRequest(
        journey_id=request.journey_id,
        lead_id=request.lead_id,
        step=request.step,
        execution_name=request.execution_name,
        state=request.state,
        deadline=request.deadline or _from_state(request.state, request.deadline_field),
        send_by=_from_state(request.state, request.send_by_field),
        node=request.node,
        template_id=request.template_id,
        entered_at=isoformat(parse_instant(request.entered_at)) if request.entered_at else None,
        mail=request.mail,
    )
    store = services.journey_repository(settings)
    if request.park is not None:
        parked = park_execution(
            gate, request.park.token, store=store, clock=services.clock(settings)
        )
        logger.info("execution parked", extra={"journey_id": gate.journey_id, "step": gate.step})
        return {"parked_at": parked.parked_at}
    clock = services.clock(settings)
    decision = check_gate(
        gate,
        store=store,
        waits=services.wait_repository(settings),
        clock=clock,
        cap=services.frequency_cap(settings),
        allowed_at=services.allowed_send_time(settings, request.state.get("time_zone")),
    )
    metrics.add_metric(name=f"JourneyGate{decision.action.capitalize()}", unit="Count", value=1)
    logger.info(
        "journey gate",
        extra={"journey_id": gate.journey_id, "step": gate.step, **decision.as_output()},
    )
    return decision.as_output()
