"""Forms and sites, as marketers register them: created, or replaced when asked to (never
overwritten by accident), listed and shown; each creation and change in the audit log with what
it changed (a form's allowed origins, a site's, a consent text...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel

from tsunagu.clock import Clock
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, recorded
from tsunagu.errors import AlreadyExists, NotFound, ValidationFailed
from tsunagu.forms.confirmation import can_confirm, confirmation_template
from tsunagu.forms.model import FormDefinition
from tsunagu.forms.refusals import form_refusal
from tsunagu.mail.templates import MailTemplate

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
) -> tuple[bool, Revised[D]]:
    """Store ``definition``: whether it replaced one, and it as stored. AlreadyExists when one
    has ``key`` and ``replace`` was not asked for. ``over``: the revision the editor read -
    a replace of that revision only, ConcurrentUpdate (nothing stored) if someone saved it
    since, else a colleague's change is silently lost; None: over whatever is stored."""
    with recorded(ports.audit, ports.clock, actor, f"{kind}s.save", f"{kind}:{key}") as log:
        found = store.revised(key)
        existing = found[0] if found is not None else None
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
