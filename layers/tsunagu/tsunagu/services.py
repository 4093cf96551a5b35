"""The composition root: builds the stores and the clock for a given settings, once."""

from __future__ import annotations

from functools import lru_cache

from tsunagu.clock import Clock, clock_from
from tsunagu.settings import Settings
from tsunagu.store.forms import FormRepository
from tsunagu.store.leads import LeadRepository
from tsunagu.store.tables import bind_tables


@lru_cache(maxsize=8)
def lead_repository(settings: Settings) -> LeadRepository:
    return LeadRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def form_repository(settings: Settings) -> FormRepository:
    return FormRepository(bind_tables(settings))


@lru_cache(maxsize=8)
def clock(settings: Settings) -> Clock:
    return clock_from(settings.clock_start, settings.clock_epoch, settings.time_scale)
