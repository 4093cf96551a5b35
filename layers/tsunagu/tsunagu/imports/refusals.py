"""Why a list, its dry run, its column list, its run or a saved mapping is refused whole: each
problem a FieldError with a code that stays when the words change, the parameters a sentence
about it needs, and the English message the CLI and API clients have always read.

As with a row's rejection (tsunagu.imports.reasons), the code is what the reader's language is
chosen from: the console says it from ``errors.field_codes.<code>`` in its locales, with these
parameters (tests/static/test_console_locales.py holds both languages to REFUSAL_CODES and
REFUSAL_PARAMS). Every FieldError of the import path is made here, so that list is whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from tsunagu.errors import FieldError

RefusalCode = Literal[
    # reading the file (tsunagu.imports.reading)
    "encoding_not_detected",
    "not_in_encoding",
    "unknown_encoding",
    "old_workbook",
    "not_a_list",
    "too_many_columns",
    "no_header_row",
    "too_many_cells",
    "not_xlsx",
    "workbook_unreadable",
    "workbook_part_packing",
    "workbook_part_misplaced",
    "workbook_part_larger",
    "workbook_too_many_parts",
    "workbook_unpacks_too_large",
    "workbook_zip_bomb",
    "workbook_no_sheet",
    "workbook_no_visible_sheet",
    # the columns' fields (tsunagu.imports.mapping)
    "not_a_field_name",
    "reserved_field",
    "second_column_for",
    "no_email_column",
    "too_many_mapped_columns",
    "header_too_long",
    "field_name_too_long",
    "headers_too_long",
    # the consent column (tsunagu.imports.plan)
    "consent_answer_blank",
    "consent_yes_and_no",
    "reserved_topic",
    "no_consent_column",
    # a saved mapping (tsunagu.imports.saved) and the requests naming one
    "invalid_mapping_name",
    "unknown_source",
    "too_long",
    "too_many_answers",
    "consent_yes_missing",
    # the request's file (admin API, uploads)
    "not_base64",
    "invalid_file_name",
    "invalid_upload_id",
]
REFUSAL_CODES: tuple[RefusalCode, ...] = get_args(RefusalCode)
REFUSAL_PARAMS: Mapping[RefusalCode, tuple[str, ...]] = {
    "encoding_not_detected": (),
    # ``detail``: Python's words for the byte (English, "invalid start byte")
    "not_in_encoding": ("encoding", "byte", "detail"),
    "unknown_encoding": ("encoding", "known"),
    "old_workbook": (),
    "not_a_list": ("kind",),
    "too_many_columns": ("most",),
    "no_header_row": (),
    "too_many_cells": ("most",),
    # ``detail``: what the zip or XML reader said (English)
    "not_xlsx": ("detail",),
    "workbook_unreadable": ("detail",),
    "workbook_part_packing": ("part",),
    "workbook_part_misplaced": ("part",),
    "workbook_part_larger": ("part",),
    "workbook_too_many_parts": ("most",),
    "workbook_unpacks_too_large": ("megabytes", "most"),
    "workbook_zip_bomb": ("part", "ratio", "most"),
    "workbook_no_sheet": (),
    "workbook_no_visible_sheet": (),
    # ``header``: the column as the file (or mapping) spells it; ``name``: the field named
    "not_a_field_name": ("header", "name"),
    "reserved_field": ("header", "name"),
    "second_column_for": ("header", "name"),
    # ``headers``: the row read as the header, its first few cells; ``rows``: how far down
    # the header is looked for
    "no_email_column": ("headers", "rows"),
    "too_many_mapped_columns": ("most", "given"),
    "header_too_long": ("header", "most"),
    "field_name_too_long": ("header", "most"),
    "headers_too_long": ("chars", "most"),
    "consent_answer_blank": ("answer",),
    "consent_yes_and_no": ("answers",),
    "reserved_topic": ("topic",),
    "no_consent_column": ("column", "headers"),
    "invalid_mapping_name": ("name",),
    "unknown_source": ("source", "known"),
    "too_long": ("most",),
    "too_many_answers": ("most", "chars"),
    "consent_yes_missing": (),
    "not_base64": (),
    "invalid_file_name": ("name",),
    "invalid_upload_id": ("upload_id",),
}
"""Each code's parameters, by name: every refusal of that code has them all. None is named
``count``, which i18next reads as the number that picks a plural form."""


def refusal(field: str, code: RefusalCode, message: str, **params: Any) -> FieldError:
    """The problem with ``field``, said in English by ``message``; ``params`` are exactly the
    code's (REFUSAL_PARAMS), or this is the code's own mistake."""
    expected = set(REFUSAL_PARAMS[code])
    assert set(params) == expected, (code, sorted(params), sorted(expected))
    return FieldError(field, message, code, params)
