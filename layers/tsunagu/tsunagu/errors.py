"""Typed domain errors. Each says what went wrong in words a user can act on.

The mapping to HTTP lives in one place, ``tsunagu.api.responses``; the domain never speaks HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TsunaguError(Exception):
    """Base of every error the domain raises on purpose."""

    revision: int | None = None
    """The revision of what the refused request had already stored before the refusal (a
    publish from the editor keeps the canvas as the journey's draft first): the client's next
    save goes over it. None: the refusal left nothing of the request stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedRequest(TsunaguError):
    """The request could not be read at all: broken JSON, bad encoding, wrong shape."""


class UnsupportedMediaType(TsunaguError):
    """The body is in a format this endpoint does not accept."""


class PayloadTooLarge(TsunaguError):
    """The body is larger than this endpoint accepts."""


class NotFound(TsunaguError):
    """The thing named in the request does not exist."""


class Unauthenticated(TsunaguError):
    """The request does not prove who sent it (a missing, wrong or stale signature)."""


class Forbidden(TsunaguError):
    """The caller is known, and its role may not do this (or it calls from an address outside
    the allowlist)."""


class OriginNotAllowed(TsunaguError):
    """A browser sent the request from a site that is not registered for this resource."""


class MissingSegment(NotFound):
    """A filter read a saved segment that is not saved (any more). Every filter a person gives
    is refused when it names one (tsunagu.segments.saved.missing_segment), and a segment a
    journey's trigger, draft, live or newest version reads cannot be deleted; this is what is
    left: an older version whose executions still run, or a deletion racing a save."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a filter reads segment {name!r}, and no segment is named so now")
        self.name = name


class AlreadyExists(TsunaguError):
    """Something with this id exists, and the request did not ask to replace it."""


class IdempotencyConflict(TsunaguError):
    """A client submission id was reused for a different request."""


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    """In English, as the CLI prints it and API clients have always read it."""
    code: str | None = None
    """What kind of problem it is, as a name that stays when the words change (the import
    path's: tsunagu.imports.refusals), so that a client (the console) says it in the user's
    language; None for a problem said only in ``message``."""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """What a sentence about ``code`` needs (``{"encoding": "cp932"}``): JSON values."""

    def as_json(self) -> dict[str, Any]:
        """The problem as an error body lists it: ``code`` and ``params`` only when it has a
        code, so every problem without one reads as it always did."""
        body: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.code is not None:
            body["code"] = self.code
            body["params"] = dict(self.params)
        return body


class ValidationFailed(TsunaguError):
    """The request was readable but its content breaks the rules; ``errors`` says which."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class ConcurrentUpdate(TsunaguError):
    """Another writer changed the same record; retrying did not resolve it."""


class TooManyRequests(TsunaguError):
    """Too many requests for one address or from one client in a short time: refused whole,
    and ``retry_after_seconds`` says when the next one will be taken."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Throttled(Exception):
    """An AWS service asked to slow down (Step Functions' ThrottlingException...), after the
    SDK's own retries: worth asking again a little later where the caller can wait (a start
    run in the background), an error like any other where it cannot. Not a domain error the
    API answers."""


class UpstreamRefused(TsunaguError):
    """A service Tsunagu depends on (SES) refused what was asked of it: nothing was done."""
