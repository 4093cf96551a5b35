"""Mail templates, as marketers write them: a new version stored (never a version changed), the
latest of each listed, any version shown, a preview of how a lead will see it - rendered with
the lead's own data, as a send renders it, but with inert links: a preview must not carry a
working click, open or unsubscribe URL - and a test send of that preview to a colleague's
inbox, which only ever reaches the mail allowlist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tsunagu.client_values import validation_failed
from tsunagu.clock import Clock, isoformat
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed, recorded
from tsunagu.errors import (
    AlreadyExists,
    FieldError,
    NotFound,
    UpstreamRefused,
    ValidationFailed,
)
from tsunagu.forms.confirmation import can_confirm, forms_confirmed_by
from tsunagu.forms.model import FormDefinition
from tsunagu.forms.refusals import form_refusal
from tsunagu.leads.email import InvalidEmail, normalise_email
from tsunagu.leads.lookup import LeadFinder, lead_by_email
from tsunagu.mail.consent import allowed_outside_production
from tsunagu.mail.exclusions import Exclusion, ExclusionList, exclusion_entry
from tsunagu.mail.render import (
    SAFE_SCHEMES,
    RenderedMail,
    RenderError,
    TrackingUrls,
    check_template,
    copied_tracking_links,
    render_mail,
    unsafe_written_links,
)
from tsunagu.mail.send import (
    Messenger,
    MessengerError,
    OutgoingMail,
    lead_context,
    owner_context,
    sender_for,
)
from tsunagu.mail.templates import MailTemplate, TemplateVersion, saved_meanwhile

PREVIEW_LINKS = "https://preview.invalid"
"""Where a preview's links point (RFC 2606's reserved .invalid: never anyone's host)."""
PREVIEW_PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
"""A preview's open pixel: a blank image in the mail itself. The console shows a preview with
its images, and a pixel on a host that is never anyone's would be a failed request each time."""
PREVIEW_URLS = TrackingUrls(
    click=lambda link_id, _destination: f"{PREVIEW_LINKS}/c/{link_id}",
    open_pixel=PREVIEW_PIXEL,
    honeypot=f"{PREVIEW_LINKS}/c/honeypot",
    unsubscribe=f"{PREVIEW_LINKS}/u",
)


class Templates(Protocol):
    def save_template(
        self,
        template: MailTemplate,
        clock: Clock,
        saved_by: str | None = None,
        *,
        first: bool = False,
        over: int | None = None,
    ) -> MailTemplate: ...

    def template(self, template_id: str, version: int | None) -> MailTemplate | None: ...

    def template_versions(self, template_id: str) -> list[TemplateVersion]: ...

    def templates(self) -> list[MailTemplate]: ...

    def exclusions(self, *, fresh: bool = False) -> ExclusionList: ...

    def save_exclusions(self, changed: ExclusionList) -> None: ...


TEST_SUBJECT = "[TEST] "
"""Before a test send's (a proof's) subject: nobody mistakes it for the real mail."""
SAMPLE_LEAD = {"name": "見本 花子", "company": "株式会社サンプル", "title": "マーケティング部 部長"}
"""The merge tags' data of a test send made for no lead in particular."""


class Forms(Protocol):
    def list(self) -> list[FormDefinition]: ...


@dataclass(frozen=True)
class ProofRules:
    recipients: frozenset[str]
    """The mail allowlist: the only addresses or domains a test send may go to, in every stage."""
    sender_domains: frozenset[str]


@dataclass(frozen=True)
class MailCommands:
    templates: Templates
    leads: LeadFinder
    audit: AuditLog
    clock: Clock
    forms: Forms
    """The forms whose confirmation mail a template may be (tsunagu.forms.confirmation)."""
    messenger: Messenger | None = None
    """Where test sends go (SES); None where nothing may send."""
    proofs: ProofRules | None = None
    api_url: str | None = None
    """The API's base URL, whose own click, open and unsubscribe links a template may not copy."""


@dataclass(frozen=True)
class Preview:
    template: MailTemplate
    """The version rendered."""
    mail: RenderedMail
    owner: dict[str, str]
    """The lead's owner, as the merge tags saw them (a sender may be the owner)."""
    lead_id: str | None = None
    """The lead whose data filled the merge tags (None: the sample lead's)."""


def _check_sender(ports: MailCommands, template: MailTemplate) -> None:
    """SES sends only from the stage's verified domains: a template from another would be
    stored, then refused by SES at every send of every journey that uses it."""
    verified = ports.proofs.sender_domains if ports.proofs else frozenset()
    domain = template.from_address.rsplit("@", 1)[-1].casefold()
    # A verified domain covers its subdomains (news@mail.example.com under example.com)
    if verified and not any(domain == v or domain.endswith(f".{v}") for v in verified):
        raise ValidationFailed(
            [
                FieldError(
                    "from_address",
                    f"SES may not send from {domain}: the verified sender domains are "
                    f"{', '.join(sorted(verified))} (the stack's SenderDomain)",
                )
            ]
        )


def save_template(
    ports: MailCommands,
    actor: Actor,
    template: MailTemplate,
    *,
    new: bool = False,
    over: int | None = None,
    over_if_stored: bool = False,
) -> MailTemplate:
    """Store ``template`` as its next version (the version it carries is ignored). A template
    that does not render (syntax, or a reach outside the sandbox) is refused, field by field.
    ``new``: the template is being created, so an existing one with its id is not replaced
    (AlreadyExists) - a second "new" template must not become the first one's next version.
    ``over``: the latest version the editor read; ConcurrentUpdate, nothing stored, if a
    colleague stored a newer one since (else their fix would silently stop being the latest).
    None: over whatever is latest (the CLI, scripts). ``over_if_stored``: ``over`` may be a
    version counted on another stack (a file the CLI loads, exported there): when none has the
    template's id here it is created, ``over`` unread, as a form's file is
    (definitions.save)."""
    key = template.template_id
    with recorded(ports.audit, ports.clock, actor, "templates.save", f"template:{key}") as log:
        _check_fields(template)
        try:
            check_template(template)
        except RenderError as error:
            raise ValidationFailed([FieldError("template", f"does not render: {error}")]) from None
        _check_sender(ports, template)
        _check_links(ports, template)
        _check_schemes(template)
        _check_confirmations(ports, template)
        previous = ports.templates.template(key, None)
        if over_if_stored and previous is None:
            over = None
        if new and previous is not None:
            raise AlreadyExists(f"a template {key!r} exists (version {previous.version})")
        if over is not None:
            _check_over(key, over, previous, new=new)
        stored = ports.templates.save_template(
            template, ports.clock, actor.email or actor.user_id, first=new, over=over
        )
        before = previous.model_dump(mode="json") if previous is not None else {}
        log.changed(before, stored.model_dump(mode="json"))
        log.detail = f"version {stored.version}"
    return stored


def _check_over(key: str, over: int, latest: MailTemplate | None, *, new: bool) -> None:
    """The version an editor read must be one stored: a newer one is a colleague's save (the
    store refuses that too, for a save between this read and the write)."""
    if new or latest is None or over > latest.version:
        have = "none" if new or latest is None else f"version {latest.version} is the latest"
        raise ValidationFailed(
            [FieldError("version", f"no version {over} of template {key!r} to save over ({have})")]
        )
    if over < latest.version:
        raise saved_meanwhile(key, over, latest.version)


def _check_confirmations(ports: MailCommands, template: MailTemplate) -> None:
    """A form's save checks that its confirmation mail is transactional; a later version of
    that mail must not undo it, or the form's pending opt-ins stop being confirmed without a
    word (tsunagu.forms.confirmation)."""
    if can_confirm(template):
        return
    forms = forms_confirmed_by(template.template_id, ports.forms.list())
    if forms:
        raise ValidationFailed(
            [
                form_refusal(
                    "kind",
                    "confirmation_template_of_forms",
                    f"template {template.template_id!r} is the confirmation mail of the form(s)"
                    f" {', '.join(forms)}, which must be a transactional mail (a marketing mail"
                    ' never goes to a person whose consent is pending): keep "kind":'
                    ' "transactional", or have those forms name another confirmation mail',
                    template=template.template_id,
                    forms=forms,
                )
            ]
        )


def _check_links(ports: MailCommands, template: MailTemplate) -> None:
    """A click, open or unsubscribe link copied from a mail Tsunagu sent carries a token naming
    that mail's recipient: every click on it would count as theirs, and its preference page is
    theirs. Sends leave such a link untracked; a new version may not write one."""
    copied = copied_tracking_links(template, ports.api_url or None)
    if copied:
        raise ValidationFailed(
            [
                FieldError(
                    field,
                    f"{url} is a link copied from a mail Tsunagu sent (it names that mail's"
                    " recipient): link to the page itself, or use {{ unsubscribe_url }}",
                )
                for field, url in copied
            ]
        )


def _check_schemes(template: MailTemplate) -> None:
    """A link the marketer wrote with a scheme a send empties (render._safe_hrefs) is said at
    save: at send it would only be an empty link."""
    unsafe = unsafe_written_links(template.html)
    if unsafe:
        raise ValidationFailed(
            [
                FieldError(
                    "html",
                    f"{link}: a mail's links are {', '.join(sorted(SAFE_SCHEMES))} links;"
                    " a link of another kind would be emptied at every send",
                )
                for link in unsafe
            ]
        )


def _check_fields(template: MailTemplate) -> None:
    """The template's fields validated again: one changed with ``model_copy(update=...)`` or
    built with ``model_construct`` skipped pydantic's checks, and a stored template that breaks
    them (an empty body) would fail every later listing and send of templates, which read it."""
    try:
        MailTemplate.model_validate(template.model_dump())
    except ValidationError as error:
        raise validation_failed(error, "template") from None


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


def versions(ports: MailCommands, actor: Actor, template_id: str) -> list[TemplateVersion]:
    """The template's history: every stored version, the newest first."""
    allowed(ports.audit, ports.clock, actor, "templates.list", f"template:{template_id}")
    found = ports.templates.template_versions(template_id)
    if not found:
        raise NotFound(f"no template {template_id!r}")
    return found


def preview(
    ports: MailCommands, actor: Actor, template_id: str, email: str, version: int | None = None
) -> Preview:
    """The template as the lead with ``email`` would receive it now: its fields and its owner's
    in the merge tags, links inert (``PREVIEW_LINKS``). Nothing is sent or stored."""
    return render_preview(ports, actor, show(ports, actor, template_id, version), email)


SAMPLE_ADDRESS = "mihon.hanako@example.jp"
"""The sample lead's address (a preview made for no lead in particular)."""


def render_preview(
    ports: MailCommands,
    actor: Actor,
    template: MailTemplate,
    email: str | None,
    *,
    sample_address: str = SAMPLE_ADDRESS,
) -> Preview:
    """A template - stored, or the draft an editor holds - as the lead with ``email`` would
    receive it now (or with the sample lead's data when None), by the sender's own renderer,
    links inert. Nothing is sent or stored."""
    lead_id: str | None = None
    if email is None:
        lead, owner = {"email": sample_address, **SAMPLE_LEAD}, {}
    else:
        allowed(ports.audit, ports.clock, actor, "leads.show", f"lead:{email}")
        found = lead_by_email(ports.leads, email)
        lead, owner, lead_id = lead_context(found), owner_context(found), found.lead_id
    try:
        mail = render_mail(template, lead=lead, owner=owner, journey=None, urls=PREVIEW_URLS)
    except RenderError as error:
        raise ValidationFailed([FieldError("template", f"does not render: {error}")]) from None
    return Preview(template, mail, owner, lead_id)


def preview_draft(
    ports: MailCommands, actor: Actor, draft: MailTemplate, email: str | None
) -> Preview:
    """The draft being edited, before it is stored: the console's live preview."""
    allowed(ports.audit, ports.clock, actor, "templates.list", f"template:{draft.template_id}")
    return render_preview(ports, actor, draft, email)


class ProofRequest(BaseModel):
    """Mail a template's preview to a colleague (an address on the mail allowlist)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str = Field(min_length=3, max_length=254)
    """Who gets it: an address or a domain on the mail allowlist."""
    lead: str | None = Field(default=None, min_length=3, max_length=254)
    """The lead whose data fills the merge tags (sample data when not given)."""
    version: int | None = Field(default=None, ge=1)
    """The version to send (the latest when not given)."""


@dataclass(frozen=True)
class ProofSent:
    to: str
    version: int
    subject: str
    ses_message_id: str


def send_proof(
    ports: MailCommands,
    actor: Actor,
    template_id: str,
    to: str,
    *,
    lead_email: str | None = None,
    version: int | None = None,
) -> ProofSent:
    """The preview (for ``lead_email``, or sample data) mailed to ``to``, a colleague on the mail
    allowlist — in every stage, prod included: a test send never reaches a lead or anyone
    outside. Its links are inert and it carries no lead's id, so nothing it causes (an open, a
    click, a bounce) is counted for anyone."""
    target = f"template:{template_id}"
    with recorded(ports.audit, ports.clock, actor, "templates.test_send", target) as log:
        try:
            address = normalise_email(to).address
        except InvalidEmail as error:
            raise ValidationFailed([FieldError("to", str(error))]) from None
        rules, messenger = ports.proofs, ports.messenger
        if rules is None or messenger is None:
            raise ValidationFailed([FieldError("to", "this stack cannot send test mail")])
        if not allowed_outside_production(address, rules.recipients):
            raise ValidationFailed(
                [FieldError("to", "test sends go only to the mail allowlist (MailAllowlist)")]
            )
        stored = show(ports, actor, template_id, version)
        # Made for no lead in particular, the sample lead has the colleague's address
        rendered = render_preview(ports, actor, stored, lead_email, sample_address=address)
        template, mail, owner = rendered.template, rendered.mail, rendered.owner
        outgoing = OutgoingMail(
            sender=sender_for(template, owner, rules.sender_domains),
            recipient=address,
            subject=TEST_SUBJECT + mail.subject,
            html=mail.html,
            text=mail.text,
            reply_to=template.reply_to,
            headers={},
            tags={"purpose": "test_send", "template_id": template.template_id},
        )
        try:
            sent = messenger.send(outgoing)
        except MessengerError as error:
            raise UpstreamRefused(f"SES did not take the test mail: {error}") from None
        # A lead's data mailed out is personal data leaving Tsunagu: the log names whose, as
        # it does for an export
        whose = f"lead:{rendered.lead_id}" if rendered.lead_id else "sample data"
        log.detail = f"version {template.version} to {address} with {whose}"
    return ProofSent(address, template.version, outgoing.subject, sent)


# ------------------------------------------------------------------------------ exclusions
def exclusions(ports: MailCommands, actor: Actor) -> ExclusionList:
    """The account's exclusions (no marketing mail goes to them)."""
    allowed(ports.audit, ports.clock, actor, "exclusions.list", "exclusions")
    return ports.templates.exclusions(fresh=True)


def exclude(
    ports: MailCommands, actor: Actor, value: str, list_name: str, note: str | None
) -> Exclusion:
    """Add an address or a domain to a list of exclusions (replacing its entry if it has one):
    from the next send on, marketing mail to it is skipped as ``excluded``."""
    with recorded(ports.audit, ports.clock, actor, "exclusions.save", f"exclusion:{value}") as log:
        entry = exclusion_entry(
            value, list_name, note, actor.email or actor.user_id, isoformat(ports.clock.now())
        )
        current = ports.templates.exclusions(fresh=True)
        before = current.excluding_entry(entry.value)
        ports.templates.save_exclusions(current.with_entry(entry))
        log.changed(before.as_json() if before else {}, entry.as_json())
    return entry


def include_again(ports: MailCommands, actor: Actor, value: str) -> Exclusion:
    """Take an address or domain off the exclusions (NotFound if it is not on them)."""
    with recorded(ports.audit, ports.clock, actor, "exclusions.save", f"exclusion:{value}") as log:
        current = ports.templates.exclusions(fresh=True)
        changed, gone = current.without(value)
        if gone is None:
            raise NotFound(f"{value!r} is not among the exclusions")
        ports.templates.save_exclusions(changed)
        log.changed(gone.as_json(), {})
    return gone
