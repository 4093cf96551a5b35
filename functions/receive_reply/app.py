"""receive_reply — a reply to Tsunagu's mail, received by SES: the receipt rule stored the
message in S3 and invokes this with the receipt (no body). Each record is recorded on the lead
its reply address names, and passed on to a person (tsunagu.mail.replies).

Bad input (no reply address, an unknown one, too large, not a mail, an erased lead) is logged
and recorded nowhere; it never raises, which would only have Lambda invoke again with the same
message. What does raise (DynamoDB or S3 unreachable, SES refusing the forward) is retried by
Lambda and then parked in the failure queue; a message recorded already is not recorded again.
"""

from __future__ import annotations

from typing import Any

from tsunagu import services
from tsunagu.mail.replies import received_from_ses
from tsunagu.observability import logger, metrics, observed
from tsunagu.settings import get_settings


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    outcomes = []
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records if isinstance(records, list) else []:
        received = received_from_ses(record)
        if received is None:
            outcome = "ignored: not an SES receipt"
        else:
            outcome = services.receive_reply(settings, received)
        logger.info("reply received", extra={"outcome": outcome})
        if outcome.startswith("recorded"):
            metrics.add_metric(name="RepliesRecorded", unit="Count", value=1)
        outcomes.append(outcome)
    return {"outcomes": outcomes}
