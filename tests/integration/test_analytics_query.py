"""The README's analytics query, as printed there, on a month's edges in Japan: the clicks it
counts are those of December in Japan, whatever UTC day their files are under, including
clicks of mails sent in November (the partition filter it documents is checked against the
shorter one it warns of)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tests.conftest import AwsStack
from tests.integration.test_report_counters import JST, WELCOME_NURTURE, History
from tests.support.analytics_readme import readme_query
from tests.support.leads import new_stream_records
from tests.unit.test_cli_analytics import DESTINATION
from tsunagu.analytics.query import run_query
from tsunagu.analytics.rows import COLUMNS, encode_row, row_from_record
from tsunagu_local.firehose import ParquetDestination


def test_the_readme_query_counts_japans_december_from_the_files_it_reads(
    aws: AwsStack, tmp_path: Path
) -> None:
    # Given a's welcome mail of 25 November and b's of 31 December, and people's clicks on them
    # at the month's edges in Japan (UTC day in brackets: the file's `date`)
    h = History(aws)
    h.at(datetime(2026, 11, 25, 10, 0, tzinfo=JST))
    mail_a = h.send("a", 1, WELCOME_NURTURE)
    h.at(datetime(2026, 12, 31, 9, 0, tzinfo=JST))
    mail_b = h.send("b", 1, WELCOME_NURTURE)
    for mail, at in (
        (mail_a, datetime(2026, 11, 30, 23, 0, tzinfo=JST)),  # November (Nov 30): not counted
        (mail_a, datetime(2026, 12, 1, 8, 30, tzinfo=JST)),  # Tue 1 Dec 08:xx (Nov 30)
        (mail_b, datetime(2026, 12, 31, 23, 30, tzinfo=JST)),  # Thu 31 Dec 23:xx (Dec 31)
        (mail_b, datetime(2027, 1, 1, 0, 30, tzinfo=JST)),  # January (Dec 31): not counted
    ):
        h.at(at)
        h.click(mail, "pricing")
    h.settle_clicks()
    # exported as Firehose writes them: a file per UTC day
    destination = ParquetDestination.from_configuration(
        tmp_path, DESTINATION, [(c.name, c.type) for c in COLUMNS]
    )
    rows = map(row_from_record, new_stream_records(aws, "EventsTable"))
    destination.put([encode_row(row) for row in rows if row])

    # When the README's query runs, as printed
    query = readme_query()
    answer = run_query(tmp_path, query)

    # Then it counts December's two clicks in Japan, by weekday and hour in Japan
    assert answer.rows == [(2, 8, 1, 1), (4, 23, 1, 1)]
    # and the filter on `date` it documents is the one needed: December's UTC days alone lose
    # the first morning in Japan (under Nov 30), and the clicks of November's mails
    documented = "WHERE date BETWEEN '2026-10-31' AND '2027-01-01'"
    assert documented in query
    shorter = query.replace(documented, "WHERE date BETWEEN '2026-12-01' AND '2026-12-31'")
    assert run_query(tmp_path, shorter).rows == [(4, 23, 1, 1)]
