"""Schemathesis hooks for ``make proof``'s api and admin api sections (see ``tests/proof/api.py``
and ``tests/proof/admin_api.py``).

Loaded by ``schemathesis run`` in its own virtualenv (``.venv-proof``) through
``SCHEMATHESIS_HOOKS``, so this module imports only schemathesis, what schemathesis itself sends
requests with (urllib3) and the standard library: never the product's code. What it needs from
the running product (the demo form and site, leads' addresses, signed mail tokens, the CRM
signing key) ``api.py`` writes to a JSON file named by ``TSUNAGU_PROOF_API_FIXTURES``.

Random input from ``docs/openapi.yaml`` alone rarely gets past a handler's first check: a form id
or site id is only valid once registered, a mail token only when Tsunagu signed it, a CRM body
only when signed with the shared key a moment ago. So just before each request
(``before_call``) most cases get a real id, a real token or a fresh signature in place of the
generated one, and the rest keep what schemathesis generated, so the refusals are exercised
too. Which cases are changed is decided from a hash of the case itself (and of how often the
same case came before), so a run with the same ``--seed`` makes the same choices.
Schemathesis re-checks a case changed here against the schema before sending it, so its
positive/negative label stays true; a value the case leaves out on purpose (a missing required
header) is never put back.

Also here:

- **Client addresses.** Form submissions are limited per client address (the connection's
  source IP; ``X-Forwarded-For`` is not believed, rightly). Every connection is opened from the
  next of ``source_addresses`` loopback addresses (127.0.x.y) and ``api.py`` sends
  ``Connection: close``, so one address carries a small share of the run; the product's limits
  are untouched.
- **Answers by design.** ``filter_failure`` drops a "schema-violating request accepted" only
  where the API documents the acceptance (a filled honeypot, the open pixel, a tracked batch
  whose invalid events are each listed in ``rejected``); each drop is counted and printed.
- **HTML answers** are read as text, so the pages are checked against ``HtmlPage`` too.
- **Counting.** ``after_call`` counts every answered request by operation and status, and
  ``after_network_error`` every request that got no answer; the counts are written to
  ``calls_path`` when schemathesis exits, beside its own NDJSON report.
- **Submissions answered.** ``after_call`` also keeps each accepted submission with a
  ``submission_id`` (its address and the ``lead_id`` it was given): the remembered answer must
  be what its callers got, and the lead must be found by the address, not in the answer (a
  known address is answered with an id that names no lead).
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any, Final

import schemathesis
import urllib3.connection
import urllib3.connectionpool
from schemathesis import APIOperation, Case, HookContext, Response
from schemathesis.core.jsonschema import make_validator

FIXTURES_ENV: Final = "TSUNAGU_PROOF_API_FIXTURES"
type OpenApiCase = Case[APIOperation[Any, Any, Any, Any]]

# Operations by schemathesis's label ("METHOD /path" as in docs/openapi.yaml).
SUBMIT_FORM: Final = "POST /forms/{form_id}/submissions"
PREFLIGHT_FORM: Final = "OPTIONS /forms/{form_id}/submissions"
TRACK_EVENTS: Final = "POST /t/events"
PREFLIGHT_TRACK: Final = "OPTIONS /t/events"
OPEN_PIXEL: Final = "GET /o/{token}"
FOLLOW_LINK: Final = "GET /c/{token}"
CHECK_LINK: Final = "HEAD /c/{token}"
SHOW_PREFERENCES: Final = "GET /u/{token}"
UNSUBSCRIBE: Final = "POST /u/{token}"
REPORT_CRM_LEAD: Final = "POST /crm/leads"

# How often a generated value is replaced by a valid one. The rest keep the generated value, so
# the refusal of an unknown form, a forged token or a bad signature is tried as well.
VALID_ID_SHARE: Final = 0.9
VALID_TOKEN_SHARE: Final = 0.85
SIGNED_SHARE: Final = 0.9
BROWSER_UA: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CLICKS_FROM_BROWSER: Final = 0.1
EDGE_INSTANTS: Final = (
    "0001-01-01T00:00:00+09:00",
    "0001-01-03T00:02:00Z",
    "0999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-01:00",
)
EDGE_INSTANT_SHARE: Final = 0.03
CRM_STATUSES: Final = ("working", "in negotiation", "商談中", "won", "lost", "contacted")


def _load_fixtures() -> dict[str, Any]:
    path = os.environ.get(FIXTURES_ENV)
    if not path:
        raise RuntimeError(f"{FIXTURES_ENV} must name the JSON file tests/proof/api.py wrote")
    with open(path, encoding="utf-8") as file:
        fixtures: dict[str, Any] = json.load(file)
    return fixtures


FIXTURES: Final = _load_fixtures()


# ---------------------------------------------------------------- client addresses
class _LoopbackAddresses:
    """127.0.x.y addresses in turn, thread-safe: each new connection takes the next one."""

    def __init__(self, count: int) -> None:
        self._addresses = [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(max(1, count))]
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            address = self._addresses[self._next % len(self._addresses)]
            self._next += 1
            return address


_ADDRESSES: Final = _LoopbackAddresses(int(FIXTURES["source_addresses"]))


class _SpreadSourceConnection(urllib3.connection.HTTPConnection):
    """A plain HTTP connection to the loopback runtime, bound to the next loopback address (Linux
    routes all of 127.0.0.0/8 to lo, so the runtime on 127.0.0.1 sees that address)."""

    def _new_conn(self) -> Any:
        if self.host == "127.0.0.1":
            self.source_address = (_ADDRESSES.take(), 0)
        return super()._new_conn()


# Only plain http is patched: the runtime serves http on 127.0.0.1 and nothing else is called.
urllib3.connectionpool.HTTPConnectionPool.ConnectionCls = _SpreadSourceConnection


# ---------------------------------------------------------------- what the run saw
class _Record:
    """Answers by operation and status, failures dropped as by design, the lead ids a filled
    honeypot was answered with (``api.py`` checks that none of them exists), and each accepted
    submission that sent a ``submission_id``: its form, id, address and the ``lead_id`` its
    caller was given (none for a page), which ``api.py`` holds the remembered answers to."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: Counter[tuple[str, str]] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self.honeypot_lead_ids: set[str] = set()
        self.submissions: list[dict[str, str | None]] = []

    def write(self) -> None:
        with self.lock:
            data = {
                "answers": [
                    {"operation": label, "status": status, "count": count}
                    for (label, status), count in sorted(self.answers.items())
                ],
                "dropped_failures": [
                    {"operation": label, "reason": reason, "count": count}
                    for (label, reason), count in sorted(self.dropped.items())
                ],
                "honeypot_lead_ids": sorted(self.honeypot_lead_ids),
                "submissions": self.submissions,
            }
        with open(FIXTURES["calls_path"], "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1)


RECORD: Final = _Record()
atexit.register(RECORD.write)


def _form_value(case: OpenApiCase, name: str) -> object:
    """A submitted field's value as the handler reads it: JSON as it is; urlencoded as
    ``requests`` encodes a mapping (``None`` left out, a list repeated) and the handler reads
    it back (a repeated name keeps its last value)."""
    body = case.body
    if not isinstance(body, dict):
        return None
    value = body.get(name)
    if case.media_type != "application/x-www-form-urlencoded":
        return value
    repeated: list[object] = list(value) if isinstance(value, list | tuple | dict) else [value]
    sent = [item for item in repeated if item is not None]
    if not sent:
        return None
    last = sent[-1]
    return last.decode() if isinstance(last, bytes) else str(last)


def _honeypot_filled(case: OpenApiCase) -> bool:
    """The product's own rule (forms.validation.is_honeypot_filled): anything but absent,
    empty or false."""
    return case.operation.label == SUBMIT_FORM and _form_value(
        case, FIXTURES["honeypot_field"]
    ) not in (None, "", False)


def _answered_lead_id(response: Response) -> str | None:
    """The ``lead_id`` of a JSON answer; None for a page (a browser post's thank-you page or
    redirect names no lead)."""
    try:
        lead_id = json.loads(response.content).get("lead_id")
    except (ValueError, AttributeError):
        return None
    return None if lead_id is None else str(lead_id)


@schemathesis.hook
def after_call(context: HookContext, case: OpenApiCase, response: Response) -> None:
    with RECORD.lock:
        RECORD.answers[(case.operation.label, str(response.status_code))] += 1
    if case.operation.label != SUBMIT_FORM or response.status_code not in (201, 303):
        return
    lead_id = _answered_lead_id(response)
    if _honeypot_filled(case):
        if lead_id is not None:
            with RECORD.lock:
                RECORD.honeypot_lead_ids.add(lead_id)
        return
    submission_id = _form_value(case, "submission_id")
    if isinstance(submission_id, str) and submission_id:
        submitted = {
            "form_id": str(case.path_parameters.get("form_id")),
            "submission_id": submission_id,
            "email": str(_form_value(case, "email")),
            "lead_id": lead_id,
        }
        with RECORD.lock:
            RECORD.submissions.append(submitted)


@schemathesis.hook
def after_network_error(context: HookContext, case: OpenApiCase, request: Any) -> None:
    with RECORD.lock:
        RECORD.answers[(case.operation.label, "no answer")] += 1


@schemathesis.deserializer("text/html")
def html_page(context: Any, response: Response) -> str:
    """The pages (thank-you, problems, preferences, invalid link) are ``HtmlPage``, a string:
    read as text so that their answers are checked against the schema too."""
    return response.content.decode(response.encoding or "utf-8")


# ---------------------------------------------------------------- failures by design
def _track_event_validator(case: OpenApiCase) -> Any:
    """A validator of a whole JSON ``TrackBatch``, as schemathesis builds it for the operation."""
    body = case.operation.get_body_for_media_type("application/json")
    if body is None:
        return None
    return make_validator(
        body.validation_schema, case.operation.schema.adapter.jsonschema_validator_cls
    )


def _stripped(value: object) -> object:
    """Leading and trailing white space removed from every text, as the handler does before it
    checks an event (documented under ``TrackedEvent``)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {key: _stripped(item) for key, item in value.items()}
    return value


def _only_invalid_events_refused(case: OpenApiCase, response: Response) -> bool:
    """Whether a 200 to a schema-violating batch is the documented per-event answer: each event
    is checked on its own, the valid ones are stored and every invalid one is listed in
    ``rejected``. False when an event the schema refuses was stored, or the batch is wrong as a
    whole: then the failure is the product's."""
    body = case.body
    if case.media_type != "application/json" or not isinstance(body, dict):
        return False
    events = body.get("events")
    site_id = body.get("site_id")
    if not isinstance(site_id, str) or not isinstance(events, list) or not 1 <= len(events) <= 50:
        return False
    try:
        rejected = {item["index"] for item in json.loads(response.content)["rejected"]}
    except (ValueError, KeyError, TypeError):
        return False
    validator = _track_event_validator(case)
    if validator is None:
        return False
    for index, event in enumerate(events):
        alone = {"site_id": site_id, "events": [_stripped(event)]}
        if not validator.is_valid(alone) and index not in rejected:
            return False
    return True


@schemathesis.hook
def filter_failure(
    context: HookContext, failure: Any, case: OpenApiCase, response: Response
) -> bool:
    """Drop only the "schema-violating request accepted" answers the API documents as its
    design; every drop is counted and printed in the report."""
    if getattr(failure, "code", None) != "ST201":
        return True
    label = case.operation.label
    reason = None
    if label == SUBMIT_FORM and _honeypot_filled(case) and response.status_code in (201, 303):
        # A filled honeypot is answered exactly like a new lead so a bot learns nothing, and
        # nothing is stored (api.py checks that the lead ids so answered do not exist).
        reason = "filled honeypot answered like a new lead"
    elif (
        label == TRACK_EVENTS
        and response.status_code == 200
        and _only_invalid_events_refused(case, response)
    ):
        reason = "valid events stored, each invalid one listed in rejected"
    elif label == OPEN_PIXEL and response.status_code == 200:
        # The pixel is the same GIF whatever the token, so that the answer says nothing about
        # whether a token is valid (documented: "The pixel (always)").
        reason = "the open pixel, served whatever the token"
    if reason is None:
        return True
    with RECORD.lock:
        RECORD.dropped[(label, reason)] += 1
    return False


# ---------------------------------------------------------------- valid values
_seen_cases: Counter[bytes] = Counter()
_seen_lock: Final = threading.Lock()


def _chance(case: OpenApiCase) -> random.Random:
    """A generator seeded by the case's own content and by how often the same content came
    before: the same run makes the same choices (with schemathesis's ``--seed``), and the
    minimal case hypothesis generates again and again (an empty form, say) still gets a new
    address or id each time instead of hitting one address's limit."""
    material = repr(
        (
            case.operation.label,
            case.path_parameters,
            case.query,
            dict(case.headers or {}),
            case.body,
            case.media_type,
        )
    )
    digest = hashlib.sha256(material.encode("utf-8", "surrogatepass")).digest()
    with _seen_lock:
        occurrence = _seen_cases[digest]
        _seen_cases[digest] += 1
    return random.Random(digest + occurrence.to_bytes(8, "big"))


def _choice(chance: random.Random, values: list[str]) -> str:
    return values[chance.randrange(len(values))]


def _replace_header(case: OpenApiCase, name: str, value: str) -> None:
    """Only a header the case carries: a case without a required header is schemathesis
    checking that it is refused (``missing_required_header``), and must stay without."""
    if name in case.headers:
        case.headers[name] = value


def _tampered(token: str, chance: random.Random) -> str:
    """A signed token with one character of its signature changed: a forgery's best try."""
    position = len(token) - 1 - chance.randrange(min(8, len(token)))
    swapped = "A" if token[position] != "A" else "B"
    return token[:position] + swapped + token[position + 1 :]


def _token(case: OpenApiCase, chance: random.Random, kind: str) -> None:
    """A token Tsunagu signed in place of the generated one (or, now and then, a forged one)."""
    roll = chance.random()
    if roll >= VALID_TOKEN_SHARE + 0.05:
        return
    token = _choice(chance, FIXTURES["tokens"][kind])
    if roll >= VALID_TOKEN_SHARE:
        token = _tampered(token, chance)
    if kind == "open" and chance.random() < 0.5:
        token += ".gif"  # as the <img> in the mail has it
    case.path_parameters["token"] = token


def _browser(case: OpenApiCase, chance: random.Random, share: float) -> None:
    """Some mail-link requests come from a browser; the rest keep schemathesis's own user agent,
    which Tsunagu rightly judges to be a machine."""
    if chance.random() < share:
        case.headers["User-Agent"] = BROWSER_UA


def _form_submission(case: OpenApiCase, chance: random.Random) -> None:
    if chance.random() < VALID_ID_SHARE:
        case.path_parameters["form_id"] = FIXTURES["form_id"]
    body = case.body
    if not isinstance(body, dict):
        return  # a negative case's non-object body: left for the handler to refuse
    urlencoded = case.media_type == "application/x-www-form-urlencoded"
    if isinstance(body.get("submission_id"), str) and chance.random() < 0.8:
        # A page makes a fresh id when it loads; hypothesis offers the same few ids again and
        # again, which would make nearly every submission a 409 for an id used before. The
        # rest keep the generated id, so replays and reused ids are tried too.
        body["submission_id"] = str(uuid.UUID(int=chance.getrandbits(128), version=4))
    if chance.random() < 0.85:
        # The e-mail address every form requires. Not among the schema's properties (each form
        # defines its own fields), so schemathesis almost never sends one by itself.
        # One address in ten submissions is the same busy one: past its limit of 10 an hour,
        # the submission is refused whole with 429 (a cancelled transaction, then checked).
        busy = chance.random() < 0.1
        body["email"] = (
            FIXTURES["busy_email"] if busy else _choice(chance, FIXTURES["submitter_emails"])
        )
        if chance.random() < 0.5:
            body["consent"] = "on" if urlencoded else True
    # Origin is not a declared parameter of the POST (a browser adds it): adding it is no change
    # to the case as the schema sees it, and tries the allowed and the refused origin.
    roll = chance.random()
    if roll < 0.3:
        case.headers["Origin"] = FIXTURES["allowed_origin"]
    elif roll < 0.35:
        case.headers["Origin"] = FIXTURES["foreign_origin"]
    if urlencoded and chance.random() < 0.4:
        # A plain HTML form post: pages (303, thank-you or problems) instead of JSON.
        case.headers["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"


def _form_preflight(case: OpenApiCase, chance: random.Random) -> None:
    if chance.random() < VALID_ID_SHARE:
        case.path_parameters["form_id"] = FIXTURES["form_id"]
    if chance.random() < 0.7:
        _replace_header(case, "origin", FIXTURES["allowed_origin"])


def _beacon(chance: random.Random, generated: str) -> str:
    """What the snippet sends as text/plain: one page view, the generated text as its title."""
    event: dict[str, Any] = {
        "type": "page_view",
        "visitor_id": _choice(chance, FIXTURES["visitor_ids"]),
        "url": "https://www.example.com/proof?utm_source=schemathesis",
        "title": generated[:300],
    }
    return json.dumps({"site_id": FIXTURES["site_id"], "events": [event]}, ensure_ascii=False)


def _edge_instant(item: dict[str, Any], name: str, chance: random.Random) -> None:
    """Now and then, a date-time at the edge of what RFC 3339 (``format: date-time``) allows in
    place of a generated one: hypothesis seldom draws a year before 1000 with an offset, and
    such an instant once broke the handlers (stored without a padded year, or moved out of
    Python's range when turned into UTC)."""
    if isinstance(item.get(name), str) and chance.random() < EDGE_INSTANT_SHARE:
        item[name] = _choice(chance, list(EDGE_INSTANTS))


def _tracked_events(case: OpenApiCase, chance: random.Random) -> None:
    body = case.body
    if isinstance(body, str) and chance.random() < 0.7:
        case.body = _beacon(chance, body)
        return
    if not isinstance(body, dict):
        return
    if "site_id" in body and chance.random() < VALID_ID_SHARE:
        body["site_id"] = FIXTURES["site_id"]
    events = body.get("events")
    if isinstance(events, list):
        for event in events:
            # Some events come from visitors a form linked to a lead: stored against the lead.
            if isinstance(event, dict) and "visitor_id" in event and chance.random() < 0.15:
                event["visitor_id"] = _choice(chance, FIXTURES["visitor_ids"])
            if isinstance(event, dict):
                _edge_instant(event, "occurred_at", chance)


def _server_signature(case: OpenApiCase, chance: random.Random, kwargs: dict[str, Any]) -> None:
    """The optional signature headers of a tracked batch: mostly left out (a browser's beacon,
    or a server's unsigned post), often a fresh signature with the demo site's secret (a
    site's server, signed at the runtime's time), and now and then as generated (refused)."""
    headers = ("x-tsunagu-timestamp", "x-tsunagu-signature")
    offered = [name for name in headers if name in (case.headers or {})]
    if not offered:
        return
    roll = chance.random()
    if roll < 0.6:
        for name in offered:
            del case.headers[name]
        return
    if roll >= 0.9 or len(offered) < len(headers):
        return  # keep the generated headers: a wrong or half signature must be refused
    body = case.body
    try:
        payload = (
            body.encode("utf-8", "surrogatepass")
            if isinstance(body, str)
            else json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        )
    except (TypeError, ValueError):
        return  # not JSON at all: the transport sends it as generated
    timestamp = str(FIXTURES["site_signing_time"])
    digest = hmac.new(
        FIXTURES["site_signing_secret"].encode(),
        f"{timestamp}.".encode() + payload,
        hashlib.sha256,
    ).hexdigest()
    case.headers["x-tsunagu-timestamp"] = timestamp
    case.headers["x-tsunagu-signature"] = f"v1={digest}"
    kwargs["data"] = payload


def _tracking_preflight(case: OpenApiCase, chance: random.Random) -> None:
    if "site" in case.query and chance.random() < 0.85:
        case.query["site"] = FIXTURES["site_id"]
    if chance.random() < 0.7:
        _replace_header(case, "origin", FIXTURES["allowed_origin"])


def _crm_report(case: OpenApiCase, chance: random.Random, kwargs: dict[str, Any]) -> None:
    """A CRM's report about a lead Tsunagu has, signed as the CRM signs it.

    The signature covers the exact bytes sent, so the body is serialised here and handed to the
    transport as ``data`` (which then sends it as it is); the Unix time is the real one, as the
    handler checks the timestamp against real time."""
    body = case.body
    if isinstance(body, dict):
        if "email" in body and chance.random() < 0.8:
            body["email"] = _choice(chance, FIXTURES["lead_emails"])
        if "crm_id" in body and chance.random() < 0.3:
            body["crm_id"] = _choice(chance, FIXTURES["crm_ids"])
        if chance.random() < 0.5:
            body["status"] = _choice(chance, list(CRM_STATUSES))
        _edge_instant(body, "updated_at", chance)
    headers = ("x-tsunagu-timestamp", "x-tsunagu-signature")
    if not all(name in case.headers for name in headers) or chance.random() >= SIGNED_SHARE:
        return  # keep the generated headers: a missing or wrong signature must be refused
    try:
        payload = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError):
        return  # no body, or not JSON at all: the transport sends it as generated
    timestamp = str(int(time.time()))
    digest = hmac.new(
        FIXTURES["crm_signing_key"].encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    case.headers["x-tsunagu-timestamp"] = timestamp
    case.headers["x-tsunagu-signature"] = f"v1={digest}"
    kwargs["data"] = payload


ADMIN_PATH_IDS: Final = {
    "lead": "lead_emails",
    "journey": "journey_ids",
    "template": "template_ids",
    "form": "form_ids",
    "site": "site_ids",
    "user": "user_emails",
}
"""An admin route's path parameter -> the fixture (``admin_api.py``) with ids that exist."""


def _admin_ids(case: OpenApiCase, chance: random.Random) -> None:
    """Real ids in an admin route's path most of the time (the change is really made); the
    generated ones now and then (the 404s)."""
    admin = FIXTURES.get("admin") or {}
    for name in list(case.path_parameters or {}):
        fixture = ADMIN_PATH_IDS.get(name)
        values = FIXTURES.get(fixture) if fixture == "lead_emails" else admin.get(fixture)
        if values and chance.random() < VALID_ID_SHARE:
            case.path_parameters[name] = _choice(chance, list(values))


@schemathesis.hook
def before_call(context: HookContext, case: OpenApiCase, kwargs: dict[str, Any]) -> None:
    label = case.operation.label
    chance = _chance(case)
    if case.operation.path.startswith("/admin/"):
        _admin_ids(case, chance)
    elif label == SUBMIT_FORM:
        _form_submission(case, chance)
    elif label == PREFLIGHT_FORM:
        _form_preflight(case, chance)
    elif label == TRACK_EVENTS:
        _tracked_events(case, chance)
        _server_signature(case, chance, kwargs)
    elif label == PREFLIGHT_TRACK:
        _tracking_preflight(case, chance)
    elif label == OPEN_PIXEL:
        _token(case, chance, "open")
        # A person's open is scored (a machine's is not): a quarter, so both paths are taken.
        _browser(case, chance, 0.25)
    elif label in (FOLLOW_LINK, CHECK_LINK):
        _token(case, chance, "click")
        # Few: a click that looks like a person's starts a Step Functions execution that holds
        # it until no later click can re-judge it (tracking.settling), by far the costliest
        # request on the local runtime; a machine's click takes the whole handler path too.
        _browser(case, chance, CLICKS_FROM_BROWSER)
    elif label in (SHOW_PREFERENCES, UNSUBSCRIBE):
        _token(case, chance, "unsubscribe")
        _browser(case, chance, 0.5)
    elif label == REPORT_CRM_LEAD:
        _crm_report(case, chance, kwargs)
