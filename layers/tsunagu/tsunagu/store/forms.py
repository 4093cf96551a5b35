"""Form definitions in DynamoDB, as people save and list them (the CLI, the admin API).

The capture function reads a form through tsunagu.store.stored_forms instead (a StoredForm,
without pydantic, kept in a warm process's cache); saving one here drops it from this process's
cache.
"""

from __future__ import annotations

from pynamodb.exceptions import PutError

from tsunagu.client_values import STORED
from tsunagu.clock import Clock, isoformat
from tsunagu.errors import AlreadyExists
from tsunagu.forms.model import FormDefinition
from tsunagu.store.stored_forms import forget_cached_form
from tsunagu.store.tables import Tables, get_or_none


class FormRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def get(self, form_id: str) -> FormDefinition | None:
        item = get_or_none(self._tables.forms, form_id)
        if item is None:
            return None
        return FormDefinition.model_validate(item.definition, context={STORED: True})

    def put(self, form: FormDefinition, clock: Clock, *, new: bool = False) -> None:
        """Store ``form``; ``new``: only if no form has its id (AlreadyExists otherwise)."""
        model = self._tables.forms
        item = model(
            form.form_id, definition=form.model_dump(mode="json"), updated_at=isoformat(clock.now())
        )
        try:
            item.save(condition=model.form_id.does_not_exist() if new else None)
        except PutError as error:
            if not new or error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise AlreadyExists(f"form {form.form_id!r} exists") from None
        forget_cached_form(self._tables.settings.forms_table, form.form_id)

    def list(self) -> list[FormDefinition]:
        forms = [
            FormDefinition.model_validate(item.definition, context={STORED: True})
            for item in self._tables.forms.scan()
        ]
        return sorted(forms, key=lambda f: f.form_id)
