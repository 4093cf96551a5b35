"""publish_journey — publishes a journey definition without a deploy, lists its versions, rolls
it back (tsunagu.journeys.publishing).

Invoked directly, by ``tsunagu journeys publish|versions|rollback`` (and the admin API):

- ``{"action": "publish", "definition": {...}, "note"?: "...", "by"?: "api:who@example.com",
  "draft_revision"?: N}``
- ``{"action": "versions", "journey_id": "..."}``
- ``{"action": "rollback", "journey_id": "...", "version"?: N}``

Answers ``{"ok": true, ...}``, or ``{"ok": false, "error": "...", "problems": [{"field",
"message"}]}`` for what the person publishing can fix (a definition that does not validate, a
version that does not exist); nothing is published then. ``"conflict": true`` with it: another
publication was recorded while this one was being published (see its versions).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tsunagu import services
from tsunagu.client_values import validation_failed
from tsunagu.errors import ConcurrentUpdate, NotFound, ValidationFailed
from tsunagu.journeys.definition import JourneyDefinition
from tsunagu.journeys.model import JOURNEY_ID_PATTERN
from tsunagu.journeys.publishing import Publication, publish, rollback, versions
from tsunagu.observability import logger, observed
from tsunagu.settings import get_settings


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublishRequest(_Request):
    action: Literal["publish"]
    definition: JourneyDefinition
    note: str | None = Field(default=None, min_length=1, max_length=256)
    by: str | None = Field(default=None, min_length=1, max_length=320)
    """Who publishes (kept with the version's graph)."""
    draft_revision: int | None = Field(default=None, ge=0)
    """The journey's draft's revision this was published from (0: none); kept with the
    version's graph, so that a draft saved while it was published still reads as not
    published."""


class VersionsRequest(_Request):
    action: Literal["versions"]
    journey_id: str = Field(pattern=JOURNEY_ID_PATTERN)


class RollbackRequest(_Request):
    action: Literal["rollback"]
    journey_id: str = Field(pattern=JOURNEY_ID_PATTERN)
    version: int | None = Field(default=None, ge=1)


Request = TypeAdapter[PublishRequest | VersionsRequest | RollbackRequest](
    Annotated[PublishRequest | VersionsRequest | RollbackRequest, Field(discriminator="action")]
)


def _published(publication: Publication) -> dict[str, Any]:
    return {
        "ok": True,
        "journey_id": publication.journey_id,
        "version": publication.version,
        "version_arn": publication.version_arn,
        "alias_arn": publication.alias_arn,
        "changed": publication.changed,
        "created": publication.created,
    }


def _logged(publication: Publication) -> dict[str, Any]:
    # Not "created": the logging module keeps that name for the record's own time.
    return {
        "journey_id": publication.journey_id,
        "version": publication.version,
        "changed": publication.changed,
        "first_publication": publication.created,
    }


@observed()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    target = services.publishing_target(settings)
    machines = services.state_machines(settings)
    journeys = services.journey_repository(settings)
    clock = services.clock(settings)
    try:
        try:
            request = Request.validate_python(event)
        except ValidationError as error:
            raise validation_failed(error, "(request)") from None
        if isinstance(request, PublishRequest):
            templates = services.template_ids(settings)
            publication = publish(
                request.definition,
                note=request.note,
                target=target,
                machines=machines,
                journeys=journeys,
                clock=clock,
                templates=templates,
                by=request.by,
                draft_revision=request.draft_revision,
            )
            logger.info("journey published", extra=_logged(publication))
            return _published(publication)
        if isinstance(request, RollbackRequest):
            publication = rollback(
                request.journey_id,
                to_version=request.version,
                target=target,
                machines=machines,
                journeys=journeys,
                clock=clock,
            )
            logger.info("journey rolled back", extra=_logged(publication))
            return _published(publication)
        found, live = versions(request.journey_id, target=target, machines=machines)
        return {
            "ok": True,
            "journey_id": request.journey_id,
            "live": live,
            "versions": [
                {"version": v.number, "created_at": v.created_at, "note": v.note} for v in found
            ],
        }
    except ValidationFailed as error:
        problems = [{"field": e.field, "message": e.message} for e in error.errors]
        return {"ok": False, "error": error.message, "problems": problems}
    except NotFound as error:
        return {"ok": False, "error": error.message, "problems": []}
    except ConcurrentUpdate as error:
        return {"ok": False, "error": error.message, "problems": [], "conflict": True}
