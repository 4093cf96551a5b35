"""Importing a lead list, as people do it: the dry run first (what each row would do), shared
by the CLI (``tsunagu imports plan``) and the admin API (``POST /admin/imports/plans``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tsunagu.clock import Clock
from tsunagu.commands.access import Actor
from tsunagu.commands.audit import AuditLog, allowed
from tsunagu.imports.plan import ImportOptions, ImportPlan, plan_import, rejected_file
from tsunagu.imports.reading import Table, read_table
from tsunagu.leads.email import normalise_email
from tsunagu.leads.model import Lead, email_identity


class LeadFinder(Protocol):
    def find_lead(self, identity: str) -> Lead | None: ...


@dataclass(frozen=True)
class ImportCommands:
    leads: LeadFinder
    audit: AuditLog
    clock: Clock


@dataclass(frozen=True)
class PlannedImport:
    table: Table
    plan: ImportPlan

    @property
    def rejected_file(self) -> bytes:
        return rejected_file(self.table, self.plan)

    def as_json(self, *, rows: int | None = None) -> dict[str, Any]:
        return {
            "encoding": self.plan.encoding,
            "source": self.plan.source.value,
            "columns": self.plan.columns,
            "unmapped": self.plan.unmapped,
            "counts": self.plan.counts,
            "rows": [
                {
                    "row": row.row,
                    "action": row.action,
                    "email": row.email,
                    "values": row.values,
                    "changes": {k: {"before": b, "after": a} for k, (b, a) in row.changes.items()},
                    "kept": {
                        k: {"kept": value, "source": source, "file": incoming}
                        for k, (value, source, incoming) in row.kept.items()
                    },
                    "consent": row.consent,
                    "reason": row.reason,
                    "into": row.into,
                }
                for row in self.plan.rows[:rows]
            ],
        }


def plan(
    ports: ImportCommands,
    actor: Actor,
    data: bytes,
    file_name: str,
    options: ImportOptions,
    *,
    encoding: str | None = None,
) -> PlannedImport:
    """The dry run of importing the file: nothing is written. ValidationFailed (with the
    field: encoding, file, mapping, consent_column) when the file cannot be read as a list."""
    allowed(ports.audit, ports.clock, actor, "imports.plan", f"file:{file_name}")
    table = read_table(data, file_name, encoding)

    def find(address: str) -> Lead | None:
        key = normalise_email(address).identity_key
        return ports.leads.find_lead(email_identity(key))

    return PlannedImport(table, plan_import(table, options, find))
