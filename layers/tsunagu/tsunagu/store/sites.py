"""Sites' definitions in DynamoDB, as people save and list them (the CLI, the admin API).

The tracking function reads a site through tsunagu.store.tracking instead (a StoredSite, without
pydantic, kept in a warm process's cache); saving one here drops it from this process's cache.
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from tsunagu.clock import Clock, isoformat
from tsunagu.errors import NotFound
from tsunagu.store.revisions import revision_of, save_revised
from tsunagu.store.tables import Tables, get_or_none
from tsunagu.store.tracking import forget_cached_site
from tsunagu.tracking.sites import SiteDefinition


class SiteRepository:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def get(self, site_id: str) -> SiteDefinition | None:
        found = self.revised(site_id)
        return None if found is None else found[0]

    def revised(self, site_id: str) -> tuple[SiteDefinition, int] | None:
        """The site and its revision (tsunagu.store.revisions)."""
        item = get_or_none(self._tables.sites, site_id)
        if item is None:
            return None
        return SiteDefinition.model_validate(item.definition), revision_of(item)

    def put(
        self, site: SiteDefinition, clock: Clock, *, new: bool = False, over: int | None = None
    ) -> int:
        """Store ``site``; its revision now. ``new``: only if no site has its id (AlreadyExists
        otherwise); ``over``: only if it is still at that revision (ConcurrentUpdate)."""
        model = self._tables.sites
        # An update, not a put: the site's signing key id lives beside the definition, and
        # replacing the settings must not take away the secret its server signs with.
        actions = [
            model.definition.set(site.model_dump(mode="json")),
            model.updated_at.set(isoformat(clock.now())),
        ]
        revision = save_revised(model, "site", site.site_id, actions, new=new, over=over)
        forget_cached_site(self._tables.settings.sites_table, site.site_id)
        return revision

    def signing_key(self, site_id: str) -> tuple[str, str] | None:
        """The site's signing key id and when it was made; None when it has none, NotFound when
        there is no such site."""
        item = get_or_none(self._tables.sites, site_id)
        if item is None:
            raise NotFound(f"no site with id {site_id!r}")
        if item.signing_key_id is None:
            return None
        return item.signing_key_id, item.signing_key_created_at or ""

    def signing_secrets_made(self) -> dict[str, str]:
        """When each site's current signing secret was made, by site id; a site without one is
        not in it."""
        return {
            item.site_id: item.signing_key_created_at or ""
            for item in self._tables.sites.scan(
                attributes_to_get=["site_id", "signing_key_id", "signing_key_created_at"]
            )
            if item.signing_key_id is not None
        }

    def set_signing_key(self, site_id: str, key_id: str, created_at: str) -> None:
        """Point the site at a new signing key (the old one stops verifying when the tracking
        functions read the site again: their site cache is dropped here only). NotFound
        when there is no such site: a key is never stored for a site no one registered."""
        model = self._tables.sites
        try:
            model(site_id).update(
                actions=[
                    model.signing_key_id.set(key_id),
                    model.signing_key_created_at.set(created_at),
                    model.updated_at.set(created_at),
                ],
                condition=model.site_id.exists(),
            )
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise NotFound(f"no site with id {site_id!r}") from None
        forget_cached_site(self._tables.settings.sites_table, site_id)

    def list_revised(self) -> list[tuple[SiteDefinition, int]]:
        sites = [
            (SiteDefinition.model_validate(item.definition), revision_of(item))
            for item in self._tables.sites.scan()
        ]
        return sorted(sites, key=lambda found: found[0].site_id)

    def list(self) -> list[SiteDefinition]:
        return [site for site, _ in self.list_revised()]
