"""Importing a lead list for real: rows per second through the real path against a bare
BatchWriteItem of the same leads, and the write requests per new lead (counted exactly).

The real path is ``tsunagu.commands.imports.run`` (what ``tsunagu imports run`` and
``POST /admin/imports`` call): read the file, plan every row against the stored leads (read
100 addresses to a BatchGetItem), then capture transactions of 14 rows each (per row: the lead,
its address, the ``lead_imported`` event, its consent) and the rows' records for undo. The
floor writes the same leads' items alone, 25 to a BatchWriteItem, with no address claim, event,
consent or plan. Both run in this process on moto, one after the other in the same run, so the
ratio compares like with like; the goal (at least a third of the floor) is printed as met or
not met, never asserted. On moto the cost follows the items written: the floor writes one per
lead, the real run about six (lead, address, event, consent evidence and state, the row's record
for undo, its submission key), which bounds the ratio well below a third.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter

from tests.benchmarks.test_aws_requests import recording_aws_calls
from tests.conftest import AwsStack, moto_client
from tests.support.bench_report import QUICK, BenchReport
from tsunagu import services
from tsunagu.commands import imports
from tsunagu.commands.access import Actor, Role
from tsunagu.imports.plan import ConsentColumn, ImportOptions
from tsunagu.leads.merge import Channel

TITLE = "imports: the real run against a bare BatchWriteItem"
ROWS = 1_000 if QUICK else 10_000
GOAL_SHARE_OF_FLOOR = 1 / 3
MARKETER = Actor(user_id="m@example.com", role=Role.MARKETER, email="m@example.com", via="cli")


def sheet(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["メールアドレス", "氏名", "会社名", "部署", "役職", "配信希望"])
    for n in range(rows):
        writer.writerow(
            [f"visitor{n:06d}@example.jp", f"来場 {n}", f"株式会社サンプル{n % 500}", "営業部",
             "部長", "希望する" if n % 3 else "希望しない"]
        )  # fmt: skip
    return out.getvalue().encode("cp932")


def test_import_rows_per_second_against_the_floor(aws: AwsStack, bench_report: BenchReport) -> None:
    settings = aws.settings()
    ports = services.import_commands(settings)
    options = ImportOptions(
        Channel.TRADE_SHOW,
        consent=ConsentColumn("配信希望", frozenset({"希望する"}), frozenset({"希望しない"})),
    )
    data = sheet(ROWS)
    labels = {settings.leads_table: "Leads", settings.imports_table: "Imports"}
    with recording_aws_calls(labels) as calls:
        started = time.perf_counter()
        record, _ = imports.run(ports, MARKETER, data, "展示会.csv", options)
        real_seconds = time.perf_counter() - started
    assert record.counts["create"] == ROWS

    # The floor: the same leads' items (as the run stored them), 25 to a BatchWriteItem
    dynamodb = moto_client("dynamodb")
    stored = [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=settings.leads_table)
        for item in page["Items"]
    ]
    floor_table = f"{settings.leads_table}-floor"
    description = dynamodb.describe_table(TableName=settings.leads_table)["Table"]
    dynamodb.create_table(
        TableName=floor_table,
        KeySchema=description["KeySchema"],
        AttributeDefinitions=[
            a for a in description["AttributeDefinitions"]
            if a["AttributeName"] in {k["AttributeName"] for k in description["KeySchema"]}
        ],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    started = time.perf_counter()
    for start in range(0, len(stored), 25):
        requests = [{"PutRequest": {"Item": item}} for item in stored[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={floor_table: requests})
    floor_seconds = time.perf_counter() - started

    writes = Counter(
        op for _, op, _ in calls.entries
        if op in {"TransactWriteItems", "BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem"}
    )  # fmt: skip
    real_rate, floor_rate = ROWS / real_seconds, len(stored) / floor_seconds
    share = real_rate / floor_rate
    bench_report.add(
        TITLE,
        f"{ROWS:,} new leads from one cp932 CSV (trade show, consent column), moto in-process"
        + ("; a quick run: make bench takes 10,000" if QUICK else ""),
        f"  the real run: {real_seconds:.1f} s, {real_rate:,.0f} rows/s (plan and write)",
        f"  the floor, BatchWriteItem of the same lead items: {floor_rate:,.0f} rows/s",
        f"  the real run is {share:.2f} of the floor (goal >= {GOAL_SHARE_OF_FLOOR:.2f}:"
        f" {'met' if share >= GOAL_SHARE_OF_FLOOR else 'NOT MET'})",
        f"  write requests: {dict(writes)}; per new lead {sum(writes.values()) / ROWS:.3f}"
        " (14 rows to a transaction; the rows' records for undo 25 to a BatchWriteItem; the"
        " import's record twice)",
    )
