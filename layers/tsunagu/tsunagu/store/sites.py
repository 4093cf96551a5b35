"""Sites' definitions in DynamoDB, as people save and list them (the CLI, the admin API).

The tracking function reads a site through tsunagu.store.tracking instead (a StoredSite, without
pydantic, kept in a warm process's cache); saving one here drops it from this process's cache.
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from tsunagu.clock import Clock, isoformat
from tsunagu.errors import ConcurrentUpdate, NotFound
from tsunagu.store.models import SiteItem
from tsunagu.store.revisions import revision_of, save_revised
from tsunagu.store.tables import Tables, get_or_none
from tsunagu.store.tracking import forget_cached_site
from tsunagu.tracking.sites import SiteDefinition
from tsunagu.tracking.stored_sites import SigningKeys


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
        revision = save_revised(
            model, site.site_id, f"site {site.site_id!r}", actions, new=new, over=over
        )
        forget_cached_site(self._tables.settings.sites_table, site.site_id)
        return revision

    def signing_keys(self, site_id: str) -> SigningKeys | None:
        """The site's signing keys; None when it has none, NotFound when there is no such
        site."""
        item = get_or_none(self._tables.sites, site_id)
        if item is None:
            raise NotFound(f"no site with id {site_id!r}")
        return _signing_keys(item)

    def all_signing_keys(self) -> dict[str, SigningKeys]:
        """Each site's signing keys, by site id; a site without any is not in it."""
        model = self._tables.sites
        attributes = [
            "site_id",
            "signing_key_id",
            "signing_key_created_at",
            "previous_signing_key_id",
            "previous_signing_key_until",
        ]
        found = {
            item.site_id: _signing_keys(item) for item in model.scan(attributes_to_get=attributes)
        }
        return {site_id: keys for site_id, keys in found.items() if keys is not None}

    def set_signing_keys(self, site_id: str, keys: SigningKeys, *, replacing: str | None) -> None:
        """Point the site at new signing keys, only if its current key id is still
        ``replacing`` (None: it has none): of two rotations at once, the second is refused
        (ConcurrentUpdate) rather than making the first's new secret, which someone was shown,
        the "previous" one of a secret nobody kept. Old keys stop verifying when the tracking
        functions read the site again (their site cache is dropped here only). NotFound when
        there is no such site: a key is never stored for a site no one registered."""
        model = self._tables.sites
        current = (
            model.signing_key_id.does_not_exist()
            if replacing is None
            else model.signing_key_id == replacing
        )
        previous = (
            [
                model.previous_signing_key_id.set(keys.previous_key_id),
                model.previous_signing_key_until.set(keys.previous_accepted_until),
            ]
            if keys.previous_key_id is not None and keys.previous_accepted_until is not None
            else [model.previous_signing_key_id.remove(), model.previous_signing_key_until.remove()]
        )
        try:
            model(site_id).update(
                actions=[
                    model.signing_key_id.set(keys.key_id),
                    model.signing_key_created_at.set(keys.created_at),
                    *previous,
                    model.updated_at.set(keys.created_at),
                ],
                condition=model.site_id.exists() & current,
            )
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            if get_or_none(model, site_id) is None:
                raise NotFound(f"no site with id {site_id!r}") from None
            raise ConcurrentUpdate(
                f"someone made a new signing secret for site {site_id!r} meanwhile:"
                " look at the site again before making another"
            ) from None
        forget_cached_site(self._tables.settings.sites_table, site_id)

    def list_revised(self) -> list[tuple[SiteDefinition, int]]:
        sites = [
            (SiteDefinition.model_validate(item.definition), revision_of(item))
            for item in self._tables.sites.scan()
        ]
        return sorted(sites, key=lambda found: found[0].site_id)

    def list(self) -> list[SiteDefinition]:
        return [site for site, _ in self.list_revised()]


def _signing_keys(item: SiteItem) -> SigningKeys | None:
    if item.signing_key_id is None:
        return None
    return SigningKeys(
        item.signing_key_id,
        item.signing_key_created_at or "",
        item.previous_signing_key_id,
        item.previous_signing_key_until,
    )
