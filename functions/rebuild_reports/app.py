"""rebuild_reports — the steps of a rebuild of the report counters run in the background
(statemachines/rebuild_reports.asl.json, tsunagu.commands.reports, tsunagu.reports.rebuild_jobs).

Input ``{"step": "day"|"failed", "rebuild_id", ...}``:

- day: count the job's next day again and store it as done; ``{"done": bool, "days_done",
  "days_total"}``. Raises on a failure, for the state machine's Retry; a day retried is counted
  again from its events, and added to the job's totals once.
- failed (``error``): a day out of retries stopped the run: the job says so (``failed``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.commands import reports
from tsunagu.observability import logger, observed
from tsunagu.settings import get_settings


class RebuildStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["day", "failed"]
    rebuild_id: str = Field(pattern=r"^rebuild_[0-9A-Z]{26}$")
    error: dict[str, Any] = Field(default_factory=dict)
    """The Catch's error (``Error``, ``Cause``) of the step that ran out of retries."""

    @property
    def why(self) -> str:
        return f"{self.error.get('Error', 'failed')}: {self.error.get('Cause', '')}"


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = RebuildStep.model_validate(event)
    ports = services.report_commands(get_settings())
    if request.step == "day":
        job = reports.rebuild_next_day(ports, request.rebuild_id)
    else:
        job = reports.rebuild_failed(ports, request.rebuild_id, request.why)
    progress: dict[str, Any] = {
        "done": job.done,
        "days_done": job.days_done,
        "days_total": job.days_total,
    }
    logger.info(
        "rebuild step", extra={"step": request.step, "rebuild_id": job.rebuild_id, **progress}
    )
    return progress
