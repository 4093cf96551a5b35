"""Why a form is refused when it is saved, or a mail template because of the forms that name
it, for a problem the console says in the marketer's language: each a FieldError with a code
that stays when the words change, as the import path's refusals (tsunagu.imports.refusals) are.
The console says it from ``errors.field_codes.<code>`` in its locales
(tests/static/test_console_locales.py holds both languages to these codes and the import
path's). A form's other problems are pydantic's (``value.<type>``) or said only in English.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from tsunagu.errors import FieldError

FormRefusalCode = Literal[
    # the consent box's confirmation mail (tsunagu.commands.definitions.check_confirmation)
    "confirmation_template_missing",
    "confirmation_template_not_transactional",
    # a template saved as a marketing mail while forms name it as their confirmation mail
    # (tsunagu.commands.mail.save_template)
    "confirmation_template_of_forms",
]
FORM_REFUSAL_CODES: tuple[FormRefusalCode, ...] = get_args(FormRefusalCode)
FORM_REFUSAL_PARAMS: Mapping[FormRefusalCode, tuple[str, ...]] = {
    # ``template``: the template id the form names
    "confirmation_template_missing": ("template",),
    "confirmation_template_not_transactional": ("template",),
    # ``forms``: the ids of the forms naming the template, a list
    "confirmation_template_of_forms": ("template", "forms"),
}
"""Each code's parameters, by name: every refusal of that code has them all."""


def form_refusal(field: str, code: FormRefusalCode, message: str, **params: Any) -> FieldError:
    """The problem with ``field``, said in English by ``message``; ``params`` are exactly the
    code's (FORM_REFUSAL_PARAMS), or this is the code's own mistake."""
    expected = set(FORM_REFUSAL_PARAMS[code])
    assert set(params) == expected, (code, sorted(params), sorted(expected))
    return FieldError(field, message, code, params)
