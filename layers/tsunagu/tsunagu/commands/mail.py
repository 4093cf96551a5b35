"""Mail templates, as marketers write them: a new version stored (never a version changed), the
latest of each listed, any version shown, and a preview of how a lead will see it - rendered
with the lead's own data, as a send renders it, but with inert links: a preview must not carry
a working click, open or unsubscribe URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tsunagu.clock import Clock
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.errors import FieldError, NotFound, ValidationFailed
from tsunagu.leads.lookup import LeadFinder, lead_by_email
from tsunagu.mail.render import RenderedMail, RenderError, TrackingUrls, check_template, render_mail
from tsunagu.mail.send import lead_context, owner_context
from tsunagu.mail.templates import MailTemplate

PREVIEW_LINKS = "https://preview.invalid"
"""Where a preview's links point (RFC 2606's reserved .invalid: never anyone's host)."""
PREVIEW_URLS = TrackingUrls(
    click=lambda link_id, _destination: f"{PREVIEW_LINKS}/c/{link_id}",
    open_pixel=f"{PREVIEW_LINKS}/o.gif",
    honeypot=f"{PREVIEW_LINKS}/c/honeypot",
    unsubscribe=f"{PREVIEW_LINKS}/u",
)


class Templates(Protocol):
    def save_template(self, template: MailTemplate, clock: Clock) -> MailTemplate: ...

    def template(self, template_id: str, version: int | None) -> MailTemplate | None: ...

    def templates(self) -> list[MailTemplate]: ...


@dataclass(frozen=True)
class MailCommands:
    templates: Templates
    leads: LeadFinder
    audit: AuditLog
    clock: Clock


@dataclass(frozen=True)
class Preview:
    template: MailTemplate
    """The version rendered."""
    mail: RenderedMail


def save_template(ports: MailCommands, actor: Actor, template: MailTemplate) -> MailTemplate:
    """Store ``template`` as its next version (the version it carries is ignored). A template
    that does not render (syntax, or a reach outside the sandbox) is refused, field by field."""
    key = template.template_id
    with recorded(ports.audit, ports.clock, actor, "templates.save", f"template:{key}") as log:
        try:
            check_template(template)
        except RenderError as error:
            raise ValidationFailed([FieldError("template", f"does not render: {error}")]) from None
        previous = ports.templates.template(key, None)
        stored = ports.templates.save_template(template, ports.clock)
        before = previous.model_dump(mode="json") if previous is not None else {}
        log.changed(before, stored.model_dump(mode="json"))
        log.detail = f"version {stored.version}"
    return stored


def listing(ports: MailCommands, actor: Actor) -> list[MailTemplate]:
    """The latest version of every template, by id."""
    allowed(ports.audit, ports.clock, actor, "templates.list", "templates")
    return ports.templates.templates()


def show(
    ports: MailCommands, actor: Actor, template_id: str, version: int | None = None
) -> MailTemplate:
    allowed(ports.audit, ports.clock, actor, "templates.list", f"template:{template_id}")
    found = ports.templates.template(template_id, version)
    if found is None:
        which = f" version {version}" if version is not None else ""
        raise NotFound(f"no template {template_id!r}{which}")
    return found


def preview(
    ports: MailCommands, actor: Actor, template_id: str, email: str, version: int | None = None
) -> Preview:
    """The template as the lead with ``email`` would receive it now: its fields and its owner's
    in the merge tags, links inert (``PREVIEW_LINKS``). Nothing is sent or stored."""
    template = show(ports, actor, template_id, version)
    allowed(ports.audit, ports.clock, actor, "leads.show", f"lead:{email}")
    lead = lead_by_email(ports.leads, email)
    try:
        mail = render_mail(
            template,
            lead=lead_context(lead),
            owner=owner_context(lead),
            journey=None,
            urls=PREVIEW_URLS,
        )
    except RenderError as error:
        raise ValidationFailed([FieldError("template", f"does not render: {error}")]) from None
    return Preview(template, mail)
