"""Rendering a mail: tracked links, pixel, honeypot, unsubscribe, text part, and the sandbox."""

from __future__ import annotations

import re

import pytest

from tsunagu.mail.render import (
    NO_TRACK,
    RenderedMail,
    RenderError,
    TrackingUrls,
    check_template,
    render_mail,
)
from tsunagu.mail.templates import MailTemplate

from .mail_fakes import make_template

CLICK_BASE = "https://t.example.com/c/"
OPEN_PIXEL = "https://t.example.com/o/open-token.gif"
HONEYPOT = "https://t.example.com/c/honeypot-token"
UNSUBSCRIBE = "https://t.example.com/u/unsubscribe-token"
API_URL = "https://t.example.com"


class Urls:
    """TrackingUrls whose click URLs say which link they stand for, and which are asked for."""

    def __init__(self) -> None:
        self.clicks: list[tuple[str, str]] = []

    def click(self, link_id: str, destination: str) -> str:
        self.clicks.append((link_id, destination))
        return f"{CLICK_BASE}{link_id}"

    def tracking(self) -> TrackingUrls:
        return TrackingUrls(self.click, OPEN_PIXEL, HONEYPOT, UNSUBSCRIBE, API_URL)


def render(html: str, *, lead: dict[str, str] | None = None, **template: object) -> RenderedMail:
    return render_mail(
        make_template(html=html, **template),
        lead={"email": "hanako@example.com", **(lead or {})},
        owner={},
        journey={},
        urls=Urls().tracking(),
    )


def hrefs(document: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', document)


# ------------------------------------------------------------------ links


def test_links_become_click_links_and_one_destination_is_one_link() -> None:
    # Given a template linking twice to the same page (once with an escaped ampersand)
    html = (
        '<p><a href="https://www.example.com/a?x=1&amp;y=2">資料</a></p>'
        '<p><a href="https://www.example.com/a?x=1&y=2">もう一度</a></p>'
        "<p><a href='https://www.example.com/b'>別のページ</a></p>"
    )
    # When it is rendered
    mail = render(html)
    # Then every link points at a click URL, and the same destination shares one link id
    assert mail.links == [
        ("l1", "https://www.example.com/a?x=1&y=2"),
        ("l2", "https://www.example.com/b"),
    ]
    assert f'href="{CLICK_BASE}l1">資料' in mail.html
    assert f'href="{CLICK_BASE}l1">もう一度' in mail.html
    assert f"href='{CLICK_BASE}l2'>別のページ" in mail.html
    assert "www.example.com" not in mail.html


def test_a_notrack_link_is_left_alone() -> None:
    mail = render(f'<p><a {NO_TRACK} href="https://www.example.com/private">非追跡</a></p>')
    assert '<a data-tsunagu-notrack href="https://www.example.com/private">' in mail.html
    assert mail.links == []
    # And the text part made from the HTML leaves it untracked too
    assert "(https://www.example.com/private)" in mail.text


def test_a_notrack_link_is_left_alone_whatever_the_attribute_order() -> None:
    mail = render(f'<p><a href="https://www.example.com/private" {NO_TRACK}>非追跡</a></p>')
    assert 'href="https://www.example.com/private"' in mail.html
    assert mail.links == []


@pytest.mark.parametrize("path", ["c", "u", "o", "C"])
def test_a_link_copied_from_an_earlier_mail_is_not_tracked_again(path: str) -> None:
    # Given a click, unsubscribe or open link of the same API copied from a mail Tsunagu sent
    # (its token names the lead that mail went to), the host written in capitals
    old = f"https://T.example.com/{path.lower()}/eyJ0IjoiYyJ9.OLD-LEADS-TOKEN"
    mail = render(f'<p><a href="{old}">前回のご案内</a></p><p>{old}</p>')
    # Then it is left as written in both parts: a second click link would record every
    # recipient's click as the earlier lead's
    assert mail.links == []
    assert f'href="{old}"' in mail.html
    assert f"{old}\n" in mail.text


def test_a_link_with_a_token_copied_by_the_apis_other_domain_is_not_tracked_again() -> None:
    # The API reached by another domain (a custom one beside execute-api): known by its token
    old = "https://www.example.com/u/k1.eyJ0IjoidSIsImwiOiJsZWFkXzEifQ.c2lnbmF0dXJlMTIzNDU2Nzg5"
    mail = render(f'<p><a href="{old}">配信停止</a></p>')
    assert mail.links == []
    assert f'href="{old}"' in mail.html


def test_a_page_beside_the_apis_own_links_is_still_tracked() -> None:
    mail = render('<p><a href="https://t.example.com/campaign/">キャンペーン</a></p>')
    assert mail.links == [("l1", "https://t.example.com/campaign/")]


def test_the_unsubscribe_link_is_not_wrapped_and_no_footer_is_added() -> None:
    # Given a template that places the unsubscribe link itself
    mail = render('<p>配信停止は<a href="{{ unsubscribe_url }}">こちら</a></p>')
    # Then the link goes straight to the unsubscribe URL, once, with no footer
    assert f'<a href="{UNSUBSCRIBE}">こちら</a>' in mail.html
    assert mail.html.count(UNSUBSCRIBE) == 1
    assert "配信停止・設定変更" not in mail.html
    assert mail.links == []


def test_a_footer_with_the_unsubscribe_link_is_added_when_the_template_has_none() -> None:
    mail = render("<html><body><p>本文</p></body></html>")
    footer = mail.html.index("配信停止・設定変更")
    assert mail.html.index("<p>本文</p>") < footer < mail.html.index("</body>")
    assert f'<a href="{UNSUBSCRIBE}">' in mail.html
    assert mail.links == []  # the footer's link is not tracked either


@pytest.mark.parametrize(
    "html",
    [
        "<p>本文{# unsubscribe_url goes here later #}</p>",
        '<p>本文</p>{% if lead.vip %}<a href="{{ unsubscribe_url }}">停止</a>{% endif %}',
    ],
)
def test_every_mail_carries_an_unsubscribe_link(html: str) -> None:
    # Given a template that mentions unsubscribe_url only where it is not rendered
    mail = render(html)
    # Then the footer still brings the link, in both parts
    assert UNSUBSCRIBE in hrefs(mail.html)
    assert UNSUBSCRIBE in mail.text


def test_an_unsubscribe_link_only_in_a_comment_still_leaves_a_visible_one() -> None:
    # Given a template whose only unsubscribe link was commented out
    mail = render('<p>本文</p><!-- <a href="{{ unsubscribe_url }}">配信停止</a> -->')
    # Then the footer brings a link the person sees
    assert "配信停止・設定変更" in mail.html
    assert hrefs(mail.html[mail.html.rindex("-->") :]).count(UNSUBSCRIBE) == 1


def test_a_confirm_link_is_not_taken_for_the_unsubscribe_link() -> None:
    # Given a double opt-in confirmation linking to confirm_url (the unsubscribe URL followed
    # by "?confirm=1") and nowhere else
    mail = render('<p><a href="{{ confirm_url }}">登録を確定する</a></p>')
    # Then both parts still carry the unsubscribe link itself
    assert UNSUBSCRIBE in hrefs(mail.html)
    assert f"配信停止: {UNSUBSCRIBE}\n" in mail.text


def test_an_unsubscribe_link_for_outlook_and_the_rest_counts_as_there() -> None:
    # Outlook's conditional comments: what "<!--[if !mso]><!-->" wraps is shown everywhere else
    mail = render(
        '<p>本文</p><!--[if !mso]><!--><a href="{{ unsubscribe_url }}">配信停止</a><!--<![endif]-->'
    )
    assert "配信停止・設定変更" not in mail.html


def test_pixel_and_hidden_honeypot_are_added() -> None:
    mail = render("<html><body><p>本文</p></body></html>")
    # The honeypot is the first thing in the body, invisible and out of the tab order
    assert re.search(
        r'<body><a href="' + re.escape(HONEYPOT) + r'" style="display:none" aria-hidden="true" '
        r'tabindex="-1"></a>',
        mail.html,
    )
    # The pixel is the last thing in the body
    assert re.search(
        r'<img src="' + re.escape(OPEN_PIXEL) + r'" width="1" height="1" [^>]*></body>', mail.html
    )


def test_a_fragment_without_body_still_gets_pixel_and_honeypot() -> None:
    mail = render("<p>本文</p>")
    assert mail.html.startswith(f'<a href="{HONEYPOT}"')
    assert mail.html.endswith(">") and OPEN_PIXEL in mail.html.rsplit("<img", 1)[1]


# ------------------------------------------------------------------ text part


def test_the_text_part_is_made_from_the_html() -> None:
    # Given a template without a text part
    mail = render(
        "<html><head><title>件名</title><style>p{color:red}</style></head><body>"
        '<h1>ようこそ</h1><p>詳しくは<a href="https://www.example.com/a">こちら</a>。</p>'
        "</body></html>"
    )
    # Then the text part has the words, and each link as "text (url)" with the click URL
    assert "ようこそ" in mail.text
    assert f"詳しくはこちら ({CLICK_BASE}l1)。" in mail.text
    assert UNSUBSCRIBE in mail.text
    # And nothing invisible: no honeypot, no pixel, no style, no title
    assert HONEYPOT not in mail.text
    assert OPEN_PIXEL not in mail.text
    assert "color:red" not in mail.text and "件名" not in mail.text
    assert mail.text.endswith("\n")


def test_a_written_text_part_gets_tracked_links_and_the_unsubscribe_line() -> None:
    mail = render(
        "<p>本文</p>",
        text="{{ lead.name }} 様\n詳しくは https://www.example.com/a をご覧ください。\n",
    )
    assert mail.text.startswith("ご担当者 様\n")
    assert f"詳しくは {CLICK_BASE}l1 をご覧ください。" in mail.text
    assert f"配信停止: {UNSUBSCRIBE}" in mail.text
    assert HONEYPOT not in mail.text


@pytest.mark.parametrize(
    ("written", "destination", "kept"),
    [
        (
            "料金表（https://www.example.com/pricing）をご覧ください。",
            "https://www.example.com/pricing",
            "料金表（{}）をご覧ください。",
        ),
        (
            "詳しくは https://www.example.com/guide。",
            "https://www.example.com/guide",
            "詳しくは {}。",
        ),
        (
            "Read the guide (https://www.example.com/guide).",
            "https://www.example.com/guide",
            "Read the guide ({}).",
        ),
        (
            "See https://www.example.com/a?b=1&c=2, then reply!",
            "https://www.example.com/a?b=1&c=2",
            "See {}, then reply!",
        ),
        (
            "Wiki: https://en.example.com/wiki/Tokyo_(city) is long.",
            "https://en.example.com/wiki/Tokyo_(city)",
            "Wiki: {} is long.",
        ),
        (
            "'https://www.example.com/q?x=%E6%97%A5'",
            "https://www.example.com/q?x=%E6%97%A5",
            "'{}'",
        ),
    ],
    ids=["full-width-brackets", "ideographic-full-stop", "brackets", "comma", "balanced", "quotes"],
)
def test_a_link_in_the_text_part_ends_where_the_url_ends(
    written: str, destination: str, kept: str
) -> None:
    # Given a written text part with a URL inside a sentence, as Japanese and English mails write
    urls = Urls()
    mail = render_mail(
        make_template(html="<p>本文</p>", text=f"{written}\n"),
        lead={"email": "hanako@example.com"},
        owner={},
        journey={},
        urls=urls.tracking(),
    )
    # Then the tracked link goes to the URL alone, and the sentence around it is left as written
    assert urls.clicks == [("l1", destination)]
    assert mail.links == [("l1", destination)]
    assert kept.format(f"{CLICK_BASE}l1") in mail.text


# ------------------------------------------------------------------ lead data


def test_a_url_in_lead_data_never_becomes_a_signed_link() -> None:
    # Given a lead who typed a URL as their name, and a text part that shows the name
    lead = {"name": "https://evil.example.net/login"}
    mail = render("<p>{{ lead.name }} 様</p>", text="{{ lead.name }} 様\n", lead=lead)
    # Then neither part makes a tracked (signed, redirecting) link of it
    assert mail.links == []
    assert CLICK_BASE not in mail.text
    assert "https://evil.example.net/login" not in hrefs(mail.html)


def test_a_link_the_lead_supplied_is_not_signed_as_a_redirect() -> None:
    # Given a template whose link goes wherever the lead's website field says
    urls = Urls()
    mail = render_mail(
        make_template(html='<p><a href="{{ lead.website }}">貴社サイト</a></p>'),
        lead={"email": "hanako@example.com", "website": "https://evil.example.net/phish"},
        owner={},
        journey={},
        urls=urls.tracking(),
    )
    # Then no click URL of ours redirects there, in either part: the link stays as the lead wrote it
    assert urls.clicks == [] and mail.links == []
    assert hrefs(mail.html)[1] == "https://evil.example.net/phish"
    assert "(https://evil.example.net/phish)" in mail.text
    assert CLICK_BASE not in mail.text


@pytest.mark.parametrize(
    "href",
    [
        "https://www.example.com{{ lead.website }}",
        "https://{{ lead.website }}/seminar",
        "https://www.example.com.{{ lead.website }}/",
    ],
)
def test_lead_data_cannot_choose_the_site_a_tracked_link_goes_to(href: str) -> None:
    # Given a marketer's link whose host the lead's data could continue or replace
    mail = render(f'<p><a href="{href}">x</a></p>', lead={"website": "@evil.example.net"})
    # Then it is not tracked
    assert mail.links == []


def test_a_personalised_link_to_the_marketers_site_is_still_tracked() -> None:
    # Given a link to the marketer's site that carries the lead's address (a prefilled form)
    html = (
        '<p><a href="https://www.example.com/form?email={{ lead.email | urlencode }}">申込</a></p>'
    )
    mail = render(html)
    # Then it is a tracked link to that page
    assert mail.links == [("l1", "https://www.example.com/form?email=hanako%40example.com")]
    assert hrefs(mail.html)[1] == f"{CLICK_BASE}l1"


def test_template_defaults_fill_missing_lead_fields() -> None:
    html = "<p>{{ lead.company }} {{ lead.name }} 様</p>"
    assert "<p>貴社 ご担当者 様</p>" in render(html).html
    assert "<p>貴社 ご担当者 様</p>" in render(html, lead={"name": ""}).html
    assert (
        "<p>株式会社例 山田 様</p>"
        in render(html, lead={"company": "株式会社例", "name": "山田"}).html
    )


def test_lead_data_is_escaped_in_html() -> None:
    # Given a lead who typed markup as their name
    mail = render(
        "<p>{{ lead.name }} 様</p>",
        lead={"name": '<script>alert(1)</script><a href="https://evil.example.net/">x</a>'},
    )
    # Then it arrives as text, not as markup, and no link is made from it
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    assert "https://evil.example.net/" not in hrefs(mail.html)
    assert mail.links == []


def test_japanese_text_is_kept_intact() -> None:
    mail = render(
        "<p>{{ lead.company }}\u3000{{ lead.name }}様</p><p>いつもお世話になっております。</p>",
        lead={"company": "株式会社つなぐ", "name": "佐藤 花子"},
        subject="【ご案内】{{ lead.company }} 様 セミナーのお知らせ",
    )
    assert mail.subject == "【ご案内】株式会社つなぐ 様 セミナーのお知らせ"
    assert "<p>株式会社つなぐ\u3000佐藤 花子様</p>" in mail.html
    assert "株式会社つなぐ" in mail.text and "佐藤 花子様" in mail.text
    assert "いつもお世話になっております。" in mail.text


def test_a_full_width_space_is_kept_in_subject_and_text() -> None:
    mail = render(
        "<p>{{ lead.company }}様\u3000各位</p>",
        subject="【ご案内】{{ lead.company }}様\u3000セミナーのお知らせ",
    )
    assert "貴社様\u3000各位" in mail.text
    assert mail.subject == "【ご案内】貴社様\u3000セミナーのお知らせ"


def test_the_subject_is_one_line() -> None:
    mail = render("<p>x</p>", subject="{{ lead.name }}\n様へ", lead={"name": "Taro\r\nBcc: x"})
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.subject == "Taro Bcc: x 様へ"


def test_the_subject_is_one_line_with_unicode_separators_too() -> None:
    mail = render("<p>x</p>", subject="{{ lead.name }}様", lead={"name": "Taro\u2028\u2029Yamada"})
    assert mail.subject == "Taro Yamada様"


# ------------------------------------------------------------------ the sandbox

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lead.__class__ }}",
    "{{ lead|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ lipsum.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ lead.update({'x': 1}) }}",
    "{{ lead.setdefault('x', 1) }}",
    "{{ lead.email.__class__.__base__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ ''.format.__self__ }}",
]
LEAKS = re.compile(
    r"class|mro|subclass|global|builtin|function|module|object|context|__|import|<frozen",
    re.IGNORECASE,
)


@pytest.mark.parametrize("attempt", INJECTIONS)
def test_template_injection_fails_safely(attempt: str) -> None:
    # Given a template (or a subject) reaching for Python internals
    for where in ("html", "subject"):
        template = {"html": f"<p>{attempt}</p>"} if where == "html" else {"subject": attempt}
        # When it is rendered, Then it is refused, or renders nothing from Python's inside
        try:
            mail = render_mail(
                make_template(**template),
                lead={"email": "hanako@example.com"},
                owner={},
                journey={},
                urls=Urls().tracking(),
            )
        except RenderError:
            continue
        assert not LEAKS.search(mail.subject), mail.subject
        assert not LEAKS.search(mail.html), mail.html
        assert not LEAKS.search(mail.text), mail.text


def test_the_sandbox_is_immutable() -> None:
    with pytest.raises(RenderError, match="unsafe"):
        render("<p>{{ lead.update({'x': 1}) }}</p>")
    with pytest.raises(RenderError, match="unsafe"):
        render("{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}")


# ------------------------------------------------------------------ check_template


def test_check_template_accepts_a_good_template() -> None:
    check_template(make_template(text="{{ lead.name }} 様\n"))


@pytest.mark.parametrize(
    "part",
    [
        {"html": "<p>{% if lead.name %}閉じていない</p>"},
        {"subject": "{{ lead.name "},
        {"text": "{% for x in %}"},
        {"html": "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}"},
        # What a template's own expressions raise, beyond Jinja's errors
        {"subject": "{{ range(100001)|list|length }}"},
        {"html": "{% for i in range(10**9) %}x{% endfor %}"},
        {"subject": "{{ 1 / 0 }}"},
        {"text": "{{ 1 + 'a' }}"},
        # And what would build a value no mail holds: 100 MB, a 10**100000 digit number, a
        # loop writing ten billion pieces
        {"subject": "{{ 'x' * 100000000 }}"},
        {"subject": "{{ 10 ** 100000 }}"},
        {"html": "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"},
        {"subject": "{{ (((2 ** 64) ** 64) ** 64) ** 64 }}"},
        {"subject": "{{ 'x' | center(4000000000) }}"},
        {"subject": "{{ 'ab' | indent(99999999) }}"},
        {"subject": "{{ '{:>99999999}'.format(1) }}"},
        {"subject": "{{ '%099999999d' % 1 }}"},
        {"subject": "{{ '%099999999d' | format(1) }}"},
        {"subject": "{{ range(100000) | join('x' * 999999) }}"},
    ],
)
def test_check_template_rejects_what_cannot_render(part: dict[str, str]) -> None:
    with pytest.raises(RenderError):
        check_template(make_template(**part))


def test_repetition_powers_widths_and_joins_within_reason_still_render() -> None:
    mail = render(
        "<p>{{ '-' * 20 }} {{ 2 ** 10 }} {{ '%05d' % 42 }} {{ '{:>4}'.format('a') }}"
        " {{ [1, 2] | join(', ') }} [{{ 'a' | center(5) }}]</p>"
    )
    assert "-" * 20 + " 1024 00042    a 1, 2 [  a  ]" in mail.html


def test_a_template_is_a_validated_model() -> None:
    with pytest.raises(ValueError):
        MailTemplate(
            template_id="x", name="x", subject="x", html="x", from_address="not an address"
        )


@pytest.mark.parametrize("field", ["items", "values", "keys", "get", "copy", "update"])
def test_a_field_named_like_a_dict_method_is_the_fields_value(field: str) -> None:
    # Given a lead field (a form field, an import column) named like a method of a dict
    mail = render_mail(
        make_template(html=f"<p>{{{{ lead.{field} }}}}</p>", subject=f"{{{{ lead.{field} }}}}"),
        lead={"email": "hanako@example.com", field: "製品A"},
        owner={},
        journey={},
        urls=Urls().tracking(),
    )
    # Then the merge tag is the field's value, not "<built-in method ...>"
    assert mail.subject == "製品A"
    assert "<p>製品A</p>" in mail.html


def test_a_dicts_own_methods_still_work_for_a_lead_without_such_a_field() -> None:
    mail = render("<p>{% for name, value in lead.items() %}{{ name }}={{ value }};{% endfor %}</p>")
    assert "email=hanako@example.com;" in mail.html


@pytest.mark.parametrize(
    "website",
    [
        "javascript:alert(document.domain)",
        "JavaScript:alert(1)",
        " java\tscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
    ],
)
def test_a_lead_supplied_link_cannot_be_a_script(website: str) -> None:
    # Given a lead whose website field is a script URL, written into a link
    mail = render('<p><a href="{{ lead.website }}">御社サイト</a></p>', lead={"website": website})
    # Then the link is emptied (the text part's copy is plain text, which runs nothing)
    assert '<a href="">御社サイト</a>' in mail.html
    assert "script" not in mail.html.lower() and "data:" not in mail.html


@pytest.mark.parametrize(
    "href",
    ["https://www.example.net/", "mailto:sales@example.com", "tel:03-1234-5678", "#top", ""],
)
def test_web_mail_and_phone_links_are_kept(href: str) -> None:
    mail = render('<p><a href="{{ lead.website }}">連絡先</a></p>', lead={"website": href})
    assert f'<a href="{href}">連絡先</a>' in mail.html


MACRO_IN_HEAD = (
    '<html><head>{% macro button(url, label) %}<a href="{{ url }}">{{ label }}</a>'
    "{% endmacro %}</head><body><p>{{ button('https://www.example.com/pricing', '料金') }}</p>"
    "</body></html>"
)
SET_IN_HEAD = (
    "<html><head>{% set cta = 'https://www.example.com/pricing?c=' ~ (lead.company|urlencode) %}"
    '</head><body><p><a href="{{ cta }}">料金はこちら</a></p></body></html>'
)


def test_a_macro_in_head_renders_in_the_text_part_too() -> None:
    # Given a template with a macro in <head>: saved, it must render at every send (its text
    # part made from the HTML source used to drop <head>, and the macro with it)
    template = make_template(html=MACRO_IN_HEAD)
    check_template(template)
    mail = render_mail(
        template, lead={"email": "a@example.jp"}, owner={}, journey={}, urls=Urls().tracking()
    )
    assert mail.links == [("l1", "https://www.example.com/pricing")]
    assert f"料金 ({CLICK_BASE}l1)" in mail.text


def test_a_link_set_up_in_head_is_the_same_link_in_the_text_part() -> None:
    mail = render(SET_IN_HEAD, lead={"company": "ACME"})
    assert mail.links == [("l1", "https://www.example.com/pricing?c=ACME")]
    assert f"料金はこちら ({CLICK_BASE}l1)" in mail.text


def test_a_link_with_a_japanese_path_is_the_same_link_in_the_text_part() -> None:
    # Given a link to a page with a Japanese slug (common on Japanese sites)
    mail = render('<p><a href="https://www.example.com/セミナー/">セミナー</a></p>')
    # Then the text part's link is the HTML part's, not one to the home page with "セミナー/"
    # left glued to it
    assert mail.links == [("l1", "https://www.example.com/セミナー/")]
    assert f"セミナー ({CLICK_BASE}l1)" in mail.text


def test_a_personalised_link_is_tracked_whatever_the_leads_name() -> None:
    # Given a link carrying the lead's name, not urlencoded (as "?email={{ lead.email }}" is
    # written), and a lead whose name has a space
    html = '<p><a href="https://www.example.com/form?name={{ lead.name }}">申込</a></p>'
    mail = render(html, lead={"name": "佐藤 花子"})
    # Then the link is tracked in both parts, as one link
    assert mail.links == [("l1", "https://www.example.com/form?name=佐藤 花子")]
    assert f'href="{CLICK_BASE}l1"' in mail.html
    assert f"申込 ({CLICK_BASE}l1)" in mail.text


def test_a_data_href_is_not_taken_for_the_href() -> None:
    mail = render(
        '<p><a data-href="https://www.example.com/a" href="https://www.example.com/b">b</a></p>'
    )
    assert mail.links == [("l1", "https://www.example.com/b")]
    assert f'data-href="https://www.example.com/a" href="{CLICK_BASE}l1"' in mail.html


def test_outlooks_button_and_an_image_maps_areas_are_tracked() -> None:
    # The "bulletproof button" HTML mail builders write for Outlook desktop, beside the link
    # every other client shows, and an image map
    mail = render(
        '<!--[if mso]><v:roundrect href="https://www.example.com/cta">申込</v:roundrect>'
        '<![endif]--><!--[if !mso]><!--><a href="https://www.example.com/cta">申込</a>'
        '<!--<![endif]--><map name="m"><area shape="rect" coords="0,0,10,10" '
        'href=" https://www.example.com/map ">'
    )
    assert mail.links == [
        ("l1", "https://www.example.com/cta"),
        ("l2", "https://www.example.com/map"),
    ]
    assert f'<v:roundrect href="{CLICK_BASE}l1">' in mail.html
    assert f'href="{CLICK_BASE}l2">' in mail.html


def test_a_calendar_and_a_text_message_link_are_kept() -> None:
    mail = render(
        '<p><a href="webcal://www.example.com/seminar.ics">予定に追加</a>'
        ' <a href="sms:+81-3-0000-0000">SMS</a></p>'
    )
    assert 'href="webcal://www.example.com/seminar.ics"' in mail.html
    assert 'href="sms:+81-3-0000-0000"' in mail.html
