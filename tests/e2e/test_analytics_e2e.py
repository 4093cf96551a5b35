"""The events in SQL, on the running local runtime: what people and machines did through the
product (form posts, a journey's mail, opens, clicks, a scanner's burst re-judged) ends up as
Parquet under the runtime's .tsunagu/analytics/, and `tsunagu analytics query` answers the
README's query with the figures worked out by hand below.

On virtual time: nothing here waits on the wall clock; each step happens at a simulated instant
the test chose, so the weekdays and hours in Japan are known in advance.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import RunningTsunagu, start_on_virtual_time
from tests.support import runtime as runtime_support
from tests.support.analytics_readme import readme_answer, readme_query
from tsunagu.clock import parse_instant

CLOCK_START = "2026-12-01T01:00:00Z"
"""Tuesday 10:00 in Tokyo."""
CLOCK_TIMEOUT = 180.0
"""Real seconds the runtime may take to settle after a move of the clock (a broken run)."""
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SCANNER = "python-requests/2.32.3"


@pytest.fixture(scope="module")
def tsunagu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTsunagu]:
    running = start_on_virtual_time(tmp_path_factory.mktemp("analytics"), CLOCK_START)
    yield running
    if running.process.poll() is None:
        running.stop()


def move_clock(tsunagu: RunningTsunagu, **body: Any) -> datetime:
    state = runtime_support.move_clock(tsunagu.api_url, body, timeout=CLOCK_TIMEOUT)
    return parse_instant(state["now"])


def token_payload(url: str) -> dict[str, Any]:
    payload = url.rsplit("/", 1)[1].removesuffix(".gif").split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def welcome_mail(tsunagu: RunningTsunagu, email: str) -> dict[str, Any]:
    """The mail welcome_nurture sent the address: its message id, its two tracked links, and
    its open pixel, as the viewer shows them."""
    status, _, body = tsunagu.request("GET", "/_local/mail?format=json")
    assert status == 200
    (mail,) = [m for m in json.loads(body) if email in m["recipients"]]
    html = mail["html"]
    links = [u for u in re.findall(r'href="([^"]+/c/[^"]+)"', html) if token_payload(u)["k"] == "c"]
    (pixel,) = re.findall(r'src="([^"]+/o/[^"]+)"', html)
    assert len(links) == 2, links
    return {"message_id": token_payload(pixel)["m"], "links": links, "pixel": pixel}


def follow(tsunagu: RunningTsunagu, url: str, user_agent: str, status: int = 302) -> None:
    answer, _, _ = tsunagu.request(
        "GET", url.removeprefix(tsunagu.api_url), headers={"user-agent": user_agent}
    )
    assert answer == status, url


def query(tsunagu: RunningTsunagu, sql: str, *options: str) -> str:
    done = tsunagu.cli("analytics", "query", sql, *options)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def history(tsunagu: RunningTsunagu) -> dict[str, Any]:
    """What happens, Tuesday 1 December 2026 onwards (times in Tokyo):

    - 10:00 aoi, ren and sora download the white paper (the demo form): welcome_nurture mails
      each at once; a link scanner at ren's company follows ren's first link as it arrives;
    - 11:00 sora's mail gateway follows both of sora's links three seconds apart: the first
      click looked like a person's until the second came, and is stored again as automated;
    - 12:00 aoi opens the mail and clicks its first link, ren clicks it too, and aoi clicks a
      link of a mail no journey sent;
    - Wednesday 19:30 aoi clicks the mail's second link.

    So people's clicks on the journey's mails: Tuesday 12 o'clock two (aoi, ren), Wednesday 19
    o'clock one (aoi)."""
    people = {"aoi": "aoi.analytics@example.jp", "ren": "ren.analytics@example.jp"}
    people["sora"] = "sora.analytics@example.com"
    for email in people.values():
        status, _ = tsunagu.post_json(
            "/forms/demo/submissions", {"email": email, "name": "Analyst", "consent": True}
        )
        assert status == 201
    move_clock(tsunagu, settle=True)
    mails = {name: welcome_mail(tsunagu, email) for name, email in people.items()}
    follow(tsunagu, mails["ren"]["links"][0], SCANNER)

    move_clock(tsunagu, to="2026-12-01T02:00:00Z")
    follow(tsunagu, mails["sora"]["links"][0], CHROME)
    move_clock(tsunagu, by="3s")
    follow(tsunagu, mails["sora"]["links"][1], CHROME)

    move_clock(tsunagu, to="2026-12-01T03:00:00Z")
    follow(tsunagu, mails["aoi"]["pixel"], CHROME, status=200)
    follow(tsunagu, mails["aoi"]["links"][0], CHROME)
    follow(tsunagu, mails["ren"]["links"][0], CHROME)
    other = tsunagu.cli(
        "tracking", "links", people["aoi"], "--url", "https://www.example.com/pricing",
        "--message", "msg_not_from_a_journey", "--api", tsunagu.api_url,
        "--sent-seconds-ago", "7200",
    )  # fmt: skip
    assert other.returncode == 0, other.stderr
    follow(tsunagu, json.loads(other.stdout)["links"][0], CHROME)

    move_clock(tsunagu, to="2026-12-02T10:30:00Z")
    follow(tsunagu, mails["aoi"]["links"][1], CHROME)
    move_clock(tsunagu, by="2m")  # every click settled
    return {"people": people, "mails": mails}


def test_the_events_are_parquet_files_by_day_under_the_state_folder(
    tsunagu: RunningTsunagu, history: dict[str, Any]
) -> None:
    events = tsunagu.workdir / ".tsunagu" / "analytics" / "events"
    days = sorted(p.name for p in events.iterdir())
    assert days[:2] == ["date=2026-12-01", "date=2026-12-02"]
    files = list(events.glob("date=*/*.parquet"))
    assert files and all(re.fullmatch(r"part-\d{5}\.parquet", f.name) for f in files)
    assert all(f.read_bytes()[:4] == b"PAR1" for f in files)


def test_the_readme_query_counts_peoples_clicks_by_weekday_and_hour_in_japan(
    tsunagu: RunningTsunagu, history: dict[str, Any]
) -> None:
    answer = query(tsunagu, readme_query())
    assert answer == readme_answer()
    assert json.loads(query(tsunagu, readme_query(), "--format", "json")) == [
        {"weekday": 2, "hour_jst": 12, "clicks": 2, "people": 2},
        {"weekday": 3, "hour_jst": 19, "clicks": 1, "people": 1},
    ]


def test_each_event_is_a_row_and_a_rejudged_click_a_second_one(
    tsunagu: RunningTsunagu, history: dict[str, Any]
) -> None:
    counts = query(
        tsunagu,
        "SELECT type, count(DISTINCT event_id) AS events, count(*) FILTER (WHERE change = "
        "'modify') AS modified FROM events WHERE type IN ('form_submitted', 'mail_opened', "
        "'link_clicked') GROUP BY type ORDER BY type",
        "--format",
        "csv",
    )
    # 3 form posts; aoi's open; 7 clicks (ren's scanner, sora's 2, aoi's 3, ren's). Each of
    # the 5 clicks that looked like a person's when it came was stored again once it settled
    # (tsunagu.tracking.settling), and sora's first once more when the second showed the burst
    assert counts.splitlines() == [
        "type,events,modified",
        "form_submitted,3,0",
        "link_clicked,7,6",
        "mail_opened,1,0",
    ]
    rejudged = json.loads(
        query(
            tsunagu,
            "SELECT change, automated, reasons FROM events WHERE event_id IN (SELECT event_id "
            "FROM events WHERE type = 'link_clicked' GROUP BY event_id HAVING bool_or(automated)"
            " AND bool_or(NOT automated)) ORDER BY sequence_number",
            "--format",
            "json",
        )
    )
    # sora's first click: a person's as it came, then a machine's, and so it stands
    assert [(r["change"], r["automated"]) for r in rejudged][:2] == [
        ("insert", False),
        ("modify", True),
    ]
    assert all(r["automated"] and "link_burst" in r["reasons"] for r in rejudged[1:])
    # The journey's mails name it; the opens and clicks name the mail
    sent = json.loads(
        query(
            tsunagu,
            "SELECT DISTINCT journey_id, template_id FROM events WHERE type = 'mail_sent' "
            "AND message_id IN ("
            + ", ".join(f"'{m['message_id']}'" for m in history["mails"].values())
            + ")",
            "--format",
            "json",
        )
    )
    assert sent == [{"journey_id": "welcome_nurture", "template_id": "welcome"}]
    # No address, name or IP address reaches the rows (the form's name, the addresses, the
    # mail's greeting, the clicks' network address)
    leaked = query(
        tsunagu,
        "SELECT count(*) AS n FROM events WHERE properties LIKE '%analytics@example.%' OR "
        "properties LIKE '%Analyst%' OR properties LIKE '%\"ip\"%' OR url LIKE '%@%'",
        "--format",
        "csv",
    )
    assert leaked.splitlines() == ["n", "0"]
    # (the same check sees what is there: the clicks' user agents are kept)
    agents = "SELECT count(*) AS n FROM events WHERE properties LIKE '%user_agent%'"
    assert int(query(tsunagu, agents, "--format", "csv").splitlines()[1]) > 0


def test_a_query_duckdb_refuses_says_why_and_exits_2(tsunagu: RunningTsunagu) -> None:
    done = tsunagu.cli("analytics", "query", "SELECT nothing_here FROM events")
    assert done.returncode == 2
    assert "nothing_here" in done.stderr and "Traceback" not in done.stderr
