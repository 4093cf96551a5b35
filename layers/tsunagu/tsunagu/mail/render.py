"""Rendering a template for one lead: sandboxed Jinja2, then its links made trackable.

The sandbox keeps templates away from Python internals (``{{ ''.__class__ }}`` and friends fail
with a SecurityError); HTML output is autoescaped, so a lead's own data can never inject markup.
After rendering, each http(s) link to a site the template itself names becomes a signed click
link (a URL from a lead's data is never signed: no open redirect), an open pixel and a hidden
honeypot link are added, and the unsubscribe link goes where the template asks for it
(``{{ unsubscribe_url }}``) or into a footer.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from jinja2 import ChainableUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tsunagu.mail.templates import MailTemplate
from tsunagu.text import header_line
from tsunagu.tracking.tokens import is_redirectable

_LINK = re.compile(
    r"""(<(?:a|area|v:\w+)\b[^>]*?\shref\s*=\s*)(["'])\s*(https?://(?:(?!\2)[^<>])*?)\s*\2"""
    r"""([^>]*>)""",
    re.IGNORECASE,
)
"""A link to track: the href (not a data-href) of <a>, of an image map's <area> and of the VML
shapes of Outlook's "bulletproof" buttons (<v:roundrect href=...>), its URL everything up to the
closing quote (a lead's name with a space in it, a Japanese path), blanks around it dropped."""
# ASCII whitespace only: the ideographic space (U+3000) is part of Japanese text.
_ASCII_SPACE = re.compile(r"[ \t\r\n\f\v]+")
# A URL in a text part: the characters RFC 3986 allows (ASCII only, so Japanese text written
# right after a link, with no space, is not taken into it), then trimmed by _url_end.
_TEXT_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")
_TRAILING = frozenset(".,:;!?'*_~")
"""Punctuation that ends a sentence, not a URL (as GitHub's and linkify's autolinks read it)."""
_OPENING = {")": "(", "]": "["}
_WRITTEN_HOST = re.compile(r"https?://([^/?#\s\"'<>{}\\]*)", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
NO_TRACK = "data-tsunagu-notrack"


class RenderError(Exception):
    """The template cannot be rendered (syntax, or it tried to leave the sandbox)."""


@dataclass(frozen=True)
class TrackingUrls:
    """Makes the URLs one message carries; built by the sender with the signing keys."""

    click: Callable[[str, str], str]
    """(link id, destination) -> click URL."""
    open_pixel: str
    honeypot: str
    unsubscribe: str
    api_url: str | None = None
    """The API's own base URL: a link under its /c/, /o/ or /u/ is never tracked again."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str
    links: list[tuple[str, str]] = field(default_factory=list)
    """(link id, destination) of every tracked link."""


MAX_RENDERED = 1_000_000
"""Characters one part of a mail may render to: far beyond any real mail."""
MAX_POWER_BITS = 100_000
"""The largest whole number a power may make (about 30,000 digits)."""
_HUGE_WIDTH = re.compile(r"%[-+ #0*]*\d{7,}|\{[^{}]*:[^{}]*\d{7,}[^{}]*\}")
"""A printf or format width of a million or more: ``'%09999999d' % 1``, ``'{:>9999999}'``."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, and a bound on what one expression may build before it is written: the
    sandbox bounds ``range`` but not repetition, powers, widths or joins. (Rendering itself
    stops past MAX_RENDERED; see _render.)"""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        plain = dict(self.filters)
        for name in ("center", "indent"):
            self.filters[name] = _bounded_width(plain[name])
        self.filters["format"] = _checked_format(plain["format"])
        self.filters["join"] = _bounded_join(plain["join"])

    def getattr(self, obj: Any, attribute: str) -> Any:
        # The merge data are dicts, and a lead's field may be named like a dict's method (a
        # form field or an import column "items", "values", "get"...): {{ lead.items }} is that
        # field, not "<built-in method items ...>". Jinja tries the attribute first; for a dict,
        # a key wins (lead.items() still works for a lead without such a field).
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        whole = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and whole and abs(left).bit_length() * right > MAX_POWER_BITS:
            raise SecurityError(f"a power past {MAX_POWER_BITS:,} bits")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_RENDERED
                ):
                    raise SecurityError(f"a repetition past {MAX_RENDERED:,} characters")
        if operator == "%" and isinstance(left, str):
            _check_widths(left)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_widths(value.__self__)
        return wrapped


def _check_widths(text: str) -> None:
    if _HUGE_WIDTH.search(text):
        raise SecurityError("a width of a million characters or more")


def _bounded_width(plain: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> Any:
        if isinstance(width, int) and width > MAX_RENDERED:
            raise SecurityError(f"a width past {MAX_RENDERED:,} characters")
        return plain(value, width, *args, **kwargs)

    return bounded


def _checked_format(plain: Callable[..., Any]) -> Callable[..., Any]:
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_widths(str(value))
        return plain(value, *args, **kwargs)

    return checked


def _bounded_join(plain: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        if len(str(d)) * len(items) > MAX_RENDERED:
            raise SecurityError(f"a join past {MAX_RENDERED:,} characters")
        return plain(eval_ctx, items, d, attribute)

    bounded.jinja_pass_arg = plain.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    return _Sandbox(autoescape=True, undefined=ChainableUndefined)


@lru_cache(maxsize=256)
def _compile(source: str, autoescape: bool) -> Any:
    environment = _environment()
    if autoescape:
        return environment.from_string(source)
    return environment.overlay(autoescape=False).from_string(source)


def _render(source: str, context: Mapping[str, Any], *, autoescape: bool) -> str:
    parts: list[str] = []
    length = 0
    try:
        # Piece by piece, so a loop that writes without end stops at the bound
        for part in _compile(source, autoescape).generate(context):
            length += len(part)
            if length > MAX_RENDERED:
                raise RenderError(f"it renders to more than {MAX_RENDERED:,} characters")
            parts.append(part)
    except TemplateError as error:  # SecurityError is a TemplateError too
        raise RenderError(f"{type(error).__name__}: {error}") from None
    except (ArithmeticError, TypeError, ValueError, RecursionError, MemoryError) as error:
        # What a template's own expressions raise: range() past the sandbox's bound, 1/0,
        # 1 + 'a', a value too large to build. The template's fault, never the sender's.
        raise RenderError(f"{type(error).__name__}: {error}") from None
    return "".join(parts)


def check_template(template: MailTemplate) -> None:
    """Fail early, at save time, on a template that cannot render."""
    sample = {"lead": {"email": "sample@example.com"}, "owner": {}, "journey": {}}
    for source, autoescape in ((template.subject, False), (template.html, True)):
        _render(
            source, {**sample, "unsubscribe_url": "https://example.com/u"}, autoescape=autoescape
        )
    # The text part as a send renders it: the template's own, or the one made from its HTML
    text = template.text or text_template_from_html(template.html)
    if text:
        _render(text, sample, autoescape=False)


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table", "hr"})
    _VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr"})
    _INVISIBLE = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden: list[tuple[str, bool]] = []
        self._href: str | None = None
        self._link_start = 0

    @property
    def hidden(self) -> bool:
        return bool(self._hidden) and self._hidden[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in self._BLOCKS:
            self.parts.append("\n")
        if tag in self._VOID:
            return
        style = (attributes.get("style") or "").replace(" ", "").lower()
        hidden = self.hidden or tag in self._INVISIBLE or "display:none" in style
        self._hidden.append((tag, hidden))
        if tag == "a":
            self._href = attributes.get("href")
            self._link_start = len(self.parts)

    def handle_endtag(self, tag: str) -> None:
        link_text = "".join(self.parts[self._link_start :]).strip()
        if tag == "a" and self._href and not self.hidden and link_text != self._href:
            self.parts.append(f" ({self._href})")
        if tag == "a":
            self._href = None
        while self._hidden:
            opened, _ = self._hidden.pop()
            if opened == tag:
                break
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


@lru_cache(maxsize=256)
def text_template_from_html(source: str) -> str | None:
    """A template's text part, made once per template from its HTML source (Jinja expressions
    are plain text to the HTML parser and survive), not from every rendered mail: parsing
    30 KB of HTML per mail took three quarters of the render time.

    None when the text would lose a Jinja statement the HTML has: one in a part the text leaves
    out (a ``{% macro %}`` or ``{% set %}`` in <head>) or in an attribute other than a link's.
    Without it the text does not render (a macro called but never defined) or says otherwise
    (a link to a URL never set); such a template's text is made from each rendered mail."""
    text = html_to_text(source)
    return text if text.count("{%") == source.count("{%") else None


def one_line(text: str) -> str:
    """Runs of ASCII whitespace and every line break (U+2028, U+2029 and NEL too) as one space;
    U+3000 is kept."""
    return _ASCII_SPACE.sub(" ", header_line(text)).strip()


def html_to_text(document: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(document)
    lines = [one_line(line) for line in "".join(extractor.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_mail(
    template: MailTemplate,
    *,
    lead: Mapping[str, Any],
    owner: Mapping[str, Any] | None,
    journey: Mapping[str, Any] | None,
    urls: TrackingUrls,
) -> RenderedMail:
    context = {
        "lead": {**template.defaults, **{k: v for k, v in lead.items() if v not in (None, "")}},
        "owner": dict(owner or {}),
        "journey": dict(journey or {}),
        "unsubscribe_url": urls.unsubscribe,
        "confirm_url": f"{urls.unsubscribe}?confirm=1",
    }
    subject = one_line(_render(template.subject, context, autoescape=False))
    body = _safe_hrefs(_render(template.html, context, autoescape=True))
    as_written = body

    links: list[tuple[str, str]] = []
    by_destination: dict[str, str] = {}
    hosts = written_hosts(template.html) | written_hosts(template.text or "")

    def trackable(destination: str) -> bool:
        # Only links to the sites the marketer wrote become tracked links: a URL from a lead's
        # own data ('href="{{ lead.website }}"', a name in the text part) is left as it is, so
        # no one can make Tsunagu sign a redirect to their site. A marketer's link that carries
        # the lead's data ("?email={{ lead.email }}") still goes to the marketer's site.
        if destination.startswith(urls.unsubscribe):
            return False
        if own_tracking_link(destination, urls.api_url):
            # A click, open or unsubscribe link copied from an earlier mail: its token names
            # the lead that mail went to, and wrapped again, every recipient's click would be
            # recorded as that lead's (refused at save; a stored template keeps it as written)
            return False
        try:
            parts = urlsplit(destination)
        except ValueError:  # "https://[x": nothing a click token could carry
            return False
        return is_redirectable(destination) and parts.netloc.lower() in hosts

    untracked: set[str] = set()
    """Destinations the marketer marked not to track: not tracked in the text part either."""

    def track(match: re.Match[str]) -> str:
        destination = html_lib.unescape(match.group(3))
        if NO_TRACK in match.group(1) + match.group(4):
            untracked.add(destination)
            return match.group(0)
        if not trackable(destination):
            return match.group(0)
        link_id = by_destination.get(destination) or _new_link(destination, links, by_destination)
        quote = match.group(2)
        click = html_lib.escape(urls.click(link_id, destination))
        return f"{match.group(1)}{quote}{click}{quote}{match.group(4)}"

    body = _LINK.sub(track, body)
    if not _links_to(body, urls.unsubscribe):
        # Checked on what was rendered: a template that only mentions unsubscribe_url in a
        # comment or a branch not taken, or links only to confirm_url, still gets the footer.
        body = _insert_before_end(body, _footer(urls.unsubscribe))
    pixel = (
        f'<img src="{html_lib.escape(urls.open_pixel)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    honeypot = (
        f'<a href="{html_lib.escape(urls.honeypot)}" style="display:none" aria-hidden="true" '
        'tabindex="-1"></a>'
    )
    body = _insert_after_start(body, honeypot)
    body = _insert_before_end(body, pixel)

    text_source = template.text or text_template_from_html(template.html)
    if text_source is None:
        # Made from this mail's HTML as rendered, its links as written (tracked just below)
        text = html_to_text(as_written)
    else:
        text = _render(text_source, context, autoescape=False)

    # The HTML's own destinations that the generic pattern would cut (a space from a lead's
    # name, a Japanese path) are found whole first: the text's link is the HTML's link
    whole = sorted(
        (d for d in (*by_destination, *untracked) if not _TEXT_URL.fullmatch(d)),
        key=len,
        reverse=True,
    )
    urls_in_text = (
        re.compile("|".join([*map(re.escape, whole), _TEXT_URL.pattern])) if whole else _TEXT_URL
    )

    def track_text(match: re.Match[str]) -> str:
        found = match.group(0)
        destination = found if found in whole else _url_end(found)
        after = found[len(destination) :]
        if destination in untracked or not trackable(destination):
            return match.group(0)
        link_id = by_destination.get(destination) or _new_link(destination, links, by_destination)
        return urls.click(link_id, destination) + after

    text = urls_in_text.sub(track_text, text)
    if not any(_url_end(m.group(0)) == urls.unsubscribe for m in _TEXT_URL.finditer(text)):
        # The URL itself, not one it begins (confirm_url is the unsubscribe URL + "?confirm=1")
        text += f"\n--\nUnsubscribe / 配信停止: {urls.unsubscribe}\n"
    return RenderedMail(subject, body, text, links)


OWN_PATHS = ("/c/", "/o/", "/u/")
"""Where the API's click, open and unsubscribe links live: each carries a signed token that
names one lead and one mail."""
_WRITTEN_URL = re.compile(r"""https?://[^\s"'<>{}]+""", re.IGNORECASE)


def tsunagu_link(url: str, api_url: str) -> bool:
    """Whether ``url`` is one of the API's own tracking links (any scheme, the host in any
    case): the mail of one lead, not a page of the marketer's."""
    try:
        parts, base = urlsplit(url), urlsplit(api_url)
    except ValueError:
        return False
    prefix = base.path.rstrip("/")
    return (
        parts.netloc.lower() == base.netloc.lower()
        and parts.path.startswith(prefix)
        and parts.path[len(prefix) :].startswith(OWN_PATHS)
    )


_TOKEN_PATH = re.compile(
    r"/[cou]/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}(?:\.gif)?/?$"
)
"""A click, open or unsubscribe path with a signed token in it (key id, body, signature: see
tracking.tokens), on whatever host the API is reached by."""


def copied_tracking_links(template: MailTemplate, api_url: str | None) -> list[tuple[str, str]]:
    """(field, URL) of each of the API's own click, open and unsubscribe links a template
    writes out (HTML copied from a mail Tsunagu sent): each is one earlier recipient's. Known
    by the API's address when given, and by a token in the path whatever the host: the admin
    API cannot name the HTTP API it sits behind (a function behind it would be a circular
    reference in the template), and the API may be reached by another domain as well."""
    found: list[tuple[str, str]] = []
    sources = {"subject": template.subject, "html": template.html, "text": template.text or ""}
    for name, source in sources.items():
        for match in _WRITTEN_URL.finditer(source):
            url = html_lib.unescape(match.group(0))
            if own_tracking_link(url, api_url) and (name, url) not in found:
                found.append((name, url))
    return found


def own_tracking_link(url: str, api_url: str | None) -> bool:
    """Whether ``url`` is one of the API's click, open or unsubscribe links: under the API's
    address when it is known, or with a signed token in its path on any host."""
    if api_url and tsunagu_link(url, api_url):
        return True
    try:
        return _TOKEN_PATH.search(urlsplit(url).path) is not None
    except ValueError:
        return False


@lru_cache(maxsize=256)
def written_hosts(source: str) -> frozenset[str]:
    """The hosts (with any port), lowercased, that a template's source writes in its URLs.

    A host the source goes on to fill from data ("https://www.example.com{{ x }}",
    "https://{{ x }}/") is not one: the data could make it any other site.
    """
    hosts = set()
    for match in _WRITTEN_HOST.finditer(source):
        if match.group(1) and not source.startswith("{", match.end()):
            hosts.add(match.group(1).lower())
    return frozenset(hosts)


def _url_end(candidate: str) -> str:
    """The URL at the start of ``candidate``, without the punctuation that follows it in a
    sentence: trailing stops and commas, and a closing bracket the URL did not open
    ("(https://example.com/a)" but "https://example.com/wiki/Tokyo_(city)")."""
    end = len(candidate)
    while end:
        last = candidate[end - 1]
        url = candidate[:end]
        unbalanced = last in _OPENING and url.count(last) > url.count(_OPENING[last])
        if last not in _TRAILING and not unbalanced:
            break
        end -= 1
    return candidate[:end]


def _new_link(destination: str, links: list[tuple[str, str]], known: dict[str, str]) -> str:
    link_id = f"l{len(links) + 1}"
    known[destination] = link_id
    links.append((link_id, destination))
    return link_id


_ANY_HREF = re.compile(
    r"""(\shref\s*=\s*)(?:(["'])(.*?)\2|([^\s"'>]+))""", re.IGNORECASE | re.DOTALL
)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel", "sms", "webcal"})
"""The kinds of link a mail carries (webcal: a seminar's calendar; sms: a phone's message)."""
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")
"""What a browser skips inside a URL's scheme ("java\tscript:" runs as javascript:)."""


def _safe_hrefs(document: str) -> str:
    """Every link with a scheme not in SAFE_SCHEMES made empty: a lead's own data in
    ``href="{{ lead.website }}"`` could be "javascript:..." (autoescaping keeps it inside the
    quotes, not out of the href). A link without a scheme ("#top") is kept. A link the
    template writes itself with another scheme is refused at save (unsafe_written_links), so
    what is emptied here is only ever the data's."""

    def checked(match: re.Match[str]) -> str:
        if _safe_scheme(match):
            return match.group(0)
        return f'{match.group(1)}""'

    return _ANY_HREF.sub(checked, document)


def _safe_scheme(match: re.Match[str]) -> bool:
    value = match.group(3) if match.group(2) else match.group(4)
    bare = _IGNORED_IN_SCHEME.sub("", html_lib.unescape(value)).lower()
    scheme = _SCHEME.match(bare)
    return scheme is None or scheme.group(1) in SAFE_SCHEMES


def unsafe_written_links(html: str) -> list[str]:
    """The links a template's HTML writes itself with a scheme a send would empty (``sms`` is
    kept, ``javascript:`` or ``file:`` are not): refused at save rather than lost unseen."""
    return [
        (m.group(3) if m.group(2) else m.group(4)).strip()
        for m in _ANY_HREF.finditer(html)
        if not _safe_scheme(m)
    ]


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HREF = re.compile(r"""<a\b[^>]*?\shref\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)


def _links_to(document: str, url: str) -> bool:
    """Whether a link of ``document`` outside its comments goes to exactly ``url``. (Outlook's
    "<!--[if !mso]><!-->" ends its comment at once, so what it wraps counts.)"""
    visible = _COMMENT.sub("", document)
    return any(html_lib.unescape(m.group(2)).strip() == url for m in _HREF.finditer(visible))


def _footer(unsubscribe_url: str) -> str:
    return (
        '<p style="font-size:12px;color:#6b7280;margin-top:24px">'
        f'<a href="{html_lib.escape(unsubscribe_url)}">'
        "このメールの配信停止・設定変更 / Unsubscribe or change preferences</a></p>"
    )


def _insert_before_end(document: str, fragment: str) -> str:
    ends = list(_BODY_END.finditer(document))
    if not ends:
        return document + fragment
    at = ends[-1].start()
    return document[:at] + fragment + document[at:]


def _insert_after_start(document: str, fragment: str) -> str:
    match = _BODY_START.search(document)
    if match is None:
        return fragment + document
    return document[: match.end()] + fragment + document[match.end() :]
