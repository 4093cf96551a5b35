"""Form definitions in DynamoDB, as people save and list them (the CLI, the admin API).

The capture function reads a form through tsunagu.store.stored_forms instead (a StoredForm,
without pydantic, kept in a warm process's cache); saving one here drops it from this process's
cache.
"""

from __future__ import annotations

from tsunagu.client_values import STORED
from tsunagu.clock import Clock, isoformat
from tsunagu.forms.model import FormDefinition
from tsunagu.store.models import FormItem
from tsunagu.store.revisions import revision_of, save_revised
from tsunagu.store.stored_forms import forget_cached_form
from tsunagu.store.tables import Tables, get_or_none


class FormRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def get(self, form_id: str) -> FormDefinition | None:
        found = self.revised(form_id)
        return None if found is None else found[0]

    def revised(self, form_id: str) -> tuple[FormDefinition, int] | None:
        """The form and its revision (tsunagu.store.revisions)."""
        item = get_or_none(self._tables.forms, form_id)
        if item is None:
            return None
        return _definition(item), revision_of(item)

    def put(
        self, form: FormDefinition, clock: Clock, *, new: bool = False, over: int | None = None
    ) -> int:
        """Store ``form``; its revision now. ``new``: only if no form has its id (AlreadyExists
        otherwise); ``over``: only if it is still at that revision (ConcurrentUpdate)."""
        model = self._tables.forms
        actions = [
            model.definition.set(form.model_dump(mode="json")),
            model.updated_at.set(isoformat(clock.now())),
        ]
        revision = save_revised(
            model, form.form_id, f"form {form.form_id!r}", actions, new=new, over=over
        )
        forget_cached_form(self._tables.settings.forms_table, form.form_id)
        return revision

    def list_revised(self) -> list[tuple[FormDefinition, int]]:
        forms = [(_definition(item), revision_of(item)) for item in self._tables.forms.scan()]
        return sorted(forms, key=lambda found: found[0].form_id)

    def list(self) -> list[FormDefinition]:
        return [form for form, _ in self.list_revised()]


def _definition(item: FormItem) -> FormDefinition:
    return FormDefinition.model_validate(item.definition, context={STORED: True})
