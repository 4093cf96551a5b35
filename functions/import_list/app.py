"""import_list — the steps of importing a large lead list in the background
(statemachines/import_list.asl.json, tsunagu.commands.import_jobs).

Input ``{"step": "prepare"|"chunk"|"park"|"finish", "import_id", ...}``:

- prepare: plan the uploaded file again, refuse it if the plan is no longer the dry run's, keep
  its chunks in S3; ``{"chunks": [{"import_id", "index"}, ...]}`` (none when refused).
- chunk (``index``): write the chunk's rows; ``{"rows": N}``. Raises on a failure, for the
  state machine's Retry; a retried chunk writes no row twice.
- park (``index``, ``error``): a chunk that failed every retry, counted as parked.
- finish: the import applied (or applied with parked chunks); ``{"status"}``.
- fail (``error``): a step out of retries stopped the run: the import says so (``failed``).

Or ``{"step": "dry_run"|"dry_run_failed", "plan_id", ...}``: the dry run of an uploaded list,
its answer kept for ``GET /admin/imports/plans/{plan_id}`` (``{"status": "planned"}`` or
``"refused"``); dry_run_failed (``error``): the step ran out of retries, kept as refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tsunagu import services
from tsunagu.commands import import_jobs
from tsunagu.observability import logger, metrics, observed
from tsunagu.settings import get_settings

DRY_RUN_STEPS = ("dry_run", "dry_run_failed")


class ImportStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["prepare", "chunk", "park", "finish", "fail", "dry_run", "dry_run_failed"]
    import_id: str | None = Field(default=None, pattern=r"^imp_[0-9A-Za-z]{1,40}$")
    plan_id: str | None = Field(default=None, pattern=r"^pln_[0-9A-Za-z]{1,40}$")
    index: int | None = Field(default=None, ge=0, le=100_000)
    error: dict[str, Any] = Field(default_factory=dict)
    """The Catch's error (``Error``, ``Cause``) of a parked chunk or a failed step."""

    @model_validator(mode="after")
    def _names_its_subject(self) -> ImportStep:
        wanted = "plan_id" if self.step in DRY_RUN_STEPS else "import_id"
        if getattr(self, wanted) is None:
            raise ValueError(f"the {self.step} step needs {wanted}")
        return self

    @property
    def subject(self) -> str:
        """The plan id of a dry-run step, the import id of the others (the validator made sure
        the step names it)."""
        return (self.plan_id if self.step in DRY_RUN_STEPS else self.import_id) or ""

    @property
    def why(self) -> str:
        return f"{self.error.get('Error', 'failed')}: {self.error.get('Cause', '')}"


def _index(request: ImportStep) -> int:
    if request.index is None:
        raise ValueError(f"the {request.step} step needs the chunk's index")
    return request.index


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ImportStep.model_validate(event)
    ports = services.import_commands(get_settings())
    if request.step in DRY_RUN_STEPS:
        plan_id = request.subject
        if request.step == "dry_run":
            status = import_jobs.plan_in_background(ports, plan_id)
        else:
            import_jobs.dry_run_failed(ports, plan_id, request.why)
            status = "refused"
        logger.info("dry run step", extra={"step": request.step, "plan_id": plan_id})
        return {"status": status}
    import_id = request.subject
    answer: dict[str, Any]
    if request.step == "prepare":
        indexes = import_jobs.prepare(ports, import_id)
        answer = {"chunks": [{"import_id": import_id, "index": i} for i in indexes]}
    elif request.step == "chunk":
        answer = {"rows": import_jobs.apply_chunk(ports, import_id, _index(request))}
    elif request.step == "park":
        index = _index(request)
        import_jobs.park_chunk(ports, import_id, index, request.why)
        # The run goes on and ends "applied with parked chunks": the alarm is what tells the
        # operator that some rows were not written and why (the chunk's error is on the import).
        metrics.add_metric(name="ImportChunkParked", unit="Count", value=1)
        answer = {"parked": index}
    elif request.step == "fail":
        answer = {"status": import_jobs.fail(ports, import_id, request.why).status}
    else:
        answer = {"status": import_jobs.finish(ports, import_id).status}
    logger.info("import step", extra={"step": request.step, "import_id": import_id})
    return answer
