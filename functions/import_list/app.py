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
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu import services
from tsunagu.commands import import_jobs
from tsunagu.observability import logger, observed
from tsunagu.settings import get_settings


class ImportStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Literal["prepare", "chunk", "park", "finish", "fail"]
    import_id: str = Field(pattern=r"^imp_[0-9A-Za-z]{1,40}$")
    index: int | None = Field(default=None, ge=0, le=100_000)
    error: dict[str, Any] = Field(default_factory=dict)
    """The Catch's error (``Error``, ``Cause``) of a parked chunk."""


def _index(request: ImportStep) -> int:
    if request.index is None:
        raise ValueError(f"the {request.step} step needs the chunk's index")
    return request.index


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ImportStep.model_validate(event)
    ports = services.import_commands(get_settings())
    answer: dict[str, Any]
    if request.step == "prepare":
        indexes = import_jobs.prepare(ports, request.import_id)
        answer = {"chunks": [{"import_id": request.import_id, "index": i} for i in indexes]}
    elif request.step == "chunk":
        answer = {"rows": import_jobs.apply_chunk(ports, request.import_id, _index(request))}
    elif request.step == "park":
        index = _index(request)
        why = f"{request.error.get('Error', 'failed')}: {request.error.get('Cause', '')}"
        import_jobs.park_chunk(ports, request.import_id, index, why)
        answer = {"parked": index}
    elif request.step == "fail":
        why = f"{request.error.get('Error', 'failed')}: {request.error.get('Cause', '')}"
        answer = {"status": import_jobs.fail(ports, request.import_id, why).status}
    else:
        answer = {"status": import_jobs.finish(ports, request.import_id).status}
    logger.info("import step", extra={"step": request.step, "import_id": request.import_id})
    return answer
