"""Forms as the capture function reads them: StoredForm records (no pydantic), kept for a short
while by a warm container, as every submission reads its form and forms change rarely.

Saving a form (tsunagu.store.forms) drops it from this process's cache; other warm containers
read it again within ``form_cache_seconds``.
"""

from __future__ import annotations

import time

from tsunagu.forms.stored import StoredForm
from tsunagu.store.tables import Tables, get_or_none

_cache: dict[tuple[str, str], tuple[float, StoredForm]] = {}
"""(forms table, form id) -> (when read, the form)."""


def forget_cached_forms() -> None:
    """Drop every cached form (tests, and the CLI after an update)."""
    _cache.clear()


def forget_cached_form(forms_table: str, form_id: str) -> None:
    _cache.pop((forms_table, form_id), None)


def read_stored_form(tables: Tables, form_id: str) -> StoredForm | None:
    """The form, from this process's cache while it is fresh."""
    settings = tables.settings
    cache_key = (settings.forms_table, form_id)
    cached = _cache.get(cache_key)
    if cached is not None and time.monotonic() - cached[0] < settings.form_cache_seconds:
        return cached[1]
    item = get_or_none(tables.forms, form_id)
    if item is None:
        return None  # unknown forms are not cached: a new form works at once
    form = StoredForm.from_definition(item.definition)
    _cache[cache_key] = (time.monotonic(), form)
    return form
