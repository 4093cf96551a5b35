"""Sites' definitions in DynamoDB, as people save and list them (the CLI, the admin API).

The tracking function reads a site through tsunagu.store.tracking instead (a StoredSite, without
pydantic, kept in a warm process's cache); saving one here drops it from this process's cache.
"""

from __future__ import annotations

from pynamodb.exceptions import PutError

from tsunagu.clock import Clock, isoformat
from tsunagu.errors import AlreadyExists
from tsunagu.store.tables import Tables, get_or_none
from tsunagu.store.tracking import forget_cached_site
from tsunagu.tracking.sites import SiteDefinition


class SiteRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def get(self, site_id: str) -> SiteDefinition | None:
        item = get_or_none(self._tables.sites, site_id)
        return None if item is None else SiteDefinition.model_validate(item.definition)

    def put(self, site: SiteDefinition, clock: Clock, *, new: bool = False) -> None:
        """Store ``site``; ``new``: only if no site has its id (AlreadyExists otherwise)."""
        model = self._tables.sites
        item = model(
            site.site_id, definition=site.model_dump(mode="json"), updated_at=isoformat(clock.now())
        )
        try:
            item.save(condition=model.site_id.does_not_exist() if new else None)
        except PutError as error:
            if not new or error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise AlreadyExists(f"site {site.site_id!r} exists") from None
        forget_cached_site(self._tables.settings.sites_table, site.site_id)

    def list(self) -> list[SiteDefinition]:
        sites = [SiteDefinition.model_validate(i.definition) for i in self._tables.sites.scan()]
        return sorted(sites, key=lambda s: s.site_id)
