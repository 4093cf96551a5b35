"""Leads as a CSV file people open in Excel: UTF-8 with a BOM (Excel then reads Japanese text
as it should), or cp932 for the older Excel that still asks for Shift_JIS. The header names
are the field names the importer recognises (tsunagu.imports.mapping), so an exported file can
be fixed and imported back.

A cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return
first) is prefixed with ``'``: a lead who typed ``=HYPERLINK(...)`` as a company gets text, not
a link, on the marketer's machine. A character cp932 has no code for (絵文字, 𠮷) becomes ``?``,
and the export says how many did.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tsunagu.leads.model import LEAD_ATTRIBUTES, Lead
from tsunagu.text import spreadsheet_safe

ExportEncoding = Literal["utf-8", "cp932"]
ENCODINGS: tuple[ExportEncoding, ...] = ("utf-8", "cp932")
FIELDS = (
    "name",
    "last_name",
    "first_name",
    "name_kana",
    "company",
    "department",
    "job_title",
    "phone",
    "postal_code",
    "prefecture",
    "address",
    "country",
    "industry",
    "company_size",
    "owner_email",
)
"""Lead fields in the order people expect them; any other field a lead has follows, by name."""
LEAD_COLUMNS = LEAD_ATTRIBUTES


@dataclass(frozen=True)
class ExportedLeads:
    data: bytes
    rows: int
    encoding: ExportEncoding
    replaced: int
    """Characters the encoding has no code for, written as ``?`` (cp932 only)."""


def export_leads(leads: Iterable[Lead], encoding: ExportEncoding = "utf-8") -> ExportedLeads:
    chosen = list(leads)
    present = {name for lead in chosen for name in lead.fields}
    fields = [f for f in FIELDS if f in present] + sorted(present - set(FIELDS))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["email", *fields, *LEAD_COLUMNS])
    for lead in chosen:
        values = [
            lead.email,
            *(str(lead.fields[f].value) if f in lead.fields else "" for f in fields),
            lead.stage,
            "" if lead.score is None else f"{lead.score:g}",
            lead.grade or "",
            lead.crm_status or "",
            ";".join(sorted(lead.tags)),
            ";".join(lead.sources),
            lead.created_at,
            lead.last_activity_at or "",
            lead.lead_id,
        ]
        writer.writerow([spreadsheet_safe(value) for value in values])
    text = buffer.getvalue()
    if encoding == "utf-8":
        return ExportedLeads(("\ufeff" + text).encode("utf-8"), len(chosen), encoding, 0)
    data = text.encode("cp932", errors="replace")
    replaced = data.count(b"?") - text.count("?")
    return ExportedLeads(data, len(chosen), encoding, replaced)
