"""A new user's first minutes: `make up`, post the demo form, look the lead up."""

from __future__ import annotations

import getpass
import json
import shlex
import time
from typing import Any
from urllib.parse import urlencode

from tests.e2e.conftest import RunningTsunagu, start_tsunagu
from tests.support.runtime import move_clock


def wait_for(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_startup_prints_where_everything_is(tsunagu: RunningTsunagu) -> None:
    banner = "".join(tsunagu.output)
    assert f"{tsunagu.api_url}/_local/demo" in banner
    assert f"{tsunagu.api_url}/_local/mail" in banner
    assert "API:" in banner


def test_the_demo_page_carries_the_form(tsunagu: RunningTsunagu) -> None:
    status, _, body = tsunagu.request("GET", "/_local/demo")
    page = body.decode()
    assert status == 200
    assert 'action="/forms/demo/submissions"' in page
    for field in ('name="email"', 'name="name"', 'name="company"', 'name="consent"'):
        assert field in page


def test_json_post_creates_then_updates_one_lead(tsunagu: RunningTsunagu) -> None:
    payload = {"email": "yuki.kato@example.jp", "name": "Yuki Kato", "consent": True}

    first_status, first = tsunagu.post_json("/forms/demo/submissions", payload)
    second_status, second = tsunagu.post_json("/forms/demo/submissions", payload)

    # Answered alike: the public form tells no caller whether an address is a lead already
    assert (first_status, second_status) == (201, 201)
    assert first["lead_id"] != second["lead_id"]

    shown = tsunagu.cli("leads", "get", "Yuki.Kato@example.jp")
    assert shown.returncode == 0, shown.stderr
    lead = json.loads(shown.stdout)
    assert lead["lead_id"] == first["lead_id"]
    assert lead["consent"] == {"marketing": "opted_in"}
    # Each ticked box is its own act of consent, kept as its own evidence.
    evidence = lead["consent_evidence"]
    assert len(evidence) == 2
    assert all(e["text_version"] == "2026-11" and e["ip"] == "127.0.0.1" for e in evidence)


def test_events_reach_route_events_through_the_stream(tsunagu: RunningTsunagu) -> None:
    status, _ = tsunagu.post_json("/forms/demo/submissions", {"email": "mio@example.com"})
    assert status == 201

    def activity_recorded() -> bool:
        shown = tsunagu.cli("leads", "get", "mio@example.com")
        return json.loads(shown.stdout).get("last_activity_type") == "form_submitted"

    wait_for(activity_recorded)


def test_a_browser_form_post_gets_its_303(tsunagu: RunningTsunagu) -> None:
    body = urlencode(
        {"email": "ren@example.com", "name": "Ren", "consent": "on", "website": ""}
    ).encode()
    status, headers, _ = tsunagu.request(
        "POST",
        "/forms/demo/submissions",
        body,
        {
            "content-type": "application/x-www-form-urlencoded",
            "accept": "text/html,application/xhtml+xml",
            "origin": tsunagu.api_url,
        },
    )
    assert status == 303
    assert headers["Location"] == f"{tsunagu.api_url}/_local/thanks"


def test_bad_input_over_http_is_refused_and_stores_nothing(tsunagu: RunningTsunagu) -> None:
    cases = [
        ("POST", b'{"email": ', "application/json", {}, 400),
        ("POST", b"email=a@example.com", "text/plain", {}, 415),
        ("POST", b'{"email": "nobody"}', "application/json", {}, 422),
        ("POST", b"x" * (1024 * 1024), "application/json", {}, 413),
        (
            "POST",
            b'{"email": "x@example.com"}',
            "application/json",
            {"origin": "https://evil.example.net"},
            403,
        ),
    ]
    for method, body, content_type, extra, expected in cases:
        status, _, answer = tsunagu.request(
            method, "/forms/demo/submissions", body, {"content-type": content_type, **extra}
        )
        assert status == expected, answer
        assert json.loads(answer)["message"]
    status, _, _ = tsunagu.request(
        "POST",
        "/forms/nope/submissions",
        b'{"email": "x@example.com"}',
        {"content-type": "application/json"},
    )
    assert status == 404
    missing = tsunagu.cli("leads", "get", "x@example.com")
    assert missing.returncode == 1 and "no lead" in missing.stderr


def test_forms_are_managed_with_the_cli(tsunagu: RunningTsunagu) -> None:
    definition = {
        "form_id": "seminar-2026-12",
        "name": "December seminar",
        "fields": [
            {"name": "email", "type": "email", "required": True},
            {"name": "company", "required": True},
        ],
        "allowed_origins": ["https://www.example.com"],
        "source": "seminar",
    }
    form_file = tsunagu.workdir / "seminar.json"
    form_file.write_text(json.dumps(definition))

    created = tsunagu.cli("forms", "create", "--file", str(form_file))
    assert created.returncode == 0, created.stderr
    again = tsunagu.cli("forms", "create", "--file", str(form_file))
    assert again.returncode == 1 and "--replace" in again.stderr
    listed = tsunagu.cli("forms", "list")
    assert "seminar-2026-12" in listed.stdout and "demo" in listed.stdout

    status, _ = tsunagu.post_json(
        "/forms/seminar-2026-12/submissions", {"email": "sora@example.com", "company": "Example"}
    )
    assert status == 201

    form_file.write_text(json.dumps({**definition, "fields": []}))
    invalid = tsunagu.cli("forms", "create", "--file", str(form_file), "--replace")
    assert invalid.returncode == 1 and "fields" in invalid.stderr


def test_a_change_at_the_cli_is_in_the_audit_log_with_who_and_what(
    tsunagu: RunningTsunagu,
) -> None:
    status, _ = tsunagu.post_json(
        "/forms/demo/submissions", {"email": "audit.me@example.jp", "consent": True}
    )
    assert status == 201
    changed = tsunagu.cli("leads", "set", "audit.me@example.jp", "--stage", "sql", "--tag", "vip")
    assert changed.returncode == 0, changed.stderr

    listed = tsunagu.cli("audit", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = [x for x in listed.stdout.splitlines() if "leads.update" in x and "vip" in x]
    assert f"local:{getpass.getuser()} [admin]" in line  # the operator, as the machine knows it
    assert "{'stage': 'lead', 'tags': []} -> {'stage': 'sql', 'tags': ['vip']}" in line
    exported = tsunagu.cli("audit", "list", "--csv")
    assert exported.stdout.startswith("\ufeffat,user_id,email,role,via,")
    assert "leads.update" in exported.stdout

    # A rules change too: who lowered the MQL threshold, from what to what
    rules = json.loads(tsunagu.cli("qualification", "show").stdout)
    rules_file = tsunagu.workdir / "rules.json"
    rules_file.write_text(json.dumps({"scoring": {**rules["scoring"], "mql_threshold": 55}}))
    saved = tsunagu.cli("qualification", "set", "--file", str(rules_file))
    assert saved.returncode == 0 and "MQL at 55" in saved.stdout, saved.stderr
    rules_file.write_text(json.dumps({"minimum_grade": "Z"}))
    refused = tsunagu.cli("qualification", "set", "--file", str(rules_file))
    assert refused.returncode == 1 and "minimum_grade" in refused.stderr
    [rules_line] = [
        x for x in tsunagu.cli("audit", "list").stdout.splitlines() if "qualification.set" in x
    ]
    # Only what changed, named by its path: not the whole scoring sheet before and after
    assert "{'scoring.mql_threshold': 70} -> {'scoring.mql_threshold': 55}" in rules_line
    # A listing cut by --limit says so; one that holds every entry does not
    assert (
        "older entries in that range are not shown"
        in tsunagu.cli("audit", "list", "--limit", "1").stdout
    )
    assert "not shown" not in listed.stdout
    cut = tsunagu.cli("audit", "list", "--limit", "1", "--csv")
    assert cut.stdout.count("\n") == 2  # the header and one entry
    assert "older entries in that range are not in the file" in cut.stderr
    # And the next file goes on from the entry the hint names, as the API's next_before does
    hint = cut.stderr.split("the same with ", 1)[1].split(",", 1)[0]
    option, key = shlex.split(hint)
    assert option == "--before"
    after = tsunagu.cli("audit", "list", "--limit", "1", "--csv", "--before", key)
    assert after.returncode == 0, after.stderr
    first, second = cut.stdout.splitlines()[1], after.stdout.splitlines()[1]
    assert first != second and second[:24] <= first[:24]  # older, or of the same millisecond
    unclear = tsunagu.cli("audit", "list", "--before", "yesterday")
    assert unclear.returncode == 1 and "before" in unclear.stderr, unclear
    # The timeline too, on stderr when stdout is JSON for a script
    one = tsunagu.cli("leads", "timeline", "audit.me@example.jp", "--limit", "1", "--json")
    assert len(json.loads(one.stdout)) == 1
    assert "earlier events are not shown: raise --limit (now 1)" in one.stderr


def sent_to(running: RunningTsunagu, email: str) -> list[dict[str, Any]]:
    status, _, body = running.request("GET", "/_local/mail?format=json")
    assert status == 200
    return [m for m in json.loads(body) if email in " ".join(m["recipients"])]


def test_data_is_kept_across_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = start_tsunagu(tmp_path, "--virtual-time")
    status, created = first.post_json(
        "/forms/demo/submissions", {"email": "kept@example.com", "consent": True}
    )
    assert status == 201
    move_clock(first.api_url, {"settle": True}, timeout=60)  # the welcome mail goes out
    [welcome] = sent_to(first, "kept@example.com")
    assert first.stop() == 0

    second = start_tsunagu(tmp_path)
    try:
        shown = second.cli("leads", "get", "kept@example.com")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["lead_id"] == created["lead_id"]
        again_status, again = second.post_json(
            "/forms/demo/submissions", {"email": "kept@example.com"}
        )
        assert again_status == 201 and again["lead_id"] != created["lead_id"]
        shown = second.cli("leads", "get", "kept@example.com")
        assert json.loads(shown.stdout)["lead_id"] == created["lead_id"]  # still the one lead
        # And the mail viewer still shows the mail sent before the restart, with its send time
        assert welcome in sent_to(second, "kept@example.com")
        assert welcome["sent_at"] is not None
    finally:
        assert second.stop() == 0
