"""The few lead fields whose value has a meaning Tsunagu acts on, checked wherever a field is set.

Most fields are text kept as given. ``owner_email`` is not: the hand-off mails it, a journey's
owner notice and owner-as-sender use it, the sales role's "own leads" and the owner filter
compare it. A value that is no address ("佐藤 営業部") would be stored and fail later, far from
whoever typed it; so every way a field is set (a person, the admin API, a journey step, a form,
an import) passes it through :func:`checked_field_value` and refuses it there. A person's name
is kept one way there too, whichever space the person typed.
"""

from __future__ import annotations

from tsunagu.leads.email import InvalidEmail, normalise_email

ADDRESS_FIELDS = frozenset({"owner_email"})
"""Fields that hold an e-mail address, stored normalised as a lead's own address is."""
NAME_FIELDS = frozenset({"name", "last_name", "first_name", "name_kana"})
"""Fields that hold a person's name, stored with one ASCII space wherever it has spaces:
山田　太郎 typed with a Japanese IME (U+3000) and 山田 太郎 are one name, and a list brought in
after a form (or the other way round) does not change the lead for a space."""


class InvalidFieldValue(ValueError):
    """The value cannot be stored in this field; the message names the field and says why
    (``expected``: the kind of value the field holds, ``detail``: what is wrong with this one,
    for a message in another language)."""

    def __init__(self, message: str, *, expected: str, detail: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.detail = detail


def checked_field_value(name: str, value: str) -> str:
    """The value to store in the field: an address field's normalised (full-width folded, the
    domain lower-cased), a name's spaces made one ASCII space each, any other as it is.
    InvalidFieldValue if it is no address. A blank value is left for the caller's own rule (it
    never erases a field)."""
    if name in NAME_FIELDS:
        return " ".join(value.split()) if value.strip() else value
    if name not in ADDRESS_FIELDS or not value.strip():
        return value
    try:
        return normalise_email(value).address
    except InvalidEmail as error:
        raise InvalidFieldValue(
            f"{name} must be an e-mail address ({error})",
            expected="email_address",
            detail=str(error),
        ) from None


def checked_field_values(values: dict[str, str]) -> dict[str, str]:
    """Every value of a field map through :func:`checked_field_value` (a pydantic validator)."""
    return {name: checked_field_value(name, value) for name, value in values.items()}
