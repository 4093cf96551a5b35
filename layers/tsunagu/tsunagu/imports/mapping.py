"""Which column is which lead field, from the header as people write it in
Japanese or English (メールアドレス, 氏名 / 姓 / 名, 会社名, 部署, 役職,
電話番号, 住所, 都道府県...). A header is compared folded (NFKC, case, spaces,
「・」 and punctuation dropped), so 「Ｅメール」, "E-mail" and "email address"
are one. What no alias names is left out and reported; the user may name any
column's field instead (a mapping saved per source is such a list)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tsunagu.errors import FieldError, ValidationFailed
from tsunagu.imports.refusals import refusal
from tsunagu.leads.model import RESERVED_FIELD_NAMES

ALIASES: Mapping[str, tuple[str, ...]] = {
    "email": ("メールアドレス", "メール", "eメール", "eメールアドレス", "email", "e-mail",
              "emailaddress", "mail", "mailaddress", "メアド"),
    "name": ("氏名", "名前", "お名前", "フルネーム", "name", "fullname", "担当者名", "ご担当者名"),
    "last_name": ("姓", "苗字", "名字", "lastname", "familyname", "surname"),
    "first_name": ("名", "firstname", "givenname"),
    "name_kana": ("フリガナ", "ふりがな", "氏名カナ", "氏名(カナ)", "カナ", "kana", "namekana"),
    "company": ("会社名", "企業名", "社名", "会社", "法人名", "勤務先", "company", "companyname",
                "organization", "organisation"),
    "department": ("部署", "部署名", "所属", "所属部署", "部門", "department", "dept", "division"),
    "job_title": ("役職", "役職名", "肩書", "肩書き", "title", "jobtitle", "position"),
    "phone": ("電話番号", "電話", "tel", "phone", "phonenumber", "telephone", "携帯電話", "携帯"),
    "postal_code": ("郵便番号", "〒", "zip", "zipcode", "postalcode", "postcode"),
    "prefecture": ("都道府県", "prefecture", "state", "region"),
    "address": ("住所", "所在地", "address", "streetaddress"),
    "country": ("国", "国名", "country"),
    "company_size": ("従業員数", "社員数", "企業規模", "companysize", "employees"),
    "industry": ("業種", "業界", "industry"),
    "visited_on": ("来場日", "来場日時", "visitdate", "visitedon"),
    "met_on": ("名刺交換日", "交換日", "metdate", "meton"),
}  # fmt: skip
"""Lead field -> the headers (folded) that name it."""

HEADER_ROWS = 10
"""How far down a file its header is looked for: a title, a date and a note or two may stand
above it (「展示会来場者リスト 2026」), as Japanese sheets often have them."""
FIELD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_HEADER_CHARS = 200
"""A header a mapping names (a form's question as its header can be long: 「今後のご案内メール
の配信を希望されますか」)."""
MAX_FIELD_CHARS = 40
"""A field's name (``FIELD``), or ``-``."""
MAX_SAVED_HEADER_CHARS = 10_000
"""What a saved mapping's headers may come to, together. Saving one writes an audit entry
holding each header before and after - a mapping replaced by another, both sides of both -
JSON-escaped at six bytes a Japanese character: 10,000 characters take about 250 KB there of
the 400 KB a DynamoDB item holds (the mapping's own item, unescaped, 30 KB). That is 200 short
headers or 50 of the longest; a dry run's mapping, kept nowhere, is not held to it."""


def oversized_mapping(
    columns: Mapping[str, str], *, most: int, most_chars: int | None = None, field: str = "columns"
) -> FieldError | None:
    """Why a header -> field mapping is too large to take (more than ``most`` columns, a
    header or a field too long, headers of more than ``most_chars`` together), as a problem
    with ``field``, or None. A header is clipped in the answer: a 400 KB header is not sent
    back."""
    if len(columns) > most:
        message = f"at most {most} columns, not {len(columns)}"
        return refusal(field, "too_many_mapped_columns", message, most=most, given=len(columns))
    for header, target in columns.items():
        clipped = _clipped(header)
        if len(header) > MAX_HEADER_CHARS:
            message = f"the header {clipped!r} is longer than {MAX_HEADER_CHARS} characters"
            return refusal(field, "header_too_long", message, header=clipped, most=MAX_HEADER_CHARS)
        if len(target) > MAX_FIELD_CHARS:
            message = f"the field for {clipped!r} is longer than {MAX_FIELD_CHARS} characters"
            return refusal(
                field, "field_name_too_long", message, header=clipped, most=MAX_FIELD_CHARS
            )
    together = sum(len(header) for header in columns)
    if most_chars is not None and together > most_chars:
        message = f"the headers come to {together:,} characters, more than {most_chars:,}"
        return refusal(field, "headers_too_long", message, chars=together, most=most_chars)
    return None


def _clipped(header: str) -> str:
    return header if len(header) <= 40 else header[:40] + "…"


_DROPPED = re.compile(r"[\s_\-・.:：()（）]+")


def fold_header(text: str) -> str:
    return _DROPPED.sub("", unicodedata.normalize("NFKC", text).casefold())


_BY_HEADER = {fold_header(alias): field for field, aliases in ALIASES.items() for alias in aliases}


@dataclass(frozen=True)
class ColumnMap:
    fields: dict[int, str]
    """Column index -> lead field."""
    unmapped: list[str]
    """Headers of the columns no field takes (left out of the import)."""

    def header_of(self, field: str, header: Sequence[str]) -> str | None:
        return next((header[i] for i, f in self.fields.items() if f == field), None)


def fields_named(
    given: Mapping[str, str] | None, ignore: Sequence[str]
) -> Callable[[str], str | None]:
    """A header's field: the user's own mapping first (header -> field, or ``-`` to leave it
    out), then the aliases (for a header not in ``ignore``)."""
    folded = {fold_header(h): f for h, f in (given or {}).items()}
    ignored = {fold_header(h) for h in ignore}

    def field_of(title: str) -> str | None:
        key = fold_header(title)
        return folded.get(key) or (None if key in ignored else _BY_HEADER.get(key))

    return field_of


def names_email(header: Sequence[str], given: Mapping[str, str] | None = None) -> bool:
    """Whether a column of this row is the e-mail address, as map_columns would read it (how
    the reader tells a list's header from a title row above it)."""
    field_of = fields_named(given, ())
    return any(field_of(title) == "email" for title in header if title)


def map_columns(
    header: Sequence[str], given: Mapping[str, str] | None = None, *, ignore: Sequence[str] = ()
) -> ColumnMap:
    """Each column's field: the user's own mapping first (header -> field, or ``-`` to leave
    it out), then the aliases. A field two columns claim, or no e-mail column, is refused."""
    field_of = fields_named(given, ignore)
    fields: dict[int, str] = {}
    unmapped: list[str] = []
    problems: list[FieldError] = []
    for index, title in enumerate(header):
        field = field_of(title)
        if field is None or field == "-":
            if title:
                unmapped.append(title)
            continue
        if not FIELD.match(field):
            message = f"{field!r} is not a field name"
            problems.append(
                refusal(f"mapping.{title}", "not_a_field_name", message, header=title, name=field)
            )
            continue
        if field != "email" and field in RESERVED_FIELD_NAMES:
            # The lead's own (stage, score...): an exported file's columns, left out unless
            # the user maps one; as a field it would stand beside the lead's own value
            message = f"{field} is the lead's own, not a field"
            problems.append(
                refusal(f"mapping.{title}", "reserved_field", message, header=title, name=field)
            )
            continue
        if field in fields.values():
            message = f"a second column for {field}"
            problems.append(
                refusal(f"mapping.{title}", "second_column_for", message, header=title, name=field)
            )
            continue
        fields[index] = field
    if "email" not in fields.values():
        problems.append(_no_email_column(header))
    if problems:
        raise ValidationFailed(problems)
    return ColumnMap(fields, unmapped)


HEADERS_NAMED = 5
"""A refused header's cells named in the refusal, at most."""


def _no_email_column(header: Sequence[str]) -> FieldError:
    """Why a header is refused, naming the row that was read as it: when no row the reader
    looked at names an e-mail column, what it read is the first row with anything in it (a
    title 「展示会来場者リスト」, perhaps), and the person sees that rather than the header
    they meant."""
    titles = [_clipped(title) for title in header if title]
    named = ", ".join(titles[:HEADERS_NAMED]) + (", …" if len(titles) > HEADERS_NAMED else "")
    message = (
        f"no column of the row read as the header ({named}) is the e-mail address: name one"
        f" (列名=email); the header is looked for in the first {HEADER_ROWS} rows"
    )
    return refusal("mapping", "no_email_column", message, headers=named, rows=HEADER_ROWS)
