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
    def get(self, key: str, /) -> D | None: ...

    def put(self, definition: D, clock: Clock, /, *, new: bool = False) -> None:
        """``new``: only if none has its id (AlreadyExists otherwise), checked by the store
        itself, so a create landing between a read and this write is not replaced."""
        ...

    def list(self) -> list[D]: ...


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
) -> bool:
    """Store ``definition``; True when it replaced one. AlreadyExists when one has ``key`` and
    ``replace`` was not asked for."""
    with recorded(ports.audit, ports.clock, actor, f"{kind}s.save", f"{kind}:{key}") as log:
        existing = store.get(key)
        if existing is not None and not replace:
            raise AlreadyExists(f"{kind} {key!r} exists")
        if isinstance(definition, FormDefinition):
            check_confirmation(definition, ports.templates)
        store.put(definition, ports.clock, new=existing is None and not replace)
        before = existing.model_dump(mode="json") if existing is not None else {}
        log.changed(before, definition.model_dump(mode="json"))
        log.detail = "replaced" if existing is not None else "created"
    return existing is not None


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
) -> list[D]:
    with recorded(ports.audit, ports.clock, actor, f"{kind}s.list", f"{kind}s"):
        return store.list()


def show[D: BaseModel](
    ports: DefinitionCommands, actor: Actor, kind: Kind, key: str, store: Definitions[D]
) -> D:
    with recorded(ports.audit, ports.clock, actor, f"{kind}s.list", f"{kind}:{key}"):
        found = store.get(key)
    if found is None:
        raise NotFound(f"no {kind} with id {key!r}")
    return found
