"""Firehose delivery streams that convert to Parquet, run as Firehose runs them, into local files.

moto's Firehose writes an ExtendedS3 destination's records to its S3 raw, concatenated, under
the literal prefix: it ignores DataFormatConversionConfiguration and does not fill in a dynamic
partitioning prefix. For a stream that converts to Parquet, ``install`` makes PutRecordBatch do
what Firehose does instead: each record's partition keys come from the stream's
MetadataExtraction query, the prefix is filled in with them, and the records become a Parquet
file with the Glue table's columns and types (read from Glue when the stream is created, as
Firehose reads them) in the runtime's state folder, which stands for the bucket:
``<state>/analytics/events/date=2026-12-04/part-00001.parquet``. A record that is not JSON or
lacks a partition key goes to the error prefix as it came, as Firehose's do.

What differs from AWS, on purpose: Firehose buffers for minutes and writes one file per buffer;
here each PutRecordBatch call writes its files at once (a stream batch's worth), so a query sees
a row as soon as the stream delivered its event - what a test or a local user wants. Files are
written under a temporary name and renamed, so a query never reads half a file.

DuckDB writes the files (``duckdb`` is a development dependency, as moto is): it reads the
records as JSON with the table's columns, as Firehose's OpenX JSON SerDe does (keys that are no
column are ignored, a missing one is null, "3" for an int column is 3).
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsunagu_local.template import TemplateError

GLUE_TO_DUCKDB = {
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "date": "DATE",
    # A Glue timestamp holds a UTC instant (Athena reads it in UTC); DuckDB's type for an
    # instant is TIMESTAMPTZ, so that `occurred_at AT TIME ZONE 'Asia/Tokyo'` means the same
    # in both engines: that instant on Tokyo's clocks.
    "timestamp": "TIMESTAMPTZ",
    "array<string>": "VARCHAR[]",
}
_QUERY_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
_PREFIX_KEY = re.compile(r"!\{([a-zA-Z]+):([^}]*)\}")
ERROR_TYPE = "format-conversion-failed"


def duckdb_module() -> Any:
    """DuckDB, imported when first needed (the runtime starts without it otherwise)."""
    try:
        return importlib.import_module("duckdb")
    except ImportError as error:  # pragma: no cover - the dev lock installs it
        raise TemplateError(
            "a Firehose stream converting to Parquet needs duckdb: `make .venv/.installed`"
        ) from error


def duckdb_type(glue_type: str) -> str:
    try:
        return GLUE_TO_DUCKDB[glue_type.strip().lower()]
    except KeyError:
        raise TemplateError(f"Glue type {glue_type!r} is not known to the local runtime") from None


def partition_query(query: str) -> dict[str, str]:
    """A MetadataExtraction JQ query of the form ``{name: .field, ...}`` as name -> field. JQ
    can do far more; the local runtime evaluates only this form, and says so for any other."""
    body = query.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise TemplateError(f"MetadataExtractionQuery {query!r}: only {{key: .field, ...}} runs")
    keys: dict[str, str] = {}
    for part in body[1:-1].split(","):
        match = _QUERY_FIELD.match(part)
        if match is None:
            raise TemplateError(f"MetadataExtractionQuery {query!r}: only {{key: .field}} runs")
        keys[match.group(1)] = match.group(2)
    return keys


def fill_prefix(prefix: str, values: Mapping[str, str]) -> str:
    """``events/date=!{partitionKeyFromQuery:date}/`` with the record's partition keys."""
    return _PREFIX_KEY.sub(lambda match: values[match.group(2)], prefix)


@dataclass
class ParquetDestination:
    """Where and how one delivery stream's records land (its ExtendedS3 configuration)."""

    root: Path
    """The bucket, locally."""
    prefix: str
    error_prefix: str
    columns: Sequence[tuple[str, str]]
    """(name, Glue type) of the table, in order."""
    partition_keys: Mapping[str, str] = field(default_factory=dict)
    """Partition key -> the record's field it comes from."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counters: dict[Path, int] = field(default_factory=dict)
    _writing: threading.Lock = field(default_factory=threading.Lock)
    _connection: Any = None
    """One DuckDB connection for the stream's writes, one write at a time (moto answers on
    several threads; a connection costs 20 ms to open)."""

    @classmethod
    def from_configuration(
        cls, root: Path, destination: Mapping[str, Any], columns: Sequence[tuple[str, str]]
    ) -> ParquetDestination:
        keys: dict[str, str] = {}
        processing = destination.get("ProcessingConfiguration") or {}
        for processor in processing.get("Processors") or []:
            if processor.get("Type") != "MetadataExtraction":
                raise TemplateError(f"Firehose processor {processor.get('Type')} does not run here")
            for parameter in processor.get("Parameters") or []:
                if parameter.get("ParameterName") == "MetadataExtractionQuery":
                    keys = partition_query(str(parameter["ParameterValue"]))
        prefix = str(destination.get("Prefix", ""))
        for namespace, name in _PREFIX_KEY.findall(prefix):
            if namespace != "partitionKeyFromQuery" or name not in keys:
                raise TemplateError(f"Firehose prefix {prefix!r}: !{{{namespace}:{name}}} unknown")
        for name, glue_type in columns:
            duckdb_type(glue_type)  # refuses at start what could not be written later
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise TemplateError(f"Glue column {name!r}: not a plain name")
        error_prefix = str(destination.get("ErrorOutputPrefix", "errors/"))
        return cls(root, prefix, error_prefix, columns, keys)

    def put(self, records: Sequence[bytes]) -> None:
        """Write the records: one Parquet file per partition they fall in."""
        groups: dict[str, list[bytes]] = {}
        failed: list[bytes] = []
        for data in records:
            try:
                row = json.loads(data)
                values = {key: row[field_name] for key, field_name in self.partition_keys.items()}
            except (ValueError, KeyError, TypeError):
                failed.append(data)
                continue
            if not isinstance(row, dict) or not all(
                isinstance(v, str) and v and "/" not in v and ".." not in v for v in values.values()
            ):
                failed.append(data)
                continue
            groups.setdefault(fill_prefix(self.prefix, values), []).append(
                data.rstrip(b"\n") + b"\n"
            )
        for prefix, lines in groups.items():
            self._write_parquet(self.root / prefix, lines)
        if failed:
            self._write_errors(failed)

    def _next_file(self, folder: Path, suffix: str) -> Path:
        with self._lock:
            if folder not in self._counters:
                taken = [int(p.stem.split("-")[-1]) for p in folder.glob(f"part-*{suffix}")]
                self._counters[folder] = max(taken, default=0)
            self._counters[folder] += 1
            return folder / f"part-{self._counters[folder]:05d}{suffix}"

    def _write_parquet(self, folder: Path, lines: list[bytes]) -> None:
        """One file of the lines; if they do not convert (a value the column's type cannot
        take), they go to the error prefix, as Firehose sends records it could not convert."""
        folder.mkdir(parents=True, exist_ok=True)
        duckdb = duckdb_module()
        columns = ", ".join(f"{name}: '{duckdb_type(kind)}'" for name, kind in self.columns)
        names = ", ".join(f'"{name}"' for name, _ in self.columns)
        with tempfile.TemporaryDirectory(prefix="firehose-", dir=folder) as scratch:
            source = Path(scratch) / "records.json"
            source.write_bytes(b"".join(lines))
            written = Path(scratch) / "part.parquet"
            # Names and types come from the Glue table (checked above), paths from us.
            target_text = str(written).replace("'", "''")
            with self._writing:
                if self._connection is None:
                    self._connection = duckdb.connect()
                try:
                    self._connection.execute(
                        f"COPY (SELECT {names} FROM read_json(?, format = 'newline_delimited', "  # noqa: S608
                        f"columns = {{{columns}}})) TO '{target_text}' "
                        "(FORMAT parquet, COMPRESSION snappy)",
                        [str(source)],
                    )
                except duckdb.Error:
                    converted = False
                else:
                    converted = True
            if converted:
                written.replace(self._next_file(folder, ".parquet"))
        if not converted:
            self._write_errors(lines)

    def close(self) -> None:
        with self._writing:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _write_errors(self, records: list[bytes]) -> None:
        prefix = self.error_prefix.replace("!{firehose:error-output-type}", ERROR_TYPE)
        prefix = re.sub(r"!\{timestamp:[^}]*\}", "local", prefix)
        folder = self.root / prefix
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps({"rawData": base64.b64encode(r).decode(), "errorCode": "Local.Unreadable"})
            for r in records
        ]
        target = self._next_file(folder, ".json")
        scratch = folder / f".{uuid.uuid4().hex}.tmp"
        scratch.write_text("\n".join(lines) + "\n", encoding="utf-8")
        scratch.replace(target)


_destinations: dict[str, ParquetDestination] = {}
"""Delivery stream name -> its local destination (streams converting to Parquet only)."""


def register(stream_name: str, destination: ParquetDestination) -> None:
    _destinations[stream_name] = destination


def forget(stream_name: str) -> None:
    destination = _destinations.pop(stream_name, None)
    if destination is not None:
        destination.close()


def clear(root: Path) -> None:
    """Empty the local bucket (a fresh start)."""
    shutil.rmtree(root, ignore_errors=True)


def install() -> None:
    """PutRecordBatch (and PutRecord) to a registered stream writes Parquet as Firehose would."""
    from moto.firehose.models import FirehoseBackend

    original: Callable[..., dict[str, Any]] = FirehoseBackend.put_record_batch
    if getattr(original, "writes_parquet", False):
        return

    def put_record_batch(
        self: Any, delivery_stream_name: str, records: list[dict[str, bytes]]
    ) -> dict[str, Any]:
        destination = _destinations.get(delivery_stream_name)
        if destination is None:
            return original(self, delivery_stream_name, records)
        # Records arrive as moto parsed them: base64 text of the bytes.
        destination.put([_record_bytes(r["Data"]) for r in records])
        return {
            "FailedPutCount": 0,
            "Encrypted": False,
            "RequestResponses": [{"RecordId": uuid.uuid4().hex} for _ in records],
        }

    put_record_batch.writes_parquet = True  # type: ignore[attr-defined]
    FirehoseBackend.put_record_batch = put_record_batch  # type: ignore[method-assign]


def _record_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    return base64.b64decode(str(data))
