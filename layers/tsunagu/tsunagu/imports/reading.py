"""A CSV, TSV or Excel (.xlsx) file's bytes to rows: the encoding found (or given), the
delimiter, the header.

Excel saves a Japanese sheet as cp932 ("CSV"), as UTF-8 with a BOM ("CSV UTF-8"), or as UTF-16
with tabs ("Unicode text"); Google Sheets and most tools as UTF-8 without a BOM. The order of
trying follows from what can be told apart for certain: a BOM says it outright; text that
decodes as UTF-8 is UTF-8 (cp932 text with kanji or kana in it almost never does), unless it
also decodes as cp932 and reads as half-width katakana there (below); then cp932, which is
Shift_JIS as Windows writes it (①, ㈱, 髙 included). Anything else is refused with the
encodings tried, and the user may name the encoding instead; a source's saved mapping may keep
one, which is read only where the bytes leave it open (``read_table``'s ``saved_encoding``).

The header is the first of the first rows with an e-mail column (a title row may stand above
it), and a header that repeats an earlier one is told apart by its place (``電話番号 (2)``).

An .xlsx workbook is read with openpyxl (the sheet it opens on, else its first visible one: a
hidden sheet is a template or a lookup, not the list; formulas as the values Excel last
computed, never run), its XML through defusedxml. A date cell becomes ``2026-12-04`` (with the
time when it has one), a whole number ``42`` rather than ``42.0`` - or as its number format
shows it when that only pads and punctuates digits (``000-0000``: 060-0001); an empty cell is
blank.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from tsunagu.errors import ValidationFailed
from tsunagu.imports import reasons
from tsunagu.imports.mapping import HEADER_ROWS, fold_header, names_email
from tsunagu.imports.reasons import Rejection
from tsunagu.imports.refusals import RefusalCode, refusal
from tsunagu.text import has_control_characters

if TYPE_CHECKING:
    import zipfile

ENCODINGS = ("utf-8", "utf-8-sig", "cp932", "utf-16")
"""What a user may name (``--encoding``); ``shift_jis`` is read as cp932."""
MAX_COLUMNS = 200
UNREADABLE = "the file is not UTF-8, UTF-16 or Shift_JIS (cp932): name its encoding"
OLD_WORKBOOK_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""How an OLE2 compound file starts: Excel 97-2003's .xls, and Excel's workbooks saved with a
password (an encrypted .xlsx is such a file too, not a zip)."""
OLD_WORKBOOK = (
    "an Excel 97-2003 workbook (.xls), or a workbook saved with a password, cannot be read:"
    " save it as .xlsx (without a password) or as CSV"
)


@dataclass(frozen=True)
class Table:
    encoding: str
    """As found or given: utf-8, utf-8-sig (UTF-8 with a BOM), cp932 or utf-16; for a workbook,
    which sheet was read: ``xlsx, sheet '来場者' (not read: '見本' (hidden))``; and the row read
    as the header when it is not the first: ``cp932, header on row 3``."""
    delimiter: str
    header: list[str]
    rows: list[list[str]]
    """Each row's cells, as many as the header (short rows padded, blank rows left out)."""
    row_numbers: list[int]
    """Each row's line in the file as a spreadsheet counts it (the header is row 1)."""
    sheet: str | None = None
    """A workbook's sheet that was read (``encoding`` names it too, and the others)."""
    other_sheets: tuple[str, ...] = ()
    """The names of the workbook's other sheets, not read."""
    unreadable: Mapping[int, Rejection] = field(default_factory=dict)
    """Rows (by row number) the file does not say for certain how to cut into cells - more
    values than the header has columns, a quote that does not close - and why: the plan
    rejects them with that reason, and they go to the rejected rows as they were read."""
    wider: Mapping[int, list[str]] = field(default_factory=dict)
    """Of those, the rows (by row number) with more cells than the header, every cell as read:
    ``rows`` holds them cut to the header's width, and the rejected rows' file gives them back
    whole (``ABC, Inc.`` split by its comma loses no `` Inc.``: fixed, it imports whole)."""


def detect_encoding(data: bytes, fallback: str | None = None) -> str:
    """The file's encoding as its bytes say it; ``fallback`` (a saved mapping's) when they do
    not decide it (``_undecided``) and it reads them."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    text = _decoded(data, "utf-8")
    if fallback is not None and _undecided(data, text) and _decoded(data, fallback) is not None:
        return "utf-8" if fallback == "utf-8-sig" else fallback  # no BOM: plain UTF-8
    if text is not None and (text.isascii() or not _half_width_kana_read_as_utf8(text)):
        return "utf-8"
    try:
        data.decode("cp932")
    except UnicodeDecodeError:
        if text is not None:
            return "utf-8"
        raise ValidationFailed([refusal("encoding", "encoding_not_detected", UNREADABLE)]) from None
    return "cp932"


def _decoded(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _undecided(data: bytes, text: str | None) -> bool:
    """Whether the bytes leave the encoding open (``text``: them as UTF-8, None when they are
    not): a BOM decides, and so do bytes that are UTF-8 only, cp932 only, or UTF-8 holding
    anything past U+07FF (kana and kanji; cp932 text almost never reads so). Left open: bytes both
    read that hold only such two-byte characters (half-width katakana in cp932, or accented
    Latin in UTF-8: detect_encoding guesses by votes), bytes neither reads, and bytes with NUL
    in them (UTF-16 without its BOM, where ASCII reads as every other byte NUL)."""
    if b"\x00" in data:
        return True
    if text is None:
        return _decoded(data, "cp932") is None
    return not text.isascii() and max(text) <= "\u07ff" and _decoded(data, "cp932") is not None


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_HALF_WIDTH_KATAKANA = re.compile(r"[\uff61-\uff9f]+")
"""｡ to ﾟ: one byte each in cp932 (0xA1 to 0xDF)."""


def _half_width_kana_read_as_utf8(text: str) -> bool:
    """Whether text that decodes as UTF-8 reads better as cp932 half-width katakana.

    A pair of half-width katakana is one byte from 0xC2-0xDF and one from 0xA1-0xBF in cp932,
    and that is also a two-byte UTF-8 character: ﾃｽ (C3 BD) is ý, ﾌｼﾞｲ is a lone combining
    mark and a Thaana letter. A short cp932 list whose only Japanese is half-width kana (a
    フリガナ column) so decodes as UTF-8 into Latin, Greek, Cyrillic... mojibake. Each run of
    non-ASCII characters votes: for cp932 when it has a letter or mark, stands apart from
    ASCII letters, and is all half-width katakana in cp932; for UTF-8 otherwise - an accented
    letter inside a word (José, Müller) is UTF-8's, and so is anything past U+07FF (kana and
    kanji in UTF-8), which no katakana pair makes. A run of symbols only (¥, °, ©) says
    nothing either way."""
    votes = 0
    for run in _NON_ASCII.finditer(text):
        found = run.group()
        if max(found) > "\u07ff":
            votes -= 1
            continue
        if all(unicodedata.category(char)[0] in "SPNZC" for char in found):
            continue
        before = text[run.start() - 1] if run.start() else ""
        after = text[run.end()] if run.end() < len(text) else ""
        in_a_word = any(char.isascii() and char.isalpha() for char in before + after)
        try:
            as_cp932 = found.encode("utf-8").decode("cp932")
        except UnicodeDecodeError:
            as_cp932 = ""
        votes += 1 if not in_a_word and _HALF_WIDTH_KATAKANA.fullmatch(as_cp932) else -1
    return votes > 0


XLSX_MAGIC = b"PK\x03\x04"
NOT_A_LIST: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"%!PS", "PostScript"),
    (b"{\\rtf", "RTF"),
)
"""How files people send instead of a list start (a scan of the visitor cards, the sheet
printed to PDF): said for what they are, rather than as text of an unknown encoding."""
MAX_XLSX_CELLS = 5_000_000
"""A sheet larger than this is refused rather than read (a zip expands many times over)."""
MAX_XLSX_UNPACKED_BYTES = 128 * 1024 * 1024
"""What a workbook's parts may unpack to, all together. openpyxl holds a part it reads whole
(the shared strings: every distinct text in the workbook) at about twice its size - a 311 KB
file whose one shared string unpacks to 300 MB took 631 MB - and the admin API's function has
512 MB. A real list stays far below: 100,000 rows of ten lead fields unpack to about 64 MB even
with every text inline in the sheet (Excel shares them, smaller still); a larger list is a CSV."""
MAX_XLSX_RATIO = 100
"""How many times its packed size a part may unpack to. Sheet XML packs 5 to 20 times (the
100,000-row sheet above: 11); a zip bomb packs a thousand times. Apache POI's reader refuses at
the same ratio (its ZipSecureFile's default minimum inflate ratio, 0.01)."""
XLSX_RATIO_FROM_BYTES = 1024 * 1024
"""Parts smaller than this are not held to the ratio: a tiny part of repeated markup may pack
better than 100 to 1, and cannot hurt at that size."""
MAX_XLSX_PARTS = 1_000
"""A workbook is a few parts per sheet; a zip of a million empty entries would cost gigabytes
as zipfile's entries before any check on their sizes could run."""


def named_list(file_name: str) -> str:
    """``file_name`` as a list's name may be: a name of a file (no folder in it), at most 200
    characters, one line with no control character (tsunagu.text) and storable as UTF-8 - it
    is stored with the import and shown to everyone who lists imports, reads the audit log or
    is sent its rejected rows, in a terminal too, where an escape sequence would clear the
    screen or forge a line. A full-width space, as in 「展示会　名簿.csv」, is a name's.
    ValidationFailed (``file_name``: invalid_file_name) otherwise."""
    if not (0 < len(file_name) <= 200 and "/" not in file_name and "\\" not in file_name
            and not has_control_characters(file_name) and _utf8(file_name)):  # fmt: skip
        message = f"{file_name!r}: a file's name (printable, no folder)"
        raise ValidationFailed([refusal("file_name", "invalid_file_name", message, name=file_name)])
    return file_name


def _utf8(text: str) -> bool:
    """No lone surrogate (a JSON body may carry one escaped): it can be no S3 key."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_table(
    data: bytes,
    file_name: str,
    encoding: str | None = None,
    *,
    saved_encoding: str | None = None,
    mapping: Mapping[str, str] | None = None,
) -> Table:
    """The file's rows under its header; ValidationFailed (field ``encoding`` or ``file``)
    when it cannot be read as a table. ``encoding``: one named for this file, read in whatever
    the file says. ``saved_encoding``: a saved mapping's, read only where the bytes leave the
    encoding open - never over a BOM, since the same source's next file may come another way:
    above all the rejected rows Tsunagu hands back (UTF-8 with a BOM), fixed and imported again
    with the source's cp932 mapping. ``mapping``: the columns' fields the plan will read it
    with (header -> field), which tell the header among the first rows when an e-mail column's
    header is no alias."""
    if data.startswith(OLD_WORKBOOK_MAGIC):
        raise ValidationFailed([refusal("file", "old_workbook", OLD_WORKBOOK)])
    if kind := next((kind for magic, kind in NOT_A_LIST if data.startswith(magic)), None):
        message = f"the file is a {kind} file, not a list: save the sheet as CSV, TSV or .xlsx"
        raise ValidationFailed([refusal("file", "not_a_list", message, kind=kind)])
    if file_name.lower().endswith(".xlsx") or data.startswith(XLSX_MAGIC):
        lines, sheet, others = _xlsx_lines(data)
        names = tuple(name for name, _ in others)
        return _table(_sheet_report(sheet, others), "", lines, sheet, names, mapping=mapping)
    if encoding is not None:
        found = _known_encoding(encoding)
    else:
        fallback = None if saved_encoding is None else _known_encoding(saved_encoding)
        found = detect_encoding(data, fallback)
    try:
        text = data.decode(found)
    except UnicodeDecodeError as error:
        problem = refusal(
            "encoding",
            "not_in_encoding",
            f"the file is not {found}: {error.reason} at byte {error.start}",
            encoding=found,
            byte=error.start,
            detail=error.reason,
        )
        raise ValidationFailed([problem]) from None
    text = text.removeprefix("\ufeff")
    delimiter = _delimiter(text, file_name)
    lines, unread = _delimited_lines(text, delimiter)
    return _table(found, delimiter, lines, unread=unread, whole_width=True, mapping=mapping)


def _known_encoding(encoding: str) -> str:
    named = encoding.lower()
    named = {"shift_jis": "cp932", "sjis": "cp932", "utf8": "utf-8"}.get(named, named)
    if named not in ENCODINGS:
        known = ", ".join(ENCODINGS)
        message = f"{named!r}: one of {known}"
        problem = refusal("encoding", "unknown_encoding", message, encoding=named, known=known)
        raise ValidationFailed([problem])
    return named


def _delimiter(text: str, file_name: str) -> str:
    """Tab or comma, as the first line has more of; the name says it (``.tsv``) only when the
    line has neither more. What a file holds outweighs its name: the rejected rows of a .tsv
    are a CSV, and saved under the list's own name they come back called .tsv."""
    first_line = text.split("\n", 1)[0]
    tabs, commas = first_line.count("\t"), first_line.count(",")
    if tabs == commas:
        return "\t" if file_name.lower().endswith(".tsv") else ","
    return "\t" if tabs > commas else ","


def _delimited_lines(text: str, delimiter: str) -> tuple[list[list[str]], dict[int, Rejection]]:
    """The text's rows of cells, and why some cannot be trusted (by index in those rows).

    A quote opening a cell makes everything up to the next quote part of that cell, line
    breaks included: that is how a cell holds an address over two lines. A stray quote (an OCR
    artefact: ``"山田 太郎``) so swallows the rows after it into one cell, to the end of the
    file or a later quote, and the csv module says nothing. A row read over several lines is
    read again strictly, where a quote that never closes (or closes before more text) is an
    error; then each of its lines becomes a row of its own, rejected with the line range, so
    the marketer sees every swallowed row in the rejected rows instead of one long cell. A cell
    past the csv module's limit (131,072 characters: a quote that ran on) is an error even
    leniently; its lines are rejected the same way, and reading goes on after them."""
    consumed: list[str] = []
    """The lines the csv reader has taken since its last row."""

    def physical_lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):  # \r\n, \n or \r, kept
            consumed.append(line)
            yield line

    reader = csv.reader(physical_lines(), delimiter=delimiter)
    lines: list[list[str]] = []
    unread: dict[int, Rejection] = {}
    lines_before = 0
    while True:
        try:
            cells: list[str] | None = next(reader)
        except StopIteration:
            break
        except csv.Error:  # past the limit; the reader goes on at the next line
            cells = None  # (the lines so far, the one that broke it included, are consumed)
        first, last = lines_before + 1, lines_before + len(consumed)
        lines_before = last
        if cells is not None and (first == last or _quotes_close(consumed, delimiter)):
            lines.append(cells)
        else:
            reason = (
                reasons.unbalanced_quote(first, last)
                if first < last
                else reasons.cell_too_long(csv.field_size_limit())
            )
            for line in consumed:
                unread[len(lines)] = reason
                lines.append(_cells_of_line(line, delimiter))
        consumed.clear()
    return lines, unread


def _quotes_close(lines: list[str], delimiter: str) -> bool:
    try:
        for _ in csv.reader(lines, delimiter=delimiter, strict=True):
            pass
    except csv.Error:
        return False
    return True


def _cells_of_line(line: str, delimiter: str) -> list[str]:
    """One physical line's cells, read on its own."""
    text = line.rstrip("\r\n")
    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:  # longer than the csv module's limit: the line as one cell
        return [text]


def _table(
    found: str,
    delimiter: str,
    lines: list[list[str]],
    sheet: str | None = None,
    others: tuple[str, ...] = (),
    *,
    unread: Mapping[int, Rejection] | None = None,
    whole_width: bool = False,
    mapping: Mapping[str, str] | None = None,
) -> Table:
    """The rows under the header. ``unread``: rows (by index in ``lines``) to reject, and why.
    ``whole_width``: a row with a value past the header's last column is rejected - in a CSV
    its values have moved right (an unquoted comma inside a value) and none can be trusted
    where it stands; a workbook's cells stay where the sheet has them, so a value in a column
    with no header is left out there, as a column no field takes is."""
    unread = unread or {}
    header_at = _header_at(lines, mapping)
    header = _told_apart([cell.strip() for cell in lines[header_at]])
    if len(header) > MAX_COLUMNS:
        message = f"more than {MAX_COLUMNS} columns"
        problem = refusal("file", "too_many_columns", message, most=MAX_COLUMNS)
        raise ValidationFailed([problem])
    if header_at:  # said with the encoding: how the file was read (as a workbook's sheet is)
        found += f", header on row {header_at + 1}"
    rows: list[list[str]] = []
    numbers: list[int] = []
    unreadable: dict[int, Rejection] = {}
    wider: dict[int, list[str]] = {}
    for number, cells in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not any(cell.strip() for cell in cells):
            continue
        rows.append([*cells[: len(header)], *[""] * (len(header) - len(cells))])
        numbers.append(number)
        reason = unread.get(number - 1) or (
            _past_the_header(cells, len(header), delimiter) if whole_width else None
        )
        if reason is not None:
            unreadable[number] = reason
            if len(cells) > len(header):
                wider[number] = cells
    return Table(found, delimiter, header, rows, numbers, sheet, others, unreadable, wider)


_WHOLE_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _header_at(lines: list[list[str]], mapping: Mapping[str, str] | None) -> int:
    """Which line is the header: the first of the first HEADER_ROWS with a column the plan
    reads as the e-mail address (``mapping``, else the aliases) and only a title, notes or
    blank rows above it; else the first line with anything in it (the plan then refuses it,
    naming it). A line holding an address as a whole cell is a list's row, not a title: a
    column of values that happen to be an alias (連絡方法: メール) below a header the aliases
    do not know is not taken for the header."""
    first = next((n for n, cells in enumerate(lines) if any(c.strip() for c in cells)), None)
    if first is None:
        raise ValidationFailed([refusal("file", "no_header_row", "the file has no header row")])
    for at, cells in enumerate(lines[:HEADER_ROWS]):
        if any(_WHOLE_ADDRESS.fullmatch(cell.strip()) for cell in cells):
            break  # the list's rows have begun
        if names_email([cell.strip() for cell in cells], mapping):
            return at
    return first


def _told_apart(header: list[str]) -> list[str]:
    """The header with each column a mapping can name: a header that repeats an earlier one
    (電話番号 twice, as folded headers compare) gets its place among them (``電話番号 (2)``),
    a number no other header holds. The plan shows it and the rejected rows carry it, so the
    file they make imports the same way."""
    taken = {fold_header(title) for title in header}
    seen: set[str] = set()
    told: list[str] = []
    for title in header:
        key = fold_header(title)
        if title and key in seen:
            number = 2
            while fold_header(f"{title} ({number})") in taken:
                number += 1
            title = f"{title} ({number})"
            key = fold_header(title)
            taken.add(key)
        seen.add(key)
        told.append(title)
    return told


def _past_the_header(cells: list[str], width: int, delimiter: str) -> Rejection | None:
    """Why a row with values past the header's last column is rejected, naming them; None
    when it has none (empty cells after the last column are only trailing delimiters)."""
    extra = [(n, _clipped(c)) for n, c in enumerate(cells[width:], start=width + 1) if c.strip()]
    return reasons.extra_cells(width, extra, delimiter) if extra else None


def _clipped(text: str) -> str:
    text = text.strip()
    return text if len(text) <= 40 else text[:39] + "…"


def _xlsx_lines(data: bytes) -> tuple[list[list[str]], str, list[tuple[str, bool]]]:
    """The rows of the sheet to read as text, its name, and the other sheets' (with whether
    each is hidden)."""
    import openpyxl  # only when a workbook is read: the layer's cold start does not pay for it

    _refuse_zip_bombs(data)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:
        raise _unreadable(error) from None
    try:
        sheet, others = _sheet_to_read(book)
        lines: list[list[str]] = []
        cells = 0
        for values in _sheet_values(sheet):
            cells += len(values)
            if cells > MAX_XLSX_CELLS:
                message = f"more than {MAX_XLSX_CELLS} cells"
                problem = refusal("file", "too_many_cells", message, most=MAX_XLSX_CELLS)
                raise ValidationFailed([problem])
            lines.append([_cell_text(value, number_format) for value, number_format in values])
    finally:
        book.close()
    return lines, sheet.title, others


def _refuse_zip_bombs(data: bytes) -> None:
    """ValidationFailed when the workbook would unpack to more than can be read safely: by the
    sizes its zip declares, and by what its parts really unpack to.

    The declared sizes alone cannot be trusted: a part whose header says 1 KB may inflate to
    gigabytes. zipfile keeps only the declared size of what it inflates, but it inflates a part
    read whole (``ZipFile.read``, as openpyxl reads the workbook and its styles) in one call,
    all of it in memory first. So each part is inflated here too, a step at a time, and refused
    as soon as it gives more than it declared: what openpyxl then reads is at most what was
    declared, and that was held to the limits above. (Inflating twice costs a fraction of a
    second at the limit; parsing the XML costs far more.)"""
    import zipfile

    if data.count(b"PK\x01\x02") > MAX_XLSX_PARTS:  # at least the central directory's entries
        what = f"more than {MAX_XLSX_PARTS:,} parts"
        raise _too_large(what, "workbook_too_many_parts", most=MAX_XLSX_PARTS)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except Exception as error:  # BadZipFile, and what a broken central directory raises
        raise _unreadable(error) from None
    unpacked = sum(part.file_size for part in parts)
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        limit = MAX_XLSX_UNPACKED_BYTES // 2**20
        megabytes = unpacked // 2**20
        what = f"it unpacks to {megabytes:,} MB, more than {limit} MB"
        raise _too_large(what, "workbook_unpacks_too_large", megabytes=megabytes, most=limit)
    for part in parts:
        if part.file_size > XLSX_RATIO_FROM_BYTES and (
            part.file_size > MAX_XLSX_RATIO * part.compress_size
        ):
            ratio = part.file_size // max(part.compress_size, 1)
            what = (
                f"{part.filename} unpacks to {ratio:,} times its packed size, more than"
                f" {MAX_XLSX_RATIO} (a zip bomb?)"
            )
            raise _too_large(
                what, "workbook_zip_bomb", part=part.filename, ratio=ratio, most=MAX_XLSX_RATIO
            )
    for part in parts:
        _inflate_as_declared(data, part)


def _inflate_as_declared(data: bytes, part: zipfile.ZipInfo) -> None:
    """Inflate the part, 64 KB at a time, refusing it once it gives more than it declares."""
    import struct
    import zipfile
    import zlib

    def broken(code: RefusalCode, what: str) -> ValidationFailed:
        message = f"not a readable workbook: {part.filename} {what}"
        return ValidationFailed([refusal("file", code, message, part=part.filename)])

    if part.compress_type == zipfile.ZIP_STORED:
        return  # not packed: its size is what it takes in the file, already held to the limit
    if part.compress_type != zipfile.ZIP_DEFLATED:
        raise broken("workbook_part_packing", "is packed in a way Excel does not write")
    # Its bytes follow its own header, whose name and extra field may differ in length from
    # the central directory's
    header = data[part.header_offset : part.header_offset + 30]
    if len(header) < 30 or not header.startswith(XLSX_MAGIC):
        raise broken("workbook_part_misplaced", "is not where its zip says")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = part.header_offset + 30 + name_length + extra_length
    packed = memoryview(data)[start : start + part.compress_size]
    step = 64 * 1024
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    given = 0
    try:
        for at in range(0, len(packed), step):
            pending: bytes | memoryview = packed[at : at + step]
            while pending and not inflater.eof:
                given += len(inflater.decompress(pending, step))
                if given > part.file_size:
                    raise broken("workbook_part_larger", "unpacks to more than its zip says")
                pending = inflater.unconsumed_tail
        given += len(inflater.flush())
    except zlib.error as error:
        raise _unreadable(error) from None
    if given > part.file_size:
        raise broken("workbook_part_larger", "unpacks to more than its zip says")


def _too_large(what: str, code: RefusalCode, **params: Any) -> ValidationFailed:
    message = f"the workbook is too large to read safely: {what}; save the sheet as CSV"
    return ValidationFailed([refusal("file", code, message, **params)])


def _sheet_to_read(book: Any) -> tuple[Any, list[tuple[str, bool]]]:
    """The sheet the workbook opens on when it is visible, else its first visible one (Excel
    never opens on a hidden sheet, but another tool may save one as active); and the names of
    the others, each hidden one said so."""
    if not book.worksheets:  # none listed, or the parts it lists are missing
        message = f"not a readable workbook: it has no sheet; {SAVE_AGAIN}"
        raise ValidationFailed([refusal("file", "workbook_no_sheet", message)])
    visible = [sheet for sheet in book.worksheets if sheet.sheet_state == "visible"]
    if not visible:
        message = "the workbook has no visible sheet"
        raise ValidationFailed([refusal("file", "workbook_no_visible_sheet", message)])
    active = book.active
    chosen = active if any(sheet is active for sheet in visible) else visible[0]
    others = [
        (sheet.title, sheet.sheet_state != "visible")
        for sheet in book.worksheets
        if sheet is not chosen
    ]
    return chosen, others


MAX_SHEETS_NAMED = 10
"""Other sheets named in the report of which sheet was read; more are counted."""


def _sheet_report(sheet: str, others: list[tuple[str, bool]]) -> str:
    """How the plan says what it read: ``xlsx, sheet '来場者' (not read: '見本' (hidden))``.
    The plan reports it as the file's encoding, the one thing a plan (and the import's record)
    says about how the file was read."""
    report = f"xlsx, sheet {_sheet_name(sheet)}"
    if others:
        named = [
            _sheet_name(name) + (" (hidden)" if hidden else "")
            for name, hidden in others[:MAX_SHEETS_NAMED]
        ]
        if len(others) > MAX_SHEETS_NAMED:
            named.append(f"{len(others) - MAX_SHEETS_NAMED} more")
        report += f" (not read: {', '.join(named)})"
    return report


def _sheet_name(name: str) -> str:
    # Excel allows 31 characters; another tool's workbook may hold any number
    return repr(name if len(name) <= 31 else name[:30] + "…")


def _sheet_values(sheet: Any) -> Iterator[list[tuple[object, str]]]:
    """The sheet's rows as openpyxl reads them, each cell's value with its number format (a
    number's only: that is all the format changes), a broken workbook refused. openpyxl parses
    the sheet only as its rows are asked for, so a workbook that opened can still fail here;
    and a cell's format is looked up by its style's index, which a damaged file may not have."""
    try:
        rows = iter(sheet.iter_rows())
    except Exception as error:
        raise _unreadable(error) from None
    while True:
        try:
            cells = next(rows)
            values = [
                (cell.value, cell.number_format if _is_number(cell.value) else "") for cell in cells
            ]
        except StopIteration:
            return
        except Exception as error:
            raise _unreadable(error) from None
        yield values


SAVE_AGAIN = "open it in Excel and save it again, as .xlsx or CSV"
"""What a marketer can do with a workbook that cannot be read: Excel repairs what it can of a
damaged one when it opens it, and saves it whole."""


def _unreadable(error: Exception) -> ValidationFailed:
    """A workbook openpyxl could not read, as a refusal naming why.

    What a damaged or hostile file makes openpyxl raise is whatever its zip, XML and attribute
    readers raise: BadZipFile, an IndexError for a workbook that lists no sheet or a sheet part
    that is missing, a ValueError for ``<v>abc</v>``, a ParseError for truncated XML or a
    forbidden entity, a TypeError or AttributeError from a part of the wrong shape. Each is the
    file's fault, not this code's, which is why the callers catch any Exception around
    openpyxl's own calls (and only those)."""
    import zipfile

    from openpyxl.utils.exceptions import InvalidFileException

    code: RefusalCode
    if isinstance(error, zipfile.BadZipFile | InvalidFileException):
        code, what = "not_xlsx", "not an Excel workbook (.xlsx)"
    else:
        code, what = "workbook_unreadable", "not a readable workbook"
    detail = " ".join(str(error).split())[:200] or type(error).__name__
    # The detail is openpyxl's own words, for whoever debugs; what she can do comes after it
    then = f"; {SAVE_AGAIN}" if code == "workbook_unreadable" else ""
    return ValidationFailed([refusal("file", code, f"{what}: {detail}{then}", detail=detail)])


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell_text(value: object, number_format: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    shown = _as_formatted(value, number_format) if isinstance(value, int | float) else None
    if shown is not None:
        return shown
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time.min else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# A postal code typed as 0600001 is stored by Excel as the number 600001 and shown through a
# format (000-0000: 060-0001); a telephone number loses its leading 0 the same way (0##-###-####:
# 011-234-5678). The marketer sees 060-0001, and Excel's own "Save as CSV" writes 060-0001, so
# that is what is read, rather than a row rejected for a column whose values look right on
# screen. Only formats that pad and punctuate whole numbers are applied: digit placeholders
# (0 shows a digit or 0, # a digit or nothing), literal text, and the conditions of Excel's
# Japanese "special" formats ([<=999]000;[<=9999]000-00;000-0000 for 郵便番号). Any other
# (thousands separators, decimals, percent, scientific) leaves the number as it is stored.
_FORMAT_LITERALS = frozenset(" -()/+")
_FORMAT_CONDITION = re.compile(r"(<=|>=|<>|<|>|=)(\d+(?:\.\d+)?)")
_FORMAT_TAG = re.compile(
    r"\$-[0-9A-Za-z-]+|black|blue|cyan|green|magenta|red|white|yellow|color\s*\d+", re.IGNORECASE
)
_COMPARE = {
    "<=": float.__le__, ">=": float.__ge__, "<>": float.__ne__,
    "<": float.__lt__, ">": float.__gt__, "=": float.__eq__,
}  # fmt: skip


@dataclass(frozen=True)
class _FormatSection:
    parts: tuple[str | None, ...]
    """Literal text, or None for a digit placeholder (``placeholders`` says which)."""
    placeholders: str
    """The section's digit placeholders in order, each 0 or #."""
    condition: tuple[str, float] | None = None


def _as_formatted(value: int | float, number_format: str) -> str | None:
    """The number as the format shows it, or None when the format is not one that only pads
    and punctuates a whole number (or the number is not a whole one of 0 to 15 digits)."""
    if not 0 <= value < 10**15 or not float(value).is_integer():  # Excel keeps 15 digits
        return None
    if number_format in ("", "General") or len(number_format) > 100:  # Excel's own are short
        return None
    sections = _format_sections(number_format)
    if not sections:
        return None
    number = int(value)
    if any(section.condition for section in sections):
        section = next(
            (
                s
                for s in sections
                if s.condition is None or _COMPARE[s.condition[0]](float(number), s.condition[1])
            ),
            None,
        )
    else:  # positive; negative; zero
        section = sections[2] if number == 0 and len(sections) > 2 else sections[0]
    if section is None or not section.placeholders:
        return None
    # Digits fill the placeholders from the right; digits beyond them go to the first one
    digits = str(number) if number else ""  # zero has no significant digit: # shows nothing
    padded = digits.rjust(len(section.placeholders))
    first = len(padded) - len(section.placeholders) + 1
    slots = iter(zip([padded[:first], *padded[first:]], section.placeholders, strict=True))
    shown = []
    for part in section.parts:
        if part is None:
            slot, placeholder = next(slots)
            part = slot.replace(" ", "0" if placeholder == "0" else "")
        shown.append(part)
    return "".join(shown)


@functools.lru_cache(maxsize=256)  # a sheet has a handful of formats and many cells
def _format_sections(number_format: str) -> tuple[_FormatSection, ...] | None:
    """The format's sections (split at ``;``), or None when any part of it is more than digit
    placeholders, literal text, a condition, a locale or a colour."""
    sections: list[_FormatSection] = []
    parts: list[str | None] = []
    placeholders = ""
    condition: tuple[str, float] | None = None
    at = 0
    while at < len(number_format):
        char = number_format[at]
        if char == '"':
            end = number_format.find('"', at + 1)
            if end < 0:
                return None
            parts.append(number_format[at + 1 : end])
            at = end + 1
            continue
        if char == "\\" and at + 1 < len(number_format):
            parts.append(number_format[at + 1])
            at += 2
            continue
        if char == "[":
            end = number_format.find("]", at)
            if end < 0:
                return None
            inside = number_format[at + 1 : end]
            if match := _FORMAT_CONDITION.fullmatch(inside):
                condition = (match[1], float(match[2]))
            elif not _FORMAT_TAG.fullmatch(inside):
                return None
            at = end + 1
            continue
        if char == ";":
            sections.append(_FormatSection(tuple(parts), placeholders, condition))
            parts, placeholders, condition = [], "", None
        elif char in "0#":
            parts.append(None)
            placeholders += char
        elif char in _FORMAT_LITERALS:
            parts.append(char)
        else:
            return None
        at += 1
    sections.append(_FormatSection(tuple(parts), placeholders, condition))
    return tuple(sections)
