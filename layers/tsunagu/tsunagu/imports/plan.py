"""The dry run of an import: what each row would do, before anything is written.

Per row: **create** (a new lead), **update** (which fields change, and which a higher-ranked
source keeps - a trade-show list does not overwrite what the CRM or sales set), **unchanged**,
**merged** (a later row of an address the file has already: its values join that row's, the
later value winning), or **rejected** with the reason. The real run is to apply exactly this
plan; the rejected rows go back to the user as a file with the reason beside each (in their
language, from its code: tsunagu.imports.reasons), which imports again once fixed.

A consent column is read only with the meaning the user states for it (which answers say yes,
which say no): a row is opted in only when its answer is one of the yes values - a blank, or
anything else, never opts anyone in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Any, Literal

from tsunagu.errors import ValidationFailed
from tsunagu.imports import reasons
from tsunagu.imports.cleaning import BadValue, clean_value, company_key
from tsunagu.imports.mapping import ColumnMap, fold_header, map_columns
from tsunagu.imports.reading import Table
from tsunagu.imports.reasons import FILE_LANGUAGE, Language, Rejection, reasons_text
from tsunagu.imports.refusals import refusal
from tsunagu.leads.email import InvalidEmail, normalise_email
from tsunagu.leads.merge import DEFAULT_PRIORITY, Channel
from tsunagu.leads.model import Lead
from tsunagu.mail.consent import TopicConsent, named_topic
from tsunagu.text import spreadsheet_safe

REASON_HEADER = "取り込めなかった理由 (reason)"
"""The column the rejected-rows file adds; left out when that file is imported again."""
Action = Literal["create", "update", "unchanged", "merged", "rejected"]
ACTIONS: tuple[Action, ...] = ("create", "update", "unchanged", "merged", "rejected")


@dataclass(frozen=True)
class ConsentColumn:
    """What the user says a consent column means."""

    header: str
    yes: frozenset[str]
    """Answers that mean "yes, send me mail" (compared folded: 「希望する」, "Yes", "○")."""
    no: frozenset[str]
    """Answers that mean no (recorded as an opt-out); a blank says nothing."""
    topic: str = "marketing"

    def __post_init__(self) -> None:
        # Answers are compared folded (width, case, punctuation and spaces dropped): one that
        # folds to nothing ("-", "・") would match every blank cell, and opt in rows that said
        # nothing at all.
        problems = [
            refusal(
                f"consent_{side}",
                "consent_answer_blank",
                f"{answer!r} is blank once spaces and marks are dropped",
                answer=answer,
            )
            for side, answers in (("yes", self.yes), ("no", self.no))
            for answer in sorted(answers)
            if not fold_header(answer)
        ]
        both = {fold_header(a) for a in self.yes} & {fold_header(a) for a in self.no}
        if both:
            answers = ", ".join(sorted(both))
            message = f"{answers} cannot mean yes and no"
            problems.append(refusal("consent_no", "consent_yes_and_no", message, answers=answers))
        if problems:
            raise ValidationFailed(problems)

    @classmethod
    def asked(
        cls, header: str, yes: frozenset[str], no: frozenset[str], topic: str = "marketing"
    ) -> ConsentColumn:
        """The meaning a person gives now (the CLI's options, the admin API's body), refused on
        a topic no one may name ("all"), as a form's, a template's and a journey's are. A job or
        mapping stored before that rule is read back with the constructor, and still runs."""
        try:
            named_topic(topic)
        except ValueError as error:
            problem = refusal("consent_topic", "reserved_topic", str(error), topic=topic)
            raise ValidationFailed([problem]) from None
        return cls(header, yes, no, topic)


@dataclass(frozen=True)
class ImportOptions:
    source: Channel = Channel.IMPORT
    """What the file counts as when fields are merged (a trade-show list is not a CRM)."""
    mapping: Mapping[str, str] = field(default_factory=dict)
    """Header -> field, over the automatic mapping (``-`` leaves a column out)."""
    consent: ConsentColumn | None = None
    saved_encoding: str | None = None
    """A saved mapping's encoding: the file is read in it only where its bytes leave the
    encoding open (reading.read_table)."""


@dataclass(frozen=True)
class RowPlan:
    row: int
    """The row in the spreadsheet (the header is row 1)."""
    action: Action
    email: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    changes: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    """Field -> (value before, value after) for an update."""
    kept: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """Field -> (the value kept, its source, the file's value it keeps out)."""
    consent: Literal["yes", "no"] | None = None
    reason: str | None = None
    """Why the row is rejected, in English (as the CLI prints it)."""
    into: int | None = None
    """For a merged row: the row it joined."""
    consent_kept: str | None = None
    """Why the file's "yes" is not recorded: the lead has said no since (see rebased)."""
    consent_said: tuple[int, str] | None = None
    """The row that gave ``consent`` and its cell as written (``(14, "希望しない")``): the
    consent evidence quotes them, and a merged duplicate's answer is its own row's."""
    reason_code: str | None = None
    """Why the row is rejected, as a code (tsunagu.imports.reasons: None in a plan stored
    before codes, whose ``reason`` is then all there is)."""
    reason_params: dict[str, Any] = field(default_factory=dict)
    """What a sentence about ``reason_code`` needs: the column, the value as written..."""
    consent_disagreed: tuple[int, ...] = ()
    """The rows of this address whose answers disagreed (a yes and a no), when they did: the
    no counts, as it does against a lead's own "no" (_merged_consent)."""
    more_reasons: tuple[Rejection, ...] = ()
    """The row's other problems, after the first (``reason``): a row is rejected once for all
    it has wrong, so that fixing it once makes it import."""

    @classmethod
    def rejected(cls, row: int, rejection: Rejection, *more: Rejection) -> RowPlan:
        return cls(
            row,
            "rejected",
            reason=rejection.text,
            reason_code=rejection.code,
            reason_params=dict(rejection.params),
            more_reasons=more,
        )

    @property
    def reasons(self) -> list[tuple[str | None, Mapping[str, Any], str]]:
        """Every reason the row is rejected for, as (code, params, English text)."""
        first = (self.reason_code, self.reason_params, self.reason or "")
        return [first, *((more.code, more.params, more.text) for more in self.more_reasons)]


@dataclass(frozen=True)
class ImportPlan:
    encoding: str
    source: Channel
    columns: dict[str, str]
    """Header -> field, as the import reads the file."""
    unmapped: list[str]
    """The headers of the columns the import leaves out (not the consent column: it is read)."""
    rows: list[RowPlan]
    consent_column: str | None = None
    """The header of the column read as consent, as the file spells it."""

    def count(self, action: Action) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def counts(self) -> dict[str, int]:
        return {action: self.count(action) for action in ACTIONS}


OptedOut = Callable[[Sequence[str], str], Collection[str]]
"""The leads of these ids that said no to this topic or to all mail, or are suppressed."""
TooLarge = Callable[["RowPlan", Lead | None], Rejection | None]
"""Why a create or update row (against its lead as it is, None for a new one) cannot be
written: what it writes would pass one DynamoDB item (tsunagu.imports.apply.too_large)."""
ConsentNow = Callable[[Sequence[str], str], Mapping[str, TopicConsent]]
"""What the leads of these ids have said about this topic (a lead that said nothing left out)."""


def never_mapped(options: ImportOptions) -> list[str]:
    """The headers the aliases never map: our own reason column (a rejected-rows file brought
    back), and the consent column, read as consent whatever its header also names (「メール」
    = 可 / 不可 is an e-mail alias, and as one it would be a second e-mail column)."""
    return [REASON_HEADER, *([] if options.consent is None else [options.consent.header])]


def mapped_columns(header: Sequence[str], options: ImportOptions) -> ColumnMap:
    """Which field each column is read as (ValidationFailed when the mapping cannot be used):
    the dry run's and the console's column list's one rule."""
    return map_columns(header, options.mapping, ignore=never_mapped(options))


def plan_import(
    table: Table,
    options: ImportOptions,
    find_lead: Callable[[str], Lead | None],
    *,
    prefetch: Callable[[Sequence[str]], None] | None = None,
    consent_now: ConsentNow | None = None,
    too_large: TooLarge | None = None,
) -> ImportPlan:
    """``find_lead`` takes a cleaned address and answers its lead (or None); ``prefetch``, when
    given, is first handed every address it will be asked about (to read them in batches);
    ``consent_now`` is asked once, for the leads the file answers for: a yes is not recorded
    for one who has said no since (refusing_opt_in), and an answer the lead's topic holds
    already is no change (rebased) - so the same list imported again is unchanged, and the
    same plan cannot be applied twice. ``too_large`` rejects a row whose writes would not fit
    the store's items, rather than leave the run to fail on it."""
    columns = mapped_columns(table.header, options)
    consent_at = _consent_index(table, options.consent)
    first_of: dict[str, int] = {}
    """Identity key -> index in ``planned`` of the first row with that address."""
    planned: list[RowPlan] = []
    for number, cells in zip(table.row_numbers, table.rows, strict=True):
        if number in table.unreadable:  # its cells cannot be told apart for certain
            planned.append(RowPlan.rejected(number, table.unreadable[number]))
            continue
        row = _read_row(number, cells, table.header, columns, options.consent, consent_at)
        if row.action == "rejected" or row.email is None:
            planned.append(row)
            continue
        key = row.email.casefold()
        if key in first_of:
            at = first_of[key]
            earlier = planned[at]
            planned[at] = RowPlan(
                earlier.row,
                earlier.action,
                earlier.email,
                {**earlier.values, **row.values},
                **_merged_consent(earlier, row),
            )
            planned.append(RowPlan(number, "merged", row.email, row.values, into=earlier.row))
            continue
        first_of[key] = len(planned)
        planned.append(row)
    if prefetch is not None:
        prefetch([row.email for row in planned if row.action == "create" and row.email])
    against = {
        row.row: find_lead(row.email) for row in planned if row.action == "create" and row.email
    }
    said = _consent_now(planned, against, options, consent_now)
    said_no = {lead_id for lead_id, now in said.items() if now.refuses_opt_in}
    holds = {lead_id: now.status for lead_id, now in said.items() if now.status}
    rows = [
        rebased(
            _as_read(row, against[row.row], table.encoding),
            against[row.row],
            options.source,
            said_no,
            holds,
        )
        if row.row in against
        else row
        for row in planned
    ]
    if too_large is not None:
        rows = [_fitting(row, against.get(row.row), too_large) for row in rows]
    consent_header = None if consent_at is None else table.header[consent_at]
    return ImportPlan(
        table.encoding,
        options.source,
        {table.header[i]: f for i, f in sorted(columns.fields.items())},
        [title for title in columns.unmapped if title != consent_header],
        rows,
        consent_header,
    )


def _consent_index(table: Table, consent: ConsentColumn | None) -> int | None:
    if consent is None:
        return None
    wanted = fold_header(consent.header)
    for index, title in enumerate(table.header):
        if fold_header(title) == wanted:
            return index
    headers = ", ".join(table.header)
    message = f"no column {consent.header!r} in the file ({headers})"
    problem = refusal(
        "consent_column", "no_consent_column", message, column=consent.header, headers=headers
    )
    raise ValidationFailed([problem])


def _read_row(
    number: int,
    cells: list[str],
    header: list[str],
    columns: ColumnMap,
    consent: ConsentColumn | None,
    consent_at: int | None,
) -> RowPlan:
    """The row's cleaned values, or its rejection with every problem it has: a person fixes the
    row once (a wrong weekday must not hide an unknown consent answer until the next import)."""
    problems: list[Rejection] = []
    values: dict[str, str] = {}
    for i, f in columns.fields.items():
        try:
            values[f] = clean_value(f, cells[i])
        except BadValue as error:
            params = {"column": header[i], "field": f, **error.params}
            problems.append(Rejection(error.code, params, str(error)))
    email_column = columns.header_of("email", header) or "email"
    email_unclean = any(problem.params.get("field") == "email" for problem in problems)
    raw_email = values.pop("email", "")
    address = ""
    if email_unclean:
        pass  # said above: what the cell holds is not an address to check
    elif not raw_email:
        problems.append(reasons.missing_email(email_column))
    else:
        try:
            address = normalise_email(raw_email).address
        except InvalidEmail as error:
            problems.append(reasons.invalid_email(email_column, raw_email, str(error)))
    last, first = values.pop("last_name", ""), values.pop("first_name", "")
    if not values.get("name") and (last or first):
        values["name"] = f"{last} {first}".strip()
    answer: Literal["yes", "no"] | None = None
    said_as: tuple[int, str] | None = None
    if consent is not None and consent_at is not None:
        said = fold_header(cells[consent_at])
        if not said:
            pass  # a blank (or a lone mark) says nothing
        elif said in {fold_header(v) for v in consent.yes}:
            answer = "yes"
        elif said in {fold_header(v) for v in consent.no}:
            answer = "no"
        else:
            column, value = header[consent_at], cells[consent_at]
            problems.append(
                reasons.unknown_consent(column, value, list(consent.yes), list(consent.no))
            )
        if answer is not None:
            said_as = (number, cells[consent_at].strip())
    if problems:
        return RowPlan.rejected(number, *problems)
    return RowPlan(
        number,
        "create",
        address,
        {k: v for k, v in values.items() if v},
        consent=answer,
        consent_said=said_as,
    )


def _fitting(row: RowPlan, lead: Lead | None, too_large: TooLarge) -> RowPlan:
    if row.action not in ("create", "update"):
        return row
    rejection = too_large(row, lead)
    return row if rejection is None else RowPlan.rejected(row.row, rejection)


def _merged_consent(earlier: RowPlan, later: RowPlan) -> dict[str, Any]:
    """The consent of two rows of one address: one answer, or none, is that answer; a yes and
    a no disagree, and the no counts (which row came later says nothing of which the person
    meant: a "no" always counts, as against a lead's stored one), the rows named."""
    if later.consent is None or later.consent == earlier.consent:
        kept = earlier if later.consent is None else later
        return {
            "consent": kept.consent,
            "consent_said": kept.consent_said,
            "consent_disagreed": earlier.consent_disagreed,
        }
    if earlier.consent is None:
        return {"consent": later.consent, "consent_said": later.consent_said}
    said_no = earlier if earlier.consent == "no" else later
    rows = {*earlier.consent_disagreed}
    rows.update(r.consent_said[0] if r.consent_said else r.row for r in (earlier, later))
    return {
        "consent": "no",
        "consent_said": said_no.consent_said,
        "consent_disagreed": tuple(sorted(rows)),
    }


def _consent_now(
    rows: Sequence[RowPlan],
    leads: Mapping[int, Lead | None],
    options: ImportOptions,
    consent_now: ConsentNow | None,
) -> Mapping[str, TopicConsent]:
    """What the existing leads the file answers for have said about its topic (row -> lead in
    ``leads``): one batched read for every answer."""
    answering = [
        lead.lead_id
        for row in rows
        if row.consent is not None and (lead := leads.get(row.row)) is not None
    ]
    if not answering or consent_now is None or options.consent is None:
        return {}
    return consent_now(answering, options.consent.topic)


def refusing_opt_in(
    rows: Sequence[RowPlan],
    leads: Mapping[int, Lead | None],
    options: ImportOptions,
    opted_out: OptedOut | None,
) -> Collection[str]:
    """The existing leads the file says "yes" for that have said no since, or are suppressed
    (``leads``: row -> the lead it is about)."""
    asking = [
        lead.lead_id
        for row in rows
        if row.consent == "yes" and (lead := leads.get(row.row)) is not None
    ]
    if not asking or opted_out is None or options.consent is None:
        return frozenset()
    return opted_out(asking, options.consent.topic)


def rebased(
    row: RowPlan,
    lead: Lead | None,
    source: Channel,
    said_no: Collection[str] = (),
    holds: Mapping[str, str] | None = None,
) -> RowPlan:
    """The row's values (as the file has them) planned against ``lead`` as it is now: a field
    changes where the file's source ranks at least as high as the value's, and is kept
    otherwise. The plan uses it, and so does the run on the lead it reads again when the lead
    changed meanwhile - a trade-show list never overwrites what sales set a moment ago.

    A "yes" for a lead in ``said_no`` is not recorded (``consent_kept`` says why): a sheet's
    tick may be months old, and the person's later unsubscribe or complaint is their latest
    word; only they can opt in again (a form, the preferences page). A "no" always counts.

    An answer the lead's topic already holds (``holds``: lead id -> its topic's status) is no
    change, and not recorded again: a yes for a lead opted in, a no for one opted out."""
    assert row.email is not None
    if lead is None:
        return replace(row, action="create", changes={}, kept={})
    changes: dict[str, tuple[str | None, str]] = {}
    kept: dict[str, tuple[str, str, str]] = {}
    for name, value in row.values.items():
        current = lead.fields.get(name)
        if current is not None and _same(name, current.value, value):
            continue
        if current is None or DEFAULT_PRIORITY[source] >= DEFAULT_PRIORITY[current.source]:
            changes[name] = (None if current is None else current.value, value)
        else:
            kept[name] = (current.value, current.source.value, value)
    consent, consent_kept = row.consent, row.consent_kept
    if consent == "yes" and lead.lead_id in said_no:
        consent, consent_kept = None, "has opted out or is suppressed: only they can opt in again"
    held = (holds or {}).get(lead.lead_id)
    if consent is not None and held == ("opted_in" if consent == "yes" else "opted_out"):
        consent = None
    action: Action = "update" if changes or consent else "unchanged"
    return RowPlan(
        row.row,
        action,
        lead.email,
        row.values,
        changes,
        kept,
        consent=consent,
        consent_kept=consent_kept,
        consent_said=row.consent_said if consent else None,
        consent_disagreed=row.consent_disagreed,
    )


LOSSY_ENCODINGS = ("cp932",)
"""What a file read in one of these cannot hold was written ``?`` (tsunagu.leads.export: cp932
has no 𠮷 nor emoji); shift_jis is read as cp932 (tsunagu.imports.reading)."""


def _as_read(row: RowPlan, lead: Lead | None, encoding: str) -> RowPlan:
    """The row without the cells that hold the lead's value as the file's encoding had to write
    it (``?田 太郎`` for ``𠮷田 太郎``): a cp932 export, fixed in Excel and imported back, would
    otherwise overwrite every such name with its question marks. A cell someone changed keeps
    what they changed, and gets back the characters written as ``?`` where the text around them
    is as exported (``?田 次郎?`` is ``𠮷田 次郎😀``; ``吉田 太郎``, its ``?`` typed over, is as
    written). Left out of the row's values, or put back, the cell is not written with its
    question marks by the run either, which plans each row again from them."""
    codec = encoding.split(",")[0].strip()
    if lead is None or codec not in LOSSY_ENCODINGS:
        return row
    values = dict(row.values)
    for name, value in row.values.items():
        held = lead.fields.get(name)
        if held is None:
            continue
        written = held.value.encode(codec, errors="replace").decode(codec)
        if written == held.value:
            continue
        if _same(name, written, value):
            del values[name]
        else:
            values[name] = _put_back(held.value, written, value)
    return row if values == row.values else replace(row, values=values)


def _put_back(stored: str, written: str, incoming: str) -> str:
    """``incoming`` (a cell of ``written``, the lossy encoding's copy of ``stored``, edited) with
    the stored text where it is unchanged: the encoding wrote one ``?`` per character it has no
    code for, so ``written`` and ``stored`` match character for character."""
    parts = SequenceMatcher(None, written, incoming, autojunk=False).get_opcodes()
    return "".join(
        stored[i1:i2] if tag == "equal" else incoming[j1:j2] for tag, i1, i2, j1, j2 in parts
    )


def _same(name: str, stored: str, incoming: str) -> bool:
    if name == "company":
        return company_key(stored) == company_key(incoming)
    return stored.strip() == incoming.strip()


def rejected_file(table: Table, plan: ImportPlan, language: Language = FILE_LANGUAGE) -> bytes:
    """The rejected rows as they were, the reason in an added column (after a row's last cell
    when it has more than the header; in its own column when the file is a rejected-rows file
    already), in ``language``: UTF-8
    with a BOM (Excel opens it as it should), importable again once fixed (the reason column is
    left out). Formula-like cells are guarded as every export's are (a text cell of a workbook
    would otherwise become a live formula in the file Tsunagu hands back); the import reads
    them as they were."""
    said = {
        row.row: reasons_text(row.reasons, language)
        for row in plan.rows
        if row.action == "rejected"
    }
    # A rejected-rows file rejected again (a row still wrong once fixed) keeps its one reason
    # column, with the reason of now in it: a second column of the same header would leave
    # the first saying what was fixed
    again = table.header.index(REASON_HEADER) if REASON_HEADER in table.header else None
    header = [*table.header] if again is not None else [*table.header, REASON_HEADER]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(cell) for cell in header])
    for number, cells in zip(table.row_numbers, table.rows, strict=True):
        if number not in said:
            continue
        if again is not None and number not in table.wider:
            written = [*cells, *[""] * (again + 1 - len(cells))]
            written[again] = said[number]
        else:
            # A row with more cells than the header (an unquoted comma moved its values right)
            # comes back whole, the reason after its last cell: fixed, nothing is lost
            written = [*table.wider.get(number, cells), said[number]]
        writer.writerow([spreadsheet_safe(cell) for cell in written])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
