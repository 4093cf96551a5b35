"""The clock and the typed settings."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tsunagu.clock import ScaledClock, SystemClock, clock_from, isoformat, parse_instant
from tsunagu.settings import Settings, SettingsError, get_settings

ENV = {
    "AWS_REGION": "ap-northeast-1",
    "TSUNAGU_STAGE": "dev",
    "TSUNAGU_LEADS_TABLE": "leads",
    "TSUNAGU_LEAD_IDENTITIES_TABLE": "identities",
    "TSUNAGU_EVENTS_TABLE": "events",
    "TSUNAGU_CONSENT_TABLE": "consent",
    "TSUNAGU_FORMS_TABLE": "forms",
    "TSUNAGU_IDEMPOTENCY_TABLE": "idempotency",
    "TSUNAGU_SITES_TABLE": "sites",
    "TSUNAGU_TRACKING_SECRET_ARN": "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:k",
    "TSUNAGU_TEMPLATES_TABLE": "templates",
    "TSUNAGU_JOURNEY_WAITS_TABLE": "waits",
    "TSUNAGU_JOURNEYS_TABLE": "journeys",
    "TSUNAGU_QUALIFICATION_TABLE": "qualification",
    "TSUNAGU_LEAD_TERMS_TABLE": "lead-terms",
}


def test_scaled_clock_runs_faster_from_its_start() -> None:
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    clock = ScaledClock(start, epoch=time.time() - 2, scale=3600)
    elapsed_hours = (clock.now() - start).total_seconds() / 3600
    assert 1.9 < elapsed_hours < 2.5
    assert clock.real_seconds_until(start) == 0.0


def test_clock_from_settings() -> None:
    assert isinstance(clock_from(None, None, 1.0), SystemClock)
    assert isinstance(clock_from("2026-12-04T09:00:00Z", time.time(), 60), ScaledClock)


def test_timestamps_are_utc_iso_with_z() -> None:
    instant = parse_instant("2026-12-04T18:30:00+09:00")
    assert isoformat(instant) == "2026-12-04T09:30:00.000Z"
    assert parse_instant("2026-12-04T09:30:00").tzinfo is not None


def test_stored_timestamps_have_four_digit_years_and_sort_as_text() -> None:
    # strftime's %Y writes year 1 as "1" on Linux: "1-01-01T..." sorted after "2026-...".
    early = datetime(1, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert isoformat(early) == "0001-01-02T03:04:05.678Z"
    assert sorted([isoformat(datetime(2026, 1, 1, tzinfo=UTC)), isoformat(early)])[0].startswith(
        "0001"
    )


def test_settings_from_environment_round_trip() -> None:
    settings = Settings.from_environ(ENV)
    assert settings.leads_table == "leads"
    assert Settings.from_environ(settings.as_environ()) == settings


def test_missing_or_bad_settings_fail_at_cold_start() -> None:
    with pytest.raises(SettingsError):
        Settings.from_environ({k: v for k, v in ENV.items() if k != "TSUNAGU_LEADS_TABLE"})
    with pytest.raises(SettingsError):
        Settings.from_environ({**ENV, "TSUNAGU_STAGE": "Prod Stage!"})


def test_a_bad_setting_names_its_variable_and_what_is_wrong() -> None:
    # An operator reads this in the function's log: it must say which variable to fix.
    with pytest.raises(SettingsError) as refused:
        Settings.from_environ(
            {
                **{k: v for k, v in ENV.items() if k != "TSUNAGU_LEADS_TABLE"},
                "TSUNAGU_EVENT_RETENTION_DAYS": "a year",
                "TSUNAGU_MAX_SEND_RATE": "0",
                "TSUNAGU_SUBMISSIONS_PER_CLIENT": "lots",
                "TSUNAGU_ADMIN_ALLOWED_CIDRS": "203.0.113.0/24, office",
            }
        )
    assert refused.value.problems == [
        "leads_table (TSUNAGU_LEADS_TABLE): required",
        "event_retention_days (TSUNAGU_EVENT_RETENTION_DAYS): must be a whole number, not 'a year'",
    ]
    # Once every variable reads as its type, the values are checked against their bounds.
    with pytest.raises(SettingsError) as refused:
        Settings.from_environ(
            {
                **ENV,
                "TSUNAGU_EVENT_RETENTION_DAYS": "4000",
                "TSUNAGU_MAX_SEND_RATE": "0",
                "TSUNAGU_SUBMISSIONS_PER_CLIENT": "lots",
                "TSUNAGU_ADMIN_ALLOWED_CIDRS": "203.0.113.0/24, office",
            }
        )
    problems = dict(problem.split(": ", 1) for problem in refused.value.problems)
    assert problems.keys() == {
        "admin_allowed_cidrs (TSUNAGU_ADMIN_ALLOWED_CIDRS)",
        "max_send_rate (TSUNAGU_MAX_SEND_RATE)",
        "event_retention_days (TSUNAGU_EVENT_RETENTION_DAYS)",
        "submissions_per_client (TSUNAGU_SUBMISSIONS_PER_CLIENT)",
    }
    assert (
        "'office' does not appear to be"
        in problems["admin_allowed_cidrs (TSUNAGU_ADMIN_ALLOWED_CIDRS)"]
    )
    assert problems["max_send_rate (TSUNAGU_MAX_SEND_RATE)"] == "must be more than 0"
    assert problems["event_retention_days (TSUNAGU_EVENT_RETENTION_DAYS)"] == "must be at most 3650"
    assert (
        "is not a limit like" in problems["submissions_per_client (TSUNAGU_SUBMISSIONS_PER_CLIENT)"]
    )


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("TSUNAGU_TIME_SCALE", "nan"),  # compares false with every bound
        ("TSUNAGU_MAX_SEND_RATE", "inf"),
        ("TSUNAGU_STAGE", "dev\n"),  # a pattern's $ would let a trailing line break through
        ("TSUNAGU_BUSINESS_COUNTRY", "JP\n"),
        ("TSUNAGU_EVENT_RETENTION_DAYS", "３６５"),  # int() reads full-width digits
    ],
)
def test_a_setting_is_refused_where_a_lenient_read_would_pass_it(variable: str, text: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_environ({**ENV, variable: text})


@pytest.mark.parametrize("zone", ["Tokyo", "JST", "Asia/Tokio", "../etc/passwd", ""])
def test_a_time_zone_that_is_not_one_fails_at_cold_start_not_at_the_first_report(
    zone: str,
) -> None:
    with pytest.raises(SettingsError, match=r"TSUNAGU_DEFAULT_TIME_ZONE\): no such time zone"):
        Settings.from_environ({**ENV, "TSUNAGU_DEFAULT_TIME_ZONE": zone})
    berlin = Settings.from_environ({**ENV, "TSUNAGU_DEFAULT_TIME_ZONE": "Europe/Berlin"})
    assert berlin.default_time_zone == "Europe/Berlin"


def test_settings_built_in_code_are_checked_as_the_environment_is() -> None:
    settings = Settings.from_environ(ENV)
    with pytest.raises(SettingsError, match="time_scale"):
        replace(settings, time_scale=0)
    with pytest.raises(SettingsError, match=r"leads_table .* must be text, not int"):
        replace(settings, leads_table=7)
    with pytest.raises(SettingsError, match=r"soft_bounce_limit .* must be a number, not bool"):
        replace(settings, soft_bounce_limit=True)
    assert replace(settings, max_send_rate=5).max_send_rate == 5  # a whole number is a number


def test_settings_follow_each_functions_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The local runtime runs several functions in one process: each sees its own settings.
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    first = get_settings()
    assert get_settings() is first  # cached while the environment is the same
    monkeypatch.setenv("TSUNAGU_LEADS_TABLE", "other-leads")
    assert get_settings().leads_table == "other-leads"


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/hooks/tsunagu",
        "http://127.0.0.1:8123/leads",  # the local runtime's tests: a stub CRM on loopback
        "http://localhost:8123/leads",
        "",  # not configured: no push
    ],
)
def test_a_crm_push_url_is_https_or_loopback(url: str) -> None:
    assert Settings.from_environ({**ENV, "TSUNAGU_CRM_WEBHOOK_URL": url}).crm_webhook_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example.com/hooks/tsunagu",  # a lead's data in clear text over the internet
        "ftp://crm.example.com/",
        "https://",
        "crm.example.com/hooks",
    ],
)
def test_a_plain_http_crm_push_url_is_refused_at_cold_start(url: str) -> None:
    with pytest.raises(SettingsError, match="crm_webhook_url"):
        Settings.from_environ({**ENV, "TSUNAGU_CRM_WEBHOOK_URL": url})
