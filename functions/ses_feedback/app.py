"""ses_feedback — SES events from the configuration set, through SNS: bounces, complaints,
deliveries. A failing record fails the invocation: Lambda retries it, then parks it in the
failure queue. Applying a notification twice is harmless: suppression is a state, and a
transient bounce is counted once per SES feedback id."""

from __future__ import annotations

import json
from typing import Any

from tsunagu import services
from tsunagu.mail.feedback import handle_ses_event
from tsunagu.observability import logger, observed
from tsunagu.settings import get_settings


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    outcomes = []
    for record in event.get("Records", []):
        notification = json.loads(record["Sns"]["Message"])
        outcome = handle_ses_event(
            notification,
            store=services.mail_repository(settings),
            clock=services.clock(settings),
            soft_bounce_limit=settings.soft_bounce_limit,
        )
        logger.info("ses event", extra={"outcome": outcome})
        outcomes.append(outcome)
    return {"outcomes": outcomes}
