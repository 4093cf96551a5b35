"""A row whose lead would not fit one DynamoDB item is rejected by the plan, with a reason the
marketer can act on, rather than left to fail the run (moto, in-process): the synchronous run
would stop at its group, and a background run park the whole chunk."""

from __future__ import annotations

import csv
import io

from tests.conftest import AwsStack
from tests.support.leads import store_lead
from tsunagu import services
from tsunagu.commands import imports
from tsunagu.commands.access import Actor, Role
from tsunagu.imports.plan import ImportOptions
from tsunagu.leads.capture import ITEM_BYTES
from tsunagu.leads.merge import Channel, FieldValue
from tsunagu.leads.model import Lead
from tsunagu.store.converters import lead_to_item
from tsunagu.store.tables import bind_tables

MARKETER = Actor(user_id="m@example.com", role=Role.MARKETER, email="m@example.com")
COLUMNS = 199
MAPPING = {f"項目{n}": f"f{n}" for n in range(COLUMNS)}
OPTIONS = ImportOptions(Channel.TRADE_SHOW, MAPPING)
LONG = "😀" * 500
"""The longest value a cell may hold, four bytes a character: 199 of them pass 400 KB."""


def wide_list(*rows: tuple[str, str]) -> bytes:
    """A list of 199 columns besides the address, each row's cells all the same value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", *MAPPING])
    writer.writerows([address, *[value] * COLUMNS] for address, value in rows)
    return out.getvalue().encode("utf-8")


def test_a_row_too_large_for_one_lead_is_rejected_by_the_plan_and_the_rest_is_written(
    aws: AwsStack,
) -> None:
    data = wide_list(
        ("ok@example.jp", "短い"), ("huge@example.jp", LONG), ("after@example.jp", "短い")
    )
    ports = services.import_commands(aws.settings())
    planned = imports.plan(ports, MARKETER, data, "wide.csv", OPTIONS)
    assert [row.action for row in planned.plan.rows] == ["create", "rejected", "create"]
    huge = planned.plan.rows[1]
    assert huge.reason_code == "row_too_large"
    assert huge.reason_params["limit"] == ITEM_BYTES
    assert huge.reason_params["size"] > ITEM_BYTES
    # Said in the marketer's language in the rejected rows, as every reason is
    assert "1件のリードに保存できる 400,000 バイト" in planned.rejected_file().decode("utf-8-sig")

    record, _ = imports.run(ports, MARKETER, data, "wide.csv", OPTIONS)
    assert record.status == "applied"
    leads = services.lead_repository(aws.settings())
    assert leads.find_lead("email:huge@example.jp") is None
    for written in ("ok@example.jp", "after@example.jp"):
        assert leads.find_lead(f"email:{written}") is not None


def test_a_row_that_would_grow_a_lead_past_one_item_is_rejected_as_an_update(
    aws: AwsStack,
) -> None:
    # Given a lead holding half an item's worth of fields already
    half = {f"f{n}": LONG for n in range(100)}
    store_lead(aws, "known@example.jp", more_fields=half)
    ports = services.import_commands(aws.settings())

    # When a list fills in the other half and more: the lead would not fit
    data = wide_list(("known@example.jp", "🍣" * 500))
    planned = imports.plan(ports, MARKETER, data, "wide.csv", OPTIONS)
    (row,) = planned.plan.rows
    assert (row.action, row.reason_code) == ("rejected", "row_too_large")
    record, _ = imports.run(ports, MARKETER, data, "wide.csv", OPTIONS)
    assert record.status == "applied" and record.counts["rejected"] == 1


def test_a_lead_measured_just_under_the_limit_is_stored(aws: AwsStack) -> None:
    # The plan's measure counts at least what the store is refused for: a lead it lets
    # through, however close to the limit, is written
    leads = services.lead_repository(aws.settings())
    at = "2026-12-04T01:00:00.000Z"

    def lead_of(tail: int) -> Lead:
        fields = {f"f{n}": FieldValue(LONG, Channel.IMPORT, at) for n in range(190)}
        fields["tail"] = FieldValue("x" * tail, Channel.IMPORT, at)
        return Lead("lead_near", "near@example.jp", fields, ["import"], set(), "lead", at, at)

    short = ITEM_BYTES - leads.lead_item_bytes(lead_of(0))
    near = lead_of(short)
    assert leads.lead_item_bytes(near) == ITEM_BYTES
    lead_to_item(bind_tables(aws.settings()), near).save()
    assert leads.get_lead("lead_near") is not None
