"""Lead search on indexes: a page is a Query, never a Scan.

Every full save of a lead (``converters.lead_to_item``) writes the attributes the indexes read
(``tsunagu.store.search_attributes``):

- ``listing`` = ``lead`` on every lead: the ``all_leads`` index, every lead by score;
- ``stage`` and ``grade``: the ``by_stage`` and ``by_grade`` indexes;
- ``owner``, case-folded, only on owned leads: the sparse ``by_owner`` index;
- ``rank``, the sort key of all of them: the score (shifted, zero-padded) then the lead id, so a
  score band is a key condition and the highest scores come first;
- ``search_words``: the words the lead is found by (``tsunagu.leads.search_words``).

A lead has many tags and many words, and an index key holds one value, so tags and words have
their own table, the *lead terms*, kept from the leads table's stream (``apply_lead_change``):
one entry per tag (``tag#<tag>``, sorted by rank) and per word (``word#<first character>``,
sorted by the word, then the rank), each carrying the lead's stage, owner, grade and tags so
that the other filters apply there too.

A search reads the narrowest of them its filters allow — a word's entries, then an owner's, a
tag's, a stage's, a grade's, then every lead — with the score band as a key condition (outside
a word search) and the other filters as a FilterExpression. Without filters one request reads
exactly the page; with them, keys are read (``MAX_READ`` entries a request) and the page's leads
fetched with one BatchGetItem. A page stops at ``limit`` matches, or after ``budget`` entries (a
rare combination over many leads), and gives the cursor to go on from there. A word search
ranks up to ``WORD_MATCHES`` matching leads by score (beyond that the page says it is
truncated: type more of the word or add a filter).
An address typed whole is looked up by its identity instead (tsunagu.commands.leads): one read.
"""

from __future__ import annotations

import time
from typing import Any

from tsunagu.cursors import decode_cursor, encode_cursor, not_a_cursor
from tsunagu.leads.search import LeadPage, LeadQuery
from tsunagu.leads.search_words import fold, rank_bound, search_key
from tsunagu.store.converters import lead_from_item
from tsunagu.store.search_attributes import LISTING
from tsunagu.store.tables import Tables, lead_items

MAX_READ = 1_000
"""Index entries one Query request reads at most, when filters leave some out (without
filters, a request reads exactly the page)."""
DEFAULT_BUDGET = 5_000
"""Index entries one page may read before it answers with what it found and a cursor."""
WORD_MATCHES = 1_000
"""Leads a word search ranks by score at most (a word that begins this many leads' words is too
short to search by on its own)."""
INDEXES = {"all_leads": "listing", "by_stage": "stage", "by_owner": "owner", "by_grade": "grade"}
"""Index of the leads table: its partition key (the sort key of each is ``rank``)."""
TAG, WORD = "tag#", "word#"
TERMS = "terms"
"""The cursor's name for a search on the lead terms."""
CARRIED = ("lead_id", "stage", "owner", "grade", "tags")
"""What each term entry carries of its lead: the key to fetch it, and what filters read."""
BATCH_WRITE = 25
WRITE_ATTEMPTS = 8


# ------------------------------------------------------------------ the lead terms


def term_entries(image: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    """The lead terms a lead item (DynamoDB JSON, as a stream carries it) should have, by key."""
    if not image or "rank" not in image:
        return {}  # not indexed yet: a reindex gives it its attributes, and its terms follow
    position = image["rank"]["S"]
    carried = {name: image[name] for name in CARRIED if name in image}
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for tag in image.get("tags", {}).get("SS", []):
        entries[(TAG + tag, position)] = carried
    for word in image.get("search_words", {}).get("L", []):
        text = word["S"]
        entries[(WORD + text[0], f"{text} {position}")] = carried
    return entries


def apply_lead_change(
    tables: Tables, old_image: dict[str, Any] | None, new_image: dict[str, Any] | None
) -> int:
    """Bring the lead terms from what the old item implied to what the new one does: entries
    only the old one had are deleted, new or changed ones written, the rest left alone (most
    changes — a last-activity mark — touch none). Idempotent: a redelivered record writes the
    same. Returns how many entries were written or deleted."""
    before, after = term_entries(old_image), term_entries(new_image)
    writes: list[dict[str, Any]] = [
        {"DeleteRequest": {"Key": _term_key(key)}} for key in before.keys() - after.keys()
    ]
    writes += [
        {"PutRequest": {"Item": _term_key(key) | carried}}
        for key, carried in after.items()
        if before.get(key) != carried
    ]
    _batch_write(tables, writes)
    return len(writes)


class LeadTerms:
    """The lead terms of one stack (what the leads stream's consumer writes)."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def apply(self, old_image: dict[str, Any] | None, new_image: dict[str, Any] | None) -> int:
        return apply_lead_change(self._tables, old_image, new_image)


def _term_key(key: tuple[str, str]) -> dict[str, Any]:
    return {"term": {"S": key[0]}, "position": {"S": key[1]}}


def _batch_write(tables: Tables, writes: list[dict[str, Any]]) -> None:
    client: Any = tables.connection.client
    table = tables.settings.lead_terms_table
    for start in range(0, len(writes), BATCH_WRITE):
        pending = {table: writes[start : start + BATCH_WRITE]}
        for attempt in range(WRITE_ATTEMPTS):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(0.05 * 2**attempt)  # throttled: back off as the SDKs do
        else:
            raise RuntimeError(f"{table}: writes left unprocessed after {WRITE_ATTEMPTS} tries")


# ------------------------------------------------------------------ reading


def search_page(tables: Tables, query: LeadQuery, *, budget: int = DEFAULT_BUDGET) -> LeadPage:
    if query.word:
        items, cursor, examined, truncated = _word_search(tables, query)
    else:
        items, cursor, examined = _index_search(tables, query, budget)
        truncated = False
    leads = [lead_from_item(tables.leads.from_raw_data(item)) for item in items]
    return LeadPage(leads, cursor, examined, truncated)


def _filters(
    query: LeadQuery, *, keyed: str | None
) -> tuple[str | None, dict[str, str], dict[str, Any]]:
    """The FilterExpression of what the chosen partition (``keyed``) does not already select."""
    clauses: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for attribute, value, test in (
        ("stage", query.stage, "#{a} = :{a}"),
        ("owner", fold(query.owner) if query.owner else None, "#{a} = :{a}"),
        ("grade", query.grade, "#{a} = :{a}"),
        ("tags", query.tag, "contains(#{a}, :{a})"),
    ):
        if value is None or attribute == keyed:
            continue
        clauses.append(test.format(a=attribute))
        names[f"#{attribute}"] = attribute
        values[f":{attribute}"] = {"S": value}
    return (" AND ".join(clauses) or None), names, values


def _index_search(
    tables: Tables, query: LeadQuery, budget: int
) -> tuple[list[dict[str, Any]], str | None, int]:
    """A page from a leads-table index or a tag's terms, highest score first."""
    client: Any = tables.connection.client
    source, partition = _source_for(query)
    on_terms = source == TERMS
    sort_key = "position" if on_terms else "rank"
    partition_key = "term" if on_terms else INDEXES[source]
    keyed = "tags" if on_terms else partition_key
    condition, names, values = _filters(query, keyed=keyed)
    names["#p"] = partition_key
    values[":p"] = {"S": partition}
    key_condition = "#p = :p"
    banded = query.score_min is not None or query.score_max is not None
    if banded:
        low = rank_bound(query.score_min if query.score_min is not None else -99_999, upper=False)
        high = rank_bound(query.score_max if query.score_max is not None else 899_999, upper=True)
        key_condition += " AND #r BETWEEN :low AND :high"
        values |= {":low": {"S": low}, ":high": {"S": high}}
    request: dict[str, Any] = {
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        "Limit": query.limit,
    }
    if on_terms:
        request["TableName"] = tables.settings.lead_terms_table
    else:
        request |= {"TableName": tables.leads.Meta.table_name, "IndexName": source}
    whole_items = condition is None and not on_terms
    if not whole_items:
        # Only keys cross the wire; the page's leads are fetched once it is known.
        request["ProjectionExpression"] = "lead_id, #p, #r"
    if banded or not whole_items:
        names["#r"] = sort_key
    if condition is not None:
        request["FilterExpression"] = condition
        request["Limit"] = MAX_READ  # the filters' share is unknown: fewer round trips
    cursor_keys = ("term", "position") if on_terms else ("lead_id", "rank", partition_key)
    start = _decode(query.cursor, source, cursor_keys)
    if start is not None and start[partition_key] != {"S": partition}:
        raise not_a_cursor()  # another stage's, owner's or tag's: DynamoDB would refuse it
    found: list[dict[str, Any]] = []
    examined = 0
    next_cursor: str | None = None
    while True:
        if start is not None:
            request["ExclusiveStartKey"] = start
        answer = client.query(**request)
        examined += int(answer.get("ScannedCount", 0))
        for item in answer.get("Items", []):
            found.append(item)
            if len(found) == query.limit:
                # Go on after this item next time (the rest of this read is read again).
                next_cursor = _encode(source, {name: item[name] for name in cursor_keys})
                break
        start = answer.get("LastEvaluatedKey")
        if next_cursor is not None or start is None:
            break
        if examined >= budget:
            next_cursor = _encode(source, start)
            break
    if whole_items:
        return found, next_cursor, examined
    return lead_items(tables, [item["lead_id"]["S"] for item in found]), next_cursor, examined


def _source_for(query: LeadQuery) -> tuple[str, str]:
    """The narrowest partition the filters allow: an owner's leads are few, a tag's usually
    fewer than a stage's or a grade's."""
    if query.owner:
        return "by_owner", fold(query.owner)
    if query.tag:
        return TERMS, TAG + query.tag
    if query.stage:
        return "by_stage", query.stage
    if query.grade:
        return "by_grade", query.grade
    return "all_leads", LISTING


def _word_search(
    tables: Tables, query: LeadQuery
) -> tuple[list[dict[str, Any]], str | None, int, bool]:
    """The leads with a word that begins with the searched one, ranked by score: every match's
    entry is read (keys only, up to ``WORD_MATCHES`` leads), then a page of them fetched."""
    client: Any = tables.connection.client
    key = search_key(query.q or "")
    condition, names, values = _filters(query, keyed=None)
    request: dict[str, Any] = {
        "TableName": tables.settings.lead_terms_table,
        "KeyConditionExpression": "#t = :t AND begins_with(#s, :s)",
        "ExpressionAttributeNames": names | {"#t": "term", "#s": "position"},
        "ExpressionAttributeValues": values | {":t": {"S": WORD + key[0]}, ":s": {"S": key}},
        "ProjectionExpression": "lead_id, #s",
        "Limit": WORD_MATCHES,
    }
    if condition is not None:
        request["FilterExpression"] = condition
    low = rank_bound(query.score_min, upper=False) if query.score_min is not None else ""
    high = rank_bound(query.score_max, upper=True) if query.score_max is not None else "\uffff"
    after = _decode_word_cursor(query.cursor)
    ranks: dict[str, str] = {}
    examined = 0
    truncated = False
    while True:
        answer = client.query(**request)
        examined += int(answer.get("ScannedCount", 0))
        for item in answer.get("Items", []):
            position = item["position"]["S"].rpartition(" ")[2]
            if low <= position <= high:
                ranks[item["lead_id"]["S"]] = position
        start = answer.get("LastEvaluatedKey")
        if start is None:
            break
        if len(ranks) >= WORD_MATCHES:
            truncated = True
            break
        request["ExclusiveStartKey"] = start
    ranked = sorted(
        ((position, lead_id) for lead_id, position in ranks.items()),
        reverse=True,
    )
    if after is not None:
        ranked = [entry for entry in ranked if entry[0] < after]
    page = ranked[: query.limit]
    next_cursor = (
        encode_cursor({"i": "words", "r": page[-1][0]}) if len(ranked) > query.limit else None
    )
    return lead_items(tables, [lead_id for _, lead_id in page]), next_cursor, examined, truncated


def _encode(source: str, key: dict[str, Any]) -> str:
    return encode_cursor({"i": source, "k": key})


def _decode(cursor: str | None, source: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    if not cursor:
        return None
    value = decode_cursor(cursor)
    if value.get("i") != source:
        raise not_a_cursor()  # a cursor of another search (other filters) would skip or repeat
    key = value.get("k")
    if not isinstance(key, dict) or set(key) != set(keys):
        raise not_a_cursor()
    if not all(isinstance(v, dict) and set(v) == {"S"} for v in key.values()):
        raise not_a_cursor()
    return key


def _decode_word_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    value = decode_cursor(cursor)
    position = value.get("r")
    if value.get("i") != "words" or not isinstance(position, str) or len(position) > 300:
        raise not_a_cursor()
    return position
