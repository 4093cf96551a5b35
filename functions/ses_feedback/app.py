"""ses_feedback — SES events from the configuration set, through SNS: bounces, complaints,
deliveries. A failing record fails the invocation: Lambda retries it, then parks it in the
failure queue. A notification that arrives twice (SNS delivers at least once; a retry repeats
the records before the failing one) is applied once: tsunagu.mail.feedback remembers each by
SES's feedback id, in the same write as what it changes, so its events (the lead's timeline,
the report counters), suppression and opt-out happen once."""

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
