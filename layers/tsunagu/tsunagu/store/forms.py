"""Form definitions in DynamoDB, with a short per-container cache (forms are read on every
submission and change rarely)."""

from __future__ import annotations

import time

from tsunagu.clock import Clock, isoformat
from tsunagu.forms.model import STORED, FormDefinition
from tsunagu.store.tables import Tables, get_or_none

_cache: dict[tuple[str, str], tuple[float, FormDefinition]] = {}


def forget_cached_forms() -> None:
    """Drop every cached form definition (tests, and the CLI after an update)."""
    _cache.clear()


class FormRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._ttl = tables.settings.form_cache_seconds

    def get(self, form_id: str) -> FormDefinition | None:
        cache_key = (self._tables.settings.forms_table, form_id)
        cached = _cache.get(cache_key)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        item = get_or_none(self._tables.forms, form_id)
        if item is None:
            return None  # unknown forms are not cached: a new form works at once
        form = FormDefinition.model_validate(item.definition, context={STORED: True})
        _cache[cache_key] = (time.monotonic(), form)
        return form

    def put(self, form: FormDefinition, clock: Clock) -> None:
        self._tables.forms(
            form.form_id, definition=form.model_dump(mode="json"), updated_at=isoformat(clock.now())
        ).save()
        _cache.pop((self._tables.settings.forms_table, form.form_id), None)

    def list(self) -> list[FormDefinition]:
        forms = [
            FormDefinition.model_validate(item.definition, context={STORED: True})
            for item in self._tables.forms.scan()
        ]
        return sorted(forms, key=lambda f: f.form_id)
