"""The pages behind the personal unsubscribe link: preferences, confirmation, done, and the
page for a link that is not valid.

Bilingual (Japanese first), plain, and escaped throughout: a masked address and topic names
are the only data on them.
"""

from __future__ import annotations

import html

from tsunagu.mail.preferences import (
    PREFERENCE_FORM,
    SHOWN_FIELD,
    TOPIC_FIELD_PREFIX,
    Preferences,
)

_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "label{display:block;margin:.5rem 0}button{margin-top:1rem;padding:.5rem 1.2rem}</style>"
)


def preference_page(prefs: Preferences, saved: bool = False) -> str:
    boxes = "".join(
        f"<label><input type=checkbox name='{TOPIC_FIELD_PREFIX}{html.escape(topic)}'"
        f"{' checked' if on else ''}> {html.escape(topic)}</label>"
        for topic, on in sorted(prefs.topics.items())
    )
    everything = " checked" if prefs.unsubscribed_from_all else ""
    note = "<p><b>Saved. / 保存しました。</b></p>" if saved else ""
    if prefs.changed_meanwhile:
        note = (
            "<p role=alert><b>このページを開いた後に、配信設定が別の方法で変更されました"
            "（メールアプリの配信停止ボタン、返信など）。何も保存していません。"
            "現在の設定をご確認のうえ、もう一度保存してください。</b><br>"
            "Your settings were changed another way after this page was opened (your mail"
            " app's unsubscribe button, a reply). Nothing was saved: please check your settings"
            " as they are now, and save again.</p>"
        )
    marker, value = PREFERENCE_FORM
    # The version of what the page shows goes with the form: saving a page loaded before a
    # change made another way must not undo that change (update_preferences)
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>配信設定 / Mail preferences</title>{_STYLE}"
        f"<h1>配信設定 / Mail preferences</h1>{note}"
        f"<p>{html.escape(prefs.masked_email)}</p><form method=post>"
        f"<input type=hidden name={marker} value={value}>"
        f"<input type=hidden name={SHOWN_FIELD} value={prefs.version}>{boxes}"
        f"<label><input type=checkbox name=unsubscribe_all{everything}> "
        "すべての配信を停止する / Unsubscribe from all</label>"
        "<button type=submit>保存 / Save</button></form>"
    )


def unsubscribed_page() -> str:
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8><title>配信停止 / Unsubscribed</title>"
        f"{_STYLE}<h1>配信を停止しました / You are unsubscribed</h1>"
    )


def confirm_page(prefs: Preferences) -> str:
    # A button, not the link itself: mail scanners follow links, and must not subscribe anyone.
    topics = ", ".join(html.escape(t) for t in prefs.pending)
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>登録の確認 / Confirm</title>{_STYLE}"
        "<h1>登録の確認 / Confirm your subscription</h1>"
        f"<p>{html.escape(prefs.masked_email)}: {topics}</p>"
        "<form method=post><input type=hidden name=confirm value=1>"
        "<button type=submit>登録を確定する / Confirm</button></form>"
    )


def confirmed_page(topics: list[str]) -> str:
    listed = ", ".join(html.escape(t) for t in topics) or "-"
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>登録完了 / Confirmed</title>{_STYLE}"
        f"<h1>登録しました / Confirmed</h1><p>{listed}</p>"
    )


def link_not_valid_page() -> str:
    """A link that is not valid (cut by a mail program's line wrap, signed with a key since
    retired, of a lead since removed): what the person can still do to stop the mail."""
    return (
        "<!doctype html><html lang=ja><meta charset=utf-8>"
        f"<title>リンクが無効です / Link not valid</title>{_STYLE}"
        "<h1>リンクが無効です / Link not valid</h1>"
        "<p>この配信停止リンクは無効です。メールソフトでリンクの途中が切れたか、古いリンクの"
        "可能性があります。何も変更していません。配信を停止するには、最新のメールにあるリンクを"
        "開き直すか、いずれかのメールに「配信停止」と返信してください。</p>"
        "<p>This unsubscribe link is not valid: your mail program may have cut it, or"
        " it may be an old one. Nothing was changed. To stop the mail, open the link in the"
        ' latest mail again, or reply to any of our mails with "unsubscribe".</p>'
    )
