"""send_email — one mail to one lead, as a journey step (Step Functions task) or from the CLI.

Input: ``{"lead_id", "template_id", "template_version"?, "idempotency_key", "journey"?}``; a
journey passes ``States.Format('{}:{}', $$.Execution.Id, $$.State.Name)`` as the key. Output:
``{"status": "sent"|"skipped"|"unknown", "message_id", "reason", "ses_message_id"}``, and with
"sent" or "skipped" ``replayed``: true when the key was used before and this is that send's
outcome (nothing was sent now).
A failure raises (SendFailed, SendInProgress), so the state machine's Retry and Catch decide what
follows.

"unknown": SES may have taken the mail (its answer was lost). Sending again could mail the person
twice, and failing the step would end the journey and lose every later step, so the step goes on
as if sent; the send stays recorded as unknown and the MailUnknown metric raises an alarm.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.mail.send import SendOutcomeUnknown, SendRequest
from tsunagu.observability import logger, metrics, observed
from tsunagu.settings import get_settings


class SendEmailInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lead_id: str = Field(min_length=1, max_length=64)
    template_id: str = Field(min_length=1, max_length=63)
    template_version: int | None = Field(default=None, ge=1)
    idempotency_key: str = Field(min_length=1, max_length=500)
    journey: dict[str, Any] = Field(default_factory=dict)


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    request = SendEmailInput.model_validate(event)
    try:
        result = services.send(settings, SendRequest(**request.model_dump()))
    except SendOutcomeUnknown as unknown:
        metrics.add_metric(name="MailUnknown", unit="Count", value=1)
        answer = {
            "status": "unknown",
            "message_id": unknown.message_id,
            "reason": "ses_outcome_unknown",
            "ses_message_id": None,
        }
        logger.warning("mail outcome unknown; not sent again", extra=answer)
        return answer
    metrics.add_metric(name=f"Mail{result.status.capitalize()}", unit="Count", value=1)
    handled = {**result.as_record(), "replayed": result.replayed}
    logger.info("mail handled", extra=handled)
    return handled
