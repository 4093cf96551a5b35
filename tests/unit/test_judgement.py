"""People or machines: each rule, with signals as real traffic shows them."""

from __future__ import annotations

import pytest

from tsunagu.tracking.judgement import Signals, judge, prefetch_header, rejudge

# User agents as they appear in access logs (invented hosts, real shapes).
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"
IPHONE_MAIL = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
BARRACUDA = "Mozilla/5.0 (compatible; Barracuda Sentinel/1.0; +http://www.barracuda.com)"
MIMECAST = "Mozilla/5.0 (X11; Linux x86_64) Mimecast URL Protect"
PYTHON = "python-requests/2.32.3"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.71 Safari/537.36"
)


def click(**changes: object) -> Signals:
    values: dict[str, object] = {
        "kind": "click",
        "method": "GET",
        "user_agent": CHROME_WINDOWS,
        "ip": "203.0.113.24",
        "seconds_since_sent": 3600.0,
    }
    values.update(changes)
    return Signals(**values)  # type: ignore[arg-type]


def test_a_person_clicking_an_hour_later_counts() -> None:
    assert judge(click()).automated is False


@pytest.mark.parametrize("agent", [CHROME_WINDOWS, OUTLOOK_DESKTOP, IPHONE_MAIL])
def test_mail_readers_and_browsers_are_people(agent: str) -> None:
    assert not judge(click(user_agent=agent)).automated


@pytest.mark.parametrize("agent", [BARRACUDA, MIMECAST, PYTHON, HEADLESS, "", "curl/8.5.0"])
def test_scanners_that_name_themselves(agent: str) -> None:
    assert judge(click(user_agent=agent)).reasons == ["scanner_user_agent"]


def test_safe_links_pattern_right_after_delivery() -> None:
    # Defender Safe Links presents a browser user agent, but arrives seconds after delivery
    # and follows every link of the mail at once.
    first = judge(click(seconds_since_sent=2.1))
    second = judge(click(seconds_since_sent=2.4, other_links_clicked_just_before=1))
    assert first.reasons == ["too_soon_after_delivery"]
    assert second.reasons == ["too_soon_after_delivery", "link_burst"]


def test_a_burst_later_is_still_a_burst() -> None:
    assert judge(click(other_links_clicked_just_before=3)).reasons == ["link_burst"]


def test_one_link_clicked_again_within_a_second_is_a_burst() -> None:
    assert judge(click(same_link_clicked_just_before=1)).reasons == ["link_burst"]
    # the first of the two, re-judged when the second came
    assert judge(click(same_link_clicked_just_after=1)).reasons == ["link_burst"]


def test_a_first_click_re_judged_by_the_burst_after_it_is_a_machine() -> None:
    assert judge(click(other_links_clicked_just_after=1)).reasons == ["link_burst"]


def test_head_requests_and_prefetch_are_machines() -> None:
    assert "head_request" in judge(click(method="HEAD")).reasons
    header = prefetch_header({"sec-purpose": "prefetch;prerender"})
    assert header == "sec-purpose: prefetch;prerender"
    assert "prefetch_header" in judge(click(prefetch=header)).reasons
    assert prefetch_header({"accept": "text/html"}) is None


def test_the_honeypot_link_is_always_a_machine() -> None:
    assert judge(click(honeypot=True)).reasons == ["honeypot_link"]


def test_apple_privacy_protection_opens() -> None:
    apple = Signals("open", "GET", "Mozilla/5.0", "17.58.101.12", 600.0)
    assert judge(apple).reasons == ["apple_privacy_proxy"]
    # A click from Apple's network is a person using Safari on an Apple device
    assert not judge(click(ip="17.58.101.12")).automated


def test_gmail_image_proxy_is_a_person_opening() -> None:
    gmail = Signals("open", "GET", GMAIL_PROXY, "66.249.84.1", 900.0)
    assert judge(gmail).automated is False


def test_several_reasons_are_all_kept() -> None:
    reasons = judge(click(method="HEAD", user_agent=PYTHON, seconds_since_sent=0.5)).reasons
    assert reasons == ["head_request", "scanner_user_agent", "too_soon_after_delivery"]


def test_stored_signals_can_be_judged_again() -> None:
    stored = click(user_agent=BARRACUDA).as_dict()
    assert rejudge({**stored, "unknown_future_signal": 1}).reasons == ["scanner_user_agent"]
