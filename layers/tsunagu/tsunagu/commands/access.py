"""Who may do what: the roles, the caller, and the one table of operations and the roles each
is open to. Every use case names its operation; a front end never decides access itself.

The roles (seed 002: per-user permissions before MA goes live):

- ``admin``: everything, including users and settings;
- ``marketer``: leads, forms, sites, templates, journeys, segments, reports; not users;
- ``sales``: reads leads (each with its timeline and its score explained) and the hot list, sets
  stage and CRM status of the leads it owns - and reads nothing else: not the exclusion list
  (customers under contract, competitors), the suppression list (who complained or bounced), the
  imports (who loaded which file), the segments, journeys, mail, forms, sites, scoring rules,
  reports or the CRM pushes that failed (every owner's leads). A rep works on leads; the rest is
  marketing's, and least privilege keeps it there;
- ``viewer``: reads only (everything but users and the audit log).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from tsunagu.errors import Forbidden


class Role(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    SALES = "sales"
    VIEWER = "viewer"


EVERYONE = frozenset(Role)
MARKETING = frozenset({Role.ADMIN, Role.MARKETER})
READERS = frozenset({Role.ADMIN, Role.MARKETER, Role.VIEWER})
"""Who reads what marketing works with: everyone but sales, who reads leads only."""


@dataclass(frozen=True)
class Actor:
    """Who asks: a signed-in user of the admin API, or an operator at the CLI (who holds the
    stack's own credentials, so acts as ``admin`` and is recorded by IAM identity)."""

    user_id: str
    role: Role | None
    """None: a signed-in user in no group, who may do nothing (and is told why)."""
    email: str | None = None
    source_ip: str | None = None
    via: Literal["api", "cli"] = "cli"


@dataclass(frozen=True)
class Operation:
    name: str
    """``leads.update``: the audit log's and the API document's name for it."""
    roles: frozenset[Role]
    changes: bool
    """Whether it changes something: changes are recorded with their before and after."""
    own_leads_only: frozenset[Role] = frozenset()
    """Roles that may do it only on leads they own (``owner_email`` is theirs)."""
    audited: bool = False
    """A read recorded all the same: it takes personal data out of Tsunagu (an export)."""


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("leads.search", EVERYONE, changes=False),
        Operation("leads.reindex", frozenset({Role.ADMIN}), changes=True),
        Operation("leads.show", EVERYONE, changes=False),
        Operation("leads.timeline", EVERYONE, changes=False),
        Operation(
            "leads.update",
            frozenset({Role.ADMIN, Role.MARKETER, Role.SALES}),
            changes=True,
            own_leads_only=frozenset({Role.SALES}),
        ),
        Operation("leads.record_event", MARKETING, changes=True),
        Operation("leads.suppress", MARKETING, changes=True),
        Operation("leads.unsuppress", MARKETING, changes=True),
        Operation("suppressions.list", READERS, changes=False),
        # Every lead's address in one file: those who plan campaigns, and on the record.
        Operation("leads.export", MARKETING, changes=False, audited=True),
        Operation("segments.list", READERS, changes=False),
        Operation("segments.preview", READERS, changes=False),
        Operation("segments.save", MARKETING, changes=True),
        Operation("segments.delete", MARKETING, changes=True),
        Operation("imports.plan", MARKETING, changes=False),
        Operation("imports.list", READERS, changes=False),
        Operation("imports.run", MARKETING, changes=True),
        Operation("imports.undo", MARKETING, changes=True),
        Operation("imports.mappings", MARKETING, changes=True),
        Operation("journeys.list", READERS, changes=False),
        Operation("journeys.save", MARKETING, changes=True),
        Operation("journeys.start", MARKETING, changes=True),
        Operation("journeys.publish", MARKETING, changes=True),
        Operation("journeys.rollback", MARKETING, changes=True),
        Operation("journeys.set_status", MARKETING, changes=True),
        Operation("journeys.pause", MARKETING, changes=True),
        Operation("journeys.resume", MARKETING, changes=True),
        Operation("journeys.stop_all", MARKETING, changes=True),
        Operation("journeys.resume_all", MARKETING, changes=True),
        Operation("forms.list", READERS, changes=False),
        Operation("forms.save", MARKETING, changes=True),
        Operation("sites.list", READERS, changes=False),
        Operation("sites.save", MARKETING, changes=True),
        # A site's signing secret lets its server say what a person did: admins only.
        Operation("sites.rotate_secret", frozenset({Role.ADMIN}), changes=True),
        Operation("leads.score", EVERYONE, changes=False),
        Operation("leads.hot", EVERYONE, changes=False),
        Operation("crm.pushes", READERS, changes=False),
        Operation("templates.list", READERS, changes=False),
        Operation("exclusions.list", READERS, changes=False),
        Operation("exclusions.save", MARKETING, changes=True),
        Operation("templates.save", MARKETING, changes=True),
        Operation("templates.test_send", MARKETING, changes=True),
        Operation("qualification.show", READERS, changes=False),
        Operation("qualification.set", MARKETING, changes=True),
        Operation("reports.show", READERS, changes=False),
        Operation("reports.rebuild", frozenset({Role.ADMIN}), changes=True),
        Operation("reports.rebuilds", frozenset({Role.ADMIN}), changes=False),
        Operation("audit.list", frozenset({Role.ADMIN}), changes=False),
        Operation("users.list", frozenset({Role.ADMIN}), changes=False),
        Operation("users.save", frozenset({Role.ADMIN}), changes=True),
    )
}
"""The one permission table. A front end (CLI command, API route) names an operation here; a
test walks every operation with every role."""

SALES_MAY_CHANGE = frozenset({"stage", "crm_status"})
"""What ``sales`` may change on a lead it owns (stage and CRM status, nothing else)."""


def authorise(actor: Actor, name: str) -> Operation:
    """The operation, when the actor's role may do it at all; Forbidden otherwise."""
    found = OPERATIONS[name]
    if actor.role is None:
        raise Forbidden(
            "your user is in none of the groups admin, marketer, sales or viewer: "
            "ask an admin to add you to one"
        )
    if actor.role not in found.roles:
        raise Forbidden(f"the {actor.role} role may not {name}")
    return found
