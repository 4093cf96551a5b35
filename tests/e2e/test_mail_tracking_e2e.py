"""Mail opens and clicks on the running local runtime: scanners kept apart, people counted."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import RunningTsunagu, tracked_links
from tests.support.runtime import wait_for

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
STREAM_WAIT_SECONDS = 120
"""A bound on the runtime's stream pollers applying an event (a broken run, not a measure)."""


def timeline(tsunagu: RunningTsunagu, email: str) -> list[dict[str, Any]]:
    shown = tsunagu.cli("leads", "timeline", email, "--json")
    assert shown.returncode == 0, shown.stderr
    events: list[dict[str, Any]] = json.loads(shown.stdout)
    return events


def test_a_scanner_burst_is_automated_and_a_person_counts(tsunagu: RunningTsunagu) -> None:
    email = "aoi.mori@example.jp"
    assert tsunagu.post_json("/forms/demo/submissions", {"email": email})[0] == 201

    # Given a mail just delivered, When a gateway follows every link within a second
    fresh = tracked_links(tsunagu, email)
    for link in fresh["links"]:
        status, headers, _ = tsunagu.request(
            "GET", link.removeprefix(tsunagu.api_url), headers={"user-agent": CHROME}
        )
        assert status == 302
    # And a person clicks an hour after another mail arrived
    later = tracked_links(tsunagu, email, "--sent-seconds-ago", "3600")
    status, headers, _ = tsunagu.request(
        "GET", later["links"][0].removeprefix(tsunagu.api_url), headers={"user-agent": CHROME}
    )

    # Then the person is redirected to the real destination
    assert status == 302
    assert headers["Location"] == "https://www.example.com/pricing"
    clicks = [e for e in timeline(tsunagu, email) if e["type"] == "link_clicked"]
    by_message = {
        m: [c for c in clicks if c["message_id"] == m] for m in {c["message_id"] for c in clicks}
    }
    burst = by_message[fresh["message_id"]]
    assert len(burst) == 2
    assert all(c["automated"] for c in burst)
    assert all("too_soon_after_delivery" in c["reasons"] for c in burst)
    assert any("link_burst" in c["reasons"] for c in burst)
    (person,) = by_message[later["message_id"]]
    assert person["automated"] is False

    # And the lead's last activity comes to be the person's click, not a scanner's: route_events
    # sets it from the events stream, asynchronously as in AWS, so it is waited for (that a
    # scanner's click never moves it is tested in-process, test_tracking_mail_links.py)
    def last_activity() -> tuple[str, str] | None:
        lead = json.loads(tsunagu.cli("leads", "get", email).stdout)
        seen = (lead["last_activity_type"], lead["last_activity_at"])
        return seen if seen == ("link_clicked", person["at"]) else None

    wait_for(last_activity, timeout=STREAM_WAIT_SECONDS, what="the person's click as last activity")


def other_first_character(text: str) -> str:
    return ("B" if text[0] == "A" else "A") + text[1:]


def test_forged_links_redirect_nowhere(tsunagu: RunningTsunagu) -> None:
    email = "forge@example.com"
    assert tsunagu.post_json("/forms/demo/submissions", {"email": email})[0] == 201
    genuine = tracked_links(tsunagu, email, "--sent-seconds-ago", "3600")["links"][0]
    key_id, payload, signature = genuine.rsplit("/", 1)[1].split(".")
    forged_paths = [
        # The first character changed: base64's last one may carry unused bits.
        f"/c/{key_id}.{other_first_character(payload)}.{signature}",
        f"/c/{key_id}.{payload}.{other_first_character(signature)}",
        "/c/https://evil.example.net",
        f"/c/{key_id}.{payload}.{signature}?url=https://evil.example.net",
    ]
    for path in forged_paths[:3]:
        status, headers, _ = tsunagu.request("GET", path)
        assert status == 404, path
        assert "Location" not in headers
    # A genuine token with a hostile query still goes only where it was signed to go
    status, headers, _ = tsunagu.request("GET", forged_paths[3])
    assert headers["Location"] == "https://www.example.com/pricing"


def test_the_open_pixel(tsunagu: RunningTsunagu) -> None:
    email = "pixel@example.com"
    assert tsunagu.post_json("/forms/demo/submissions", {"email": email})[0] == 201
    pixel = tracked_links(tsunagu, email, "--sent-seconds-ago", "600")["open_pixel"]

    status, headers, body = tsunagu.request(
        "GET", pixel.removeprefix(tsunagu.api_url), headers={"user-agent": "Mozilla/5.0"}
    )
    bad_status, _, bad_body = tsunagu.request("GET", "/o/not-a-token.gif")

    assert (status, bad_status) == (200, 200)
    assert body.startswith(b"GIF89a") and bad_body.startswith(b"GIF89a")
    assert headers["Content-Type"] == "image/gif"
    (opened,) = [e for e in timeline(tsunagu, email) if e["type"] == "mail_opened"]
    assert opened["automated"] is True
    assert opened["reasons"] == ["apple_privacy_proxy"]
