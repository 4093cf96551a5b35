"""Forms and sites, as marketers register them: created, or replaced when asked to (never
overwritten by accident), listed and shown; each creation and change in the audit log with what
it changed (a form's allowed origins, a site's, a consent text...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from tsunagu.clock import Clock
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, recorded
from tsunagu.errors import AlreadyExists, FieldError, NotFound, ValidationFailed
from tsunagu.forms.confirmation import can_confirm, confirmation_template
from tsunagu.forms.model import FormDefinition
from tsunagu.forms.refusals import form_refusal
from tsunagu.mail.templates import MailTemplate
from tsunagu.tracking.sites import SiteDefinition

Kind = Literal["form", "site"]


class Definitions[D: BaseModel](Protocol):
    def revised(self, key: str, /) -> tuple[D, int] | None:
        """The definition and its revision: how many times it was saved."""
        ...

    def put(
        self, definition: D, clock: Clock, /, *, new: bool = False, over: int | None = None
    ) -> int:
        """Store it; its revision now. ``new``: only if none has its id (AlreadyExists
        otherwise); ``over``: only if it is still at that revision (ConcurrentUpdate otherwise,
        carrying the revision now). Both checked by the store itself, in the write, so a save
        landing between a read and this write is not replaced."""
        ...

    def list_revised(self) -> list[tuple[D, int]]: ...


@dataclass(frozen=True)
class Revised[D: BaseModel]:
    """A record people edit whole (a form, a site, the qualification rules) as stored, with its
    revision (tsunagu.store.revisions): what an editor sends back when it saves."""

    definition: D
    revision: int

    def as_json(self) -> dict[str, object]:
        return {**self.definition.model_dump(mode="json"), "revision": self.revision}


def revision_read(body: dict[str, Any], what: str) -> int | None:
    """The ``revision`` a save of a record edited whole names, taken out of ``body``: the
    count GET answered, which the save goes over (tsunagu.store.revisions). None: it names
    none (the CLI, scripts), and the save goes over whatever is stored."""
    over = body.pop("revision", None)
    if over is not None and (type(over) is not int or over < 0):
        raise ValidationFailed(
            [FieldError("revision", f"must be the revision of {what} as you read it")]
        )
    return over


def read_only(description: str, *, instant: bool = False) -> Any:
    """A field an answer carries that is not the resource's to set (when a site's secret was
    made, how many leads a segment selects now): a save takes it back unread, so what a GET
    answered can be edited and sent back as it is (``tsunagu api get`` then ``put``), and never
    changes it. Documented as OpenAPI's ``readOnly``; ``instant``: an ISO-8601 instant
    (``date-time``)."""
    extra: dict[str, Any] = {"readOnly": True}
    if instant:
        extra["format"] = "date-time"
    return Field(default=None, description=description, json_schema_extra=extra)


def read_only_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` made with :func:`read_only`."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("readOnly")
    )


def unread(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (an answer of ``model``, edited) without ``model``'s read-only fields, whatever
    they say: what a save reads. Any other field ``model`` has not is left in, to be refused
    when it is validated."""
    answered_only = read_only_fields(model)
    return {name: value for name, value in body.items() if name not in answered_only}


REVISION_NOTE = (
    "How many times it was saved, as the answer read it. Sent back with a save, the save"
    " replaces that revision only: a 409 (the revision now in `revision`), nothing stored, if"
    " someone saved it since; absent or null: over whatever is stored."
)


class FormDocument(FormDefinition):
    """A form as the admin API answers it and takes it back: its definition, and its
    revision."""

    revision: int | None = Field(default=None, ge=0, description=REVISION_NOTE)


class SiteDocument(SiteDefinition):
    """A site as the admin API answers it and takes it back: its settings, its revision, and
    (read-only: a save ignores them) when its signing secret was made and until when the one
    it replaced is still accepted. Never the key id a secret is made from, nor a secret."""

    revision: int | None = Field(default=None, ge=0, description=REVISION_NOTE)
    signing_secret_made_at: str | None = read_only(
        "When the site's signing secret was made; null: it has none"
        " (a first one replaces nothing).",
        instant=True,
    )
    previous_secret_accepted_until: str | None = read_only(
        "Until when the secret the last rotation replaced is still accepted (24 hours after"
        " the rotation); null: there is none, its time is over, or it was revoked.",
        instant=True,
    )


DOCUMENTS: dict[Kind, type[BaseModel]] = {"form": FormDocument, "site": SiteDocument}
"""Each kind as GET answers it and a save takes it back."""


def as_saved(kind: Kind, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """A {kind} as GET answered it, or its bare definition, made ready to save: the one rule
    the admin API's PUT and the CLI's ``--file`` both read it by. What the answer said that
    is not the {kind}'s to set (its document's read-only fields) goes unread, whatever it says
    - any other field the definition has not is still refused when it is validated - and its
    ``revision`` is taken out (:func:`revision_read`; ValidationFailed if it is no revision)."""
    saved = unread(DOCUMENTS[kind], body)
    return saved, revision_read(saved, f"the {kind}")


class Templates(Protocol):
    def template(self, template_id: str, version: int | None) -> MailTemplate | None: ...


@dataclass(frozen=True)
class DefinitionCommands:
    audit: AuditLog
    clock: Clock
    templates: Templates
    """The mail templates a consent-asking form's confirmation mail is checked against."""


def save[D: BaseModel](
    ports: DefinitionCommands,
    actor: Actor,
    kind: Kind,
    key: str,
    definition: D,
    store: Definitions[D],
    *,
    replace: bool,
    over: int | None = None,
    over_if_stored: bool = False,
) -> tuple[bool, Revised[D]]:
    """Store ``definition``: whether it replaced one, and it as stored. AlreadyExists when one
    has ``key`` and ``replace`` was not asked for. ``over``: the revision the editor read -
    a replace of that revision only, ConcurrentUpdate (nothing stored) if someone saved it
    since, else a colleague's change is silently lost; None: over whatever is stored.
    ``over_if_stored``: ``over`` may be a revision counted on another stack (a file the CLI
    loads, exported there): when none has ``key`` here it is created, ``over`` unread, rather
    than NotFound (the API's answer to an editor whose form was never stored where it saves)."""
    with recorded(ports.audit, ports.clock, actor, f"{kind}s.save", f"{kind}:{key}") as log:
        found = store.revised(key)
        existing = found[0] if found is not None else None
        if over_if_stored and existing is None:
            over = None
        if over is not None and existing is None:
            raise NotFound(f"no {kind} with id {key!r} to save over")
        if existing is not None and not replace and over is None:
            raise AlreadyExists(f"{kind} {key!r} exists")
        if isinstance(definition, FormDefinition):
            check_confirmation(definition, ports.templates)
        revision = store.put(
            definition, ports.clock, new=existing is None and not replace, over=over
        )
        before = existing.model_dump(mode="json") if existing is not None else {}
        log.changed(before, definition.model_dump(mode="json"))
        log.detail = "replaced" if existing is not None else "created"
    return existing is not None, Revised(definition, revision)


def check_confirmation(form: FormDefinition, templates: Templates) -> None:
    """A form with a consent box is saved only with its confirmation mail, a transactional one
    (the rule and why: tsunagu.forms.confirmation; a template save checks the other side).
    Checked when a form is saved, however it is saved (admin API, console, CLI: all through
    ``save``); a form stored before this rule still loads and takes sign-ups (route_events
    counts each confirmation that cannot go as ConfirmationNotSent, alarmed)."""
    name = confirmation_template(form)
    if name is None:
        return
    template = templates.template(name, None)
    if template is None:
        problem = form_refusal(
            "consent.confirmation_template",
            "confirmation_template_missing",
            f'no mail template {name!r}: create the confirmation mail first ("kind":'
            ' "transactional", linking to {{ confirm_url }}), or name another',
            template=name,
        )
    elif not can_confirm(template):
        problem = form_refusal(
            "consent.confirmation_template",
            "confirmation_template_not_transactional",
            f"mail template {name!r} is a marketing mail, which is never sent to a person whose"
            ' consent is still pending: save it with "kind": "transactional"',
            template=name,
        )
    else:
        return
    raise ValidationFailed([problem])


def listing[D: BaseModel](
    ports: DefinitionCommands, actor: Actor, kind: Kind, store: Definitions[D]
) -> list[Revised[D]]:
    with recorded(ports.audit, ports.clock, actor, f"{kind}s.list", f"{kind}s"):
        return [Revised(definition, revision) for definition, revision in store.list_revised()]


def show[D: BaseModel](
    ports: DefinitionCommands, actor: Actor, kind: Kind, key: str, store: Definitions[D]
) -> Revised[D]:
    with recorded(ports.audit, ports.clock, actor, f"{kind}s.list", f"{kind}:{key}"):
        found = store.revised(key)
    if found is None:
        raise NotFound(f"no {kind} with id {key!r}")
    return Revised(*found)
