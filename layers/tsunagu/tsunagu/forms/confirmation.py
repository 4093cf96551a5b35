"""The rule that ties a consent-asking form to its confirmation mail, held here once and checked
from both sides: when the form is saved (tsunagu.commands.definitions.check_confirmation) and
when a template is saved (tsunagu.commands.mail.save_template), since either save can break it.

A form with a consent box needs its confirmation mail, whether or not it asks for double opt-in:
a double opt-in sign-up is confirmed only from that mail, and any form's box ticked by a lead
who had said no is stored pending and confirmed from it too (tsunagu.leads.capture; 特定電子メ
ール法). That mail must be transactional: a marketing mail is skipped at every send to a person
whose consent is still pending (no_consent), so the pending consent could never count - only
route_events' ConfirmationNotSent alarm would say so.
"""

from __future__ import annotations

from collections.abc import Iterable

from tsunagu.forms.model import FormDefinition
from tsunagu.mail.templates import MailTemplate


def confirmation_template(form: FormDefinition) -> str | None:
    """The template id of the mail that confirms ``form``'s pending opt-ins; None when the form
    asks no consent, so needs none."""
    return form.consent.confirmation_template if form.consent is not None else None


def can_confirm(template: MailTemplate) -> bool:
    """Whether ``template`` can confirm a pending opt-in: only a transactional mail reaches a
    person whose consent is still pending."""
    return template.kind == "transactional"


def forms_confirmed_by(template_id: str, forms: Iterable[FormDefinition]) -> list[str]:
    """The ids of the forms whose opt-ins ``template_id`` confirms, in order."""
    return sorted(f.form_id for f in forms if confirmation_template(f) == template_id)
