"""One flat row per event, for SQL: the analytics export's schema, kept here and only here.

The events table's stream carries each event as DynamoDB JSON; ``row_from_record`` makes it a
row of plain values with the columns below. The template's Glue table (AnalyticsEventsTable)
declares the same columns with the same types (a static test keeps the two equal): Firehose
converts the JSON rows to Parquet with that table's schema, Athena reads them with it, and the
local runtime writes its Parquet files with it too.

What a row leaves out: values that name a person directly - a form's submitted field values,
addresses (``email``, the lead's ``owner``, and any value that is an address, under whatever
name), network addresses (``ip``), a mail's rendered subject (it may greet the person by name)
and error texts (SES quotes the address), wherever they are in the properties. A URL keeps its
campaign parameters (``utm_*``) and loses the rest of its query and its fragment: a mail's link
may carry the lead's data on purpose (``?email={{ lead.email }}``, mail.render), and a landing
page's address then carries it too; an address left anywhere else in a text is masked. The rows
carry pseudonymous ids (lead_id, visitor_id) only, so an erased lead leaves nothing in the
bucket that says who it was, and the bucket never needs the care of the leads table.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from boto3.dynamodb.types import Binary, TypeDeserializer

from tsunagu.clock import stored_day


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """The Glue (Hive) type: what Athena reads and Firehose's Parquet conversion writes."""


COLUMNS: tuple[Column, ...] = (
    Column("event_id", "string"),
    Column("type", "string"),
    Column("occurred_at", "timestamp"),
    Column("lead_id", "string"),
    Column("visitor_id", "string"),
    # Judged a machine's (security scanner, privacy proxy, crawler, ...) or a person's, and why:
    # opens, clicks and what a browser sent through the snippet. None where nothing was judged:
    # a site's backend posting events, what Tsunagu records itself (and a person's page views
    # stored before browser events said false).
    Column("automated", "boolean"),
    Column("reasons", "array<string>"),
    # Mail: which message, template (version) and topic; sends by a journey add which journey
    # version and node sent it.
    Column("message_id", "string"),
    Column("template_id", "string"),
    Column("template_version", "int"),
    Column("topic", "string"),
    Column("journey_id", "string"),
    Column("journey_version", "int"),
    Column("node", "string"),
    # journey_decision: the branch or the arm (split, holdout) the lead went down.
    Column("outcome", "string"),
    Column("form_id", "string"),
    # Page views (the snippet): where, from where, which campaign. A URL (a page's, a clicked
    # link's) keeps only the campaign parameters of its query: see _campaign_only.
    Column("site_id", "string"),
    Column("path", "string"),
    Column("link_id", "string"),
    Column("url", "string"),
    Column("referrer", "string"),
    Column("utm_source", "string"),
    Column("utm_medium", "string"),
    Column("utm_campaign", "string"),
    # "insert": the event as first stored; "modify": stored again (a person's click marked
    # settled, or re-judged a machine's when the rest of a scanner's burst arrived). Per
    # event_id the row with the highest sequence_number is the event as it stands; a
    # redelivered stream batch repeats a row exactly.
    Column("change", "string"),
    Column("sequence_number", "string"),
    # Every property, as JSON (less the personal values above): for what has no column.
    Column("properties", "string"),
)
PARTITION_KEY = Column("date", "string")
"""The UTC day of occurred_at (YYYY-MM-DD): the S3 prefix ``events/date=.../``."""

SEQUENCE_DIGITS = 40
"""DynamoDB stream sequence numbers have up to 40 digits; zero-padded, they sort as text."""

PERSONAL_KEYS = frozenset({"email", "ip", "subject", "error", "owner"})
"""Property names left out at any depth: they name a person (or their network) directly. A
name is not enough on its own (a value can be an address under any name): see _personal."""

CAMPAIGN_PARAMETER = "utm_"
"""The query parameters a URL keeps: the campaign's, set by the marketer for every reader alike.
Every other parameter may be the person's (a prefilled form, a search, a sign-in token)."""

ADDRESS_MASK = "(address)"
_ADDRESS = r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_WHOLE_ADDRESS = re.compile(rf"(?:mailto:)?{_ADDRESS}", re.IGNORECASE)
_ADDRESS_IN_TEXT = re.compile(_ADDRESS)
_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

_STREAM_CHANGES = {"INSERT": "insert", "MODIFY": "modify"}
_deserializer = TypeDeserializer()


class UnreadableRecord(ValueError):
    """A stream record that is not a stored event (no NewImage, no occurred_at)."""


def _plain(value: Any) -> Any:
    """A deserialized DynamoDB value as JSON can hold it."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Binary):
        wrapped: Any = value  # boto3's stubs do not declare Binary.value
        return base64.b64encode(wrapped.value).decode()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _is_address(text: str) -> bool:
    """Whether the text is a mail address (percent-encoded too, as a link's query holds it)."""
    return _WHOLE_ADDRESS.fullmatch(unquote(text).strip()) is not None


def _campaign_only(url: str) -> str:
    """The URL without its fragment and with only the campaign parameters of its query, each
    as it was written (the columns show the URL as the person's browser had it)."""
    base, _, query = url.partition("#")[0].partition("?")
    kept = [
        pair
        for pair in query.split("&")
        if unquote(pair.partition("=")[0]).lower().startswith(CAMPAIGN_PARAMETER)
        and not _is_address(pair.partition("=")[2])
    ]
    return f"{base}?{'&'.join(kept)}" if kept else base


def _personal(key: Any, value: Any) -> bool:
    return key in PERSONAL_KEYS or (isinstance(value, str) and _is_address(value))


def _without_personal(value: Any, *, top: bool = False) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_personal(v)
            for k, v in value.items()
            if not _personal(k, v)
            # form_submitted's ``fields`` are the submitted values (a name, a phone number);
            # elsewhere ``fields`` lists the names of changed fields, which are kept.
            and not (top and k == "fields" and isinstance(v, dict))
        }
    if isinstance(value, list):
        return [_without_personal(v) for v in value if not _personal(None, v)]
    if isinstance(value, str):
        if _ABSOLUTE_URL.match(value):
            value = _campaign_only(value)
        return _ADDRESS_IN_TEXT.sub(ADDRESS_MASK, value)
    return value


def plain_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB JSON image (``{"type": {"S": "..."}}``) as plain values."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in image.items()}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _texts(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]


def event_row(event: Mapping[str, Any], *, change: str, sequence_number: str) -> dict[str, Any]:
    """A stored event (plain values) as a row: every column, None where the event has none."""
    occurred_at = event.get("occurred_at")
    if not isinstance(occurred_at, str) or len(occurred_at) < 10 or not event.get("event_id"):
        raise UnreadableRecord("not a stored event: no event_id or occurred_at")
    raw = event.get("properties")
    properties = _without_personal(raw if isinstance(raw, dict) else {}, top=True)
    utm = properties.get("utm")
    utm = utm if isinstance(utm, dict) else {}
    row: dict[str, Any] = {
        "event_id": _text(event.get("event_id")),
        "type": _text(event.get("type")),
        "occurred_at": occurred_at,
        "lead_id": _text(event.get("lead_id")),
        "visitor_id": _text(event.get("visitor_id")),
        "automated": _flag(properties.get("automated")),
        "reasons": _texts(properties.get("reasons")),
        "message_id": _text(properties.get("message_id")),
        "template_id": _text(properties.get("template_id")),
        "template_version": _whole(properties.get("template_version")),
        "topic": _text(properties.get("topic")),
        "journey_id": _text(properties.get("journey_id")),
        "journey_version": _whole(properties.get("journey_version")),
        "node": _text(properties.get("node")),
        "outcome": _text(properties.get("outcome")),
        "form_id": _text(properties.get("form_id")),
        "site_id": _text(properties.get("site_id")),
        "path": _text(properties.get("path")),
        "link_id": _text(properties.get("link_id")),
        "url": _text(properties.get("url")),
        "referrer": _text(properties.get("referrer")),
        "utm_source": _text(utm.get("source")),
        "utm_medium": _text(utm.get("medium")),
        "utm_campaign": _text(utm.get("campaign")),
        "change": change,
        "sequence_number": sequence_number.rjust(SEQUENCE_DIGITS, "0"),
        "properties": json.dumps(properties, ensure_ascii=False, sort_keys=True),
    }
    row[PARTITION_KEY.name] = stored_day(occurred_at)
    return row


def row_from_record(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """A DynamoDB stream record (as Lambda delivers it) as a row; None for a REMOVE (TTL
    expiry deletes events from the table, not from the analytics)."""
    change = _STREAM_CHANGES.get(str(record.get("eventName")))
    if change is None:
        return None
    stream = record.get("dynamodb") or {}
    image = stream.get("NewImage")
    if not image:
        raise UnreadableRecord("an INSERT or MODIFY without a NewImage (the stream's view type?)")
    return event_row(
        plain_image(image), change=change, sequence_number=str(stream.get("SequenceNumber", ""))
    )


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One row as Firehose takes it: a JSON object on one line."""
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
