"""Lead search on the leads table's indexes: a page is a Query, never a Scan.

Every full save of a lead (``converters.lead_to_item``) writes the attributes the indexes read:

- ``listing`` = ``lead`` on every lead: the ``all_leads`` index, every lead by score;
- ``stage``: the ``by_stage`` index, a stage's leads by score;
- ``owner``, case-folded, only on owned leads: the sparse ``by_owner`` index;
- ``rank``, the sort key of all three: the score (shifted, zero-padded) then the lead id, so a
  score band is a key condition and the highest scores come first;
- ``search_text``: e-mail, name and company, folded, for the word filter.

A search queries the narrowest index its filters allow (owner, then stage, then all leads),
with the score band as the key condition and the other filters as a FilterExpression. Without
filters a request reads exactly the page; with them, ``MAX_READ`` entries a request. A page
stops at ``limit`` matches, or after ``budget`` entries (a rare word over many leads), and gives
the cursor to go on from there.
An address typed whole is looked up by its identity instead: one read.
"""

from __future__ import annotations

from typing import Any

from tsunagu.cursors import decode_cursor, encode_cursor, not_a_cursor
from tsunagu.leads.model import Lead
from tsunagu.leads.search import LeadPage, LeadQuery, fold, rank, rank_bound
from tsunagu.store.tables import Tables

LISTING = "lead"
MAX_READ = 1_000
"""Index entries one Query request reads at most, when filters leave some out (without
filters, a request reads exactly the page)."""
DEFAULT_BUDGET = 5_000
"""Index entries one page may read before it answers with what it found and a cursor."""
INDEXES = {"all_leads": "listing", "by_stage": "stage", "by_owner": "owner"}
"""Index name: its partition key (the sort key of each is ``rank``)."""


def search_attributes(lead: Lead) -> dict[str, Any]:
    owner = lead.fields.get("owner_email")
    words = [lead.email] + [
        str(lead.fields[name].value) for name in ("name", "company") if name in lead.fields
    ]
    return {
        "listing": LISTING,
        "owner": fold(str(owner.value)) if owner is not None and owner.value else None,
        "rank": rank(lead.score, lead.lead_id),
        "search_text": fold(" ".join(words)),
    }


def search_leads(
    tables: Tables, query: LeadQuery, *, budget: int = DEFAULT_BUDGET
) -> tuple[list[dict[str, Any]], str | None, int]:
    """The raw items of one page, the cursor of the next (None at the end), and how many index
    entries were read."""
    index, partition = _index_for(query)
    names = {"#p": INDEXES[index]}
    values: dict[str, Any] = {":p": {"S": partition}}
    key_condition = "#p = :p"
    if query.score_min is not None or query.score_max is not None:
        low = rank_bound(query.score_min if query.score_min is not None else -99_999, upper=False)
        high = rank_bound(query.score_max if query.score_max is not None else 899_999, upper=True)
        key_condition += " AND #r BETWEEN :low AND :high"
        names["#r"] = "rank"
        values |= {":low": {"S": low}, ":high": {"S": high}}
    filters = []
    for attribute, value, test in (
        ("stage", query.stage if index != "by_stage" else None, "#{a} = :{a}"),
        ("owner", fold(query.owner) if query.owner and index != "by_owner" else None, None),
        ("grade", query.grade, None),
        ("tags", query.tag, "contains(#{a}, :{a})"),
        ("search_text", query.word, "contains(#{a}, :{a})"),
    ):
        if value is None:
            continue
        filters.append((test or "#{a} = :{a}").format(a=attribute))
        names[f"#{attribute}"] = attribute
        values[f":{attribute}"] = {"S": value}
    request: dict[str, Any] = {
        "TableName": tables.leads.Meta.table_name,
        "IndexName": index,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        "Limit": query.limit,
    }
    if filters:
        request["FilterExpression"] = " AND ".join(filters)
        # The filters' share is unknown: read as much as a request may (fewer round trips).
        request["Limit"] = MAX_READ
    start = _decode(query.cursor, index)
    client: Any = tables.connection.client
    found: list[dict[str, Any]] = []
    examined = 0
    while True:
        if start is not None:
            request["ExclusiveStartKey"] = start
        answer = client.query(**request)
        examined += int(answer.get("ScannedCount", 0))
        for item in answer.get("Items", []):
            found.append(item)
            if len(found) == query.limit:
                # Go on after this item next time (the rest of this read is read again).
                return found, _encode(_key_of(item, index), index), examined
        start = answer.get("LastEvaluatedKey")
        if start is None:
            return found, None, examined
        if examined >= budget:
            return found, _encode(start, index), examined


def _index_for(query: LeadQuery) -> tuple[str, str]:
    if query.owner:
        return "by_owner", fold(query.owner)
    if query.stage:
        return "by_stage", query.stage
    return "all_leads", LISTING


def _key_of(item: dict[str, Any], index: str) -> dict[str, Any]:
    return {name: item[name] for name in ("lead_id", "rank", INDEXES[index])}


def _encode(key: dict[str, Any], index: str) -> str:
    return encode_cursor({"i": index, "k": key})


def _decode(cursor: str | None, index: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    value = decode_cursor(cursor)
    if value.get("i") != index:
        raise not_a_cursor()  # a cursor of another search (other filters) would skip or repeat
    key = value.get("k")
    wanted = {"lead_id", "rank", INDEXES[index]}
    if not isinstance(key, dict) or set(key) != wanted:
        raise not_a_cursor()
    if not all(isinstance(v, dict) and set(v) == {"S"} for v in key.values()):
        raise not_a_cursor()
    return key


def search_page(tables: Tables, query: LeadQuery, *, budget: int = DEFAULT_BUDGET) -> LeadPage:
    from tsunagu.store.converters import lead_from_item  # (it imports search_attributes)

    items, cursor, examined = search_leads(tables, query, budget=budget)
    leads = [lead_from_item(tables.leads.from_raw_data(item)) for item in items]
    return LeadPage(leads, cursor, examined)
