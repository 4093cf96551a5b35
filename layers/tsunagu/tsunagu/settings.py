"""Typed settings, built once per cold start from the environment the template gives a function.

The cache is keyed on the values of the variables themselves, not on the process: the embedded
local runtime runs every function in one process, each with its own environment, and a cache keyed
on nothing would hand one function's settings to another.

A plain dataclass, checked by the few lines below, not a pydantic model: every function imports
this module on a cold start, and importing pydantic costs about 50 ms there (the built artifact,
README: Deploying to AWS). The form and tracking functions import no pydantic at all; a function
that needs it for a request body pays for it alone.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tsunagu.leads.submission_limits import RateLimit, SubmissionLimits

ENV_PREFIX = "TSUNAGU_"
_DOMAIN_OR_NOTHING = r"^(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})?$"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class SettingsError(ValueError):
    """The environment does not hold valid settings: each problem names its setting and the
    variable it is read from. Raised on a cold start, so the function fails before any request."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("settings refused: " + "; ".join(problems))
        self.problems = problems


def _setting(
    default: Any = MISSING,
    *,
    pattern: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """A setting's default and the bounds its value must keep (checked in __post_init__)."""
    bounds = {"pattern": pattern, "ge": ge, "gt": gt, "le": le}
    metadata = {name: bound for name, bound in bounds.items() if bound is not None}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class Settings:
    stage: str = _setting(pattern=r"^[a-z][a-z0-9-]{0,20}$")
    region: str
    leads_table: str
    lead_identities_table: str
    events_table: str
    consent_table: str
    forms_table: str
    idempotency_table: str
    sites_table: str
    tracking_secret_arn: str
    """Secrets Manager secret holding the keys that sign mail-tracking tokens."""
    templates_table: str
    journey_waits_table: str
    journeys_table: str
    qualification_table: str
    lead_terms_table: str
    """A lead's tags and search words, one entry each (kept from the leads table's stream)."""
    analytics_delivery_stream: str | None = None
    """The Firehose delivery stream that takes events as rows for SQL (set on report_events)."""
    audit_table: str | None = None
    """The audit log (tsunagu.commands.audit): every change people make, and every refusal."""
    audit_retention_days: int = _setting(400, ge=1, le=3650)
    """How long an audit entry is kept (the table's TTL removes it after)."""
    reports_table: str | None = None
    """The report counters (tsunagu.reports): kept from the events stream, read by reports."""
    imports_table: str | None = None
    """The lead lists imported (tsunagu.imports.apply): each import and what each row did, so
    that it can be undone."""
    imports_bucket: str | None = None
    """Uploaded lead lists and a background import's chunks (tsunagu.store.import_files)."""
    import_state_machine_arn: str | None = None
    """The state machine that imports a large list in chunks (statemachines/import_list)."""
    rebuild_state_machine_arn: str | None = None
    """The state machine that counts a long range of report days again, a day at a time
    (statemachines/rebuild_reports); None: the admin API refuses days it cannot count in time."""
    segments_table: str | None = None
    """The saved segments (tsunagu.segments.saved), read by sends for their exclusions."""
    admin_allowed_cidrs: str = ""
    """Where the admin API may be called from: CIDR ranges, comma-separated (seed 002's
    IPアドレス制御); empty: from anywhere (sign-in is still required)."""
    console_origin: str = _setting("", pattern=r"^(https://[A-Za-z0-9.-]+(:[0-9]+)?)?$")
    """Where the console is served from in AWS (``https://<CloudFront domain>``): the admin API
    answers that origin's cross-origin requests, and no other's. Empty on the local runtime,
    where the console and the API share an origin."""
    admin_user_pool_id: str | None = None
    """The user pool of the people who sign in (set where admins manage them: the admin API)."""
    publish_journey_function: str | None = None
    """The function that publishes journeys (set where people publish: the admin API)."""
    segment_entries_function: str | None = None
    """The function that enters a segment's leads (enter_segments): a start for a segment runs
    there in the background (set on the admin API, and on the function itself, which goes on
    in a new invocation when its time runs short)."""
    crm_secret_arn: str | None = None
    """Secrets Manager secret with the CRM webhooks' signing keys (``inbound``, ``outbound``)."""
    site_secret_arn: str | None = None
    """Secrets Manager secret with the key sites' signing secrets are derived from
    (``{"signing_key": ...}``, tsunagu.tracking.server_posts): set on the tracking function,
    which verifies sites' signed server posts, and the admin API, which makes the secrets."""
    crm_webhook_url: str | None = None
    """Where a new MQL is pushed (the CRM's inbound webhook); unset: no push. HTTPS only (a
    lead's data goes in the body); plain http only to a loopback host, for a local stub."""
    state_machine_arn_prefix: str | None = None
    """``arn:aws:states:<region>:<account>:stateMachine:<stack>-``: a journey's state machine is
    this plus its name (set where executions are started)."""
    journey_role_arn: str | None = None
    """The role every published journey's state machine runs with (set on the publishing
    function)."""
    journey_activity_arns: str = ""
    """The functions a compiled journey calls, as ``JourneyGateFunctionArn=arn:...,...`` (the
    compiler's substitutions, as template.yaml gives the stack's journeys)."""
    frequency_cap: str = "per_day=1,per_week=3,over=defer"
    """Marketing mails per lead across all journeys (see journeys.gate.FrequencyCap)."""
    api_url: str | None = None
    """The public base URL mail links point at (set on the functions that render mail)."""
    mail_configuration_set: str | None = None
    mail_allowlist: str = ""
    """Outside prod, the only addresses or domains mail may go to: comma-separated."""
    verified_sender_domains: str = ""
    """Domains verified in SES, comma-separated: a lead's owner may send from these."""
    unsubscribe_mailto: str | None = None
    """An address for mailto: List-Unsubscribe (optional; the https one-click link is always
    there)."""
    reply_domain: str = _setting(
        "", pattern=r"^(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})?$"
    )
    """Where replies to marketing mail go (``reply+<token>@<domain>``, received by SES and
    recorded on the lead: tsunagu.mail.replies); empty: mail keeps its template's Reply-To and
    replies are not received."""
    replies_bucket: str | None = None
    """Where SES's receipt rule stores each received reply whole (set on receive_reply)."""
    replies_prefix: str = "replies/"
    """The receipt rule's object key prefix: a reply is stored at this plus SES's message id."""
    max_reply_bytes: int = _setting(10 * 1024 * 1024, ge=1024, le=40 * 1024 * 1024)
    """A received reply larger than this is logged and not read (SES receives up to 40 MB)."""
    console_url: str = _setting("", pattern=r"^(https?://[A-Za-z0-9.:-]+(/[A-Za-z0-9._/-]*)?)?$")
    """The console's address (``https://<CloudFront domain>/console``): a forwarded reply
    links to the lead there; empty: no link."""
    max_send_rate: float = _setting(10.0, gt=0, le=1000)
    """Mails per second one function instance sends at most (SES enforces the account's)."""
    soft_bounce_limit: int = _setting(3, ge=1, le=100)
    """Transient bounces after which an address is suppressed."""
    business_country: str = _setting("JP", pattern=r"^[A-Z]{2}$")
    """Whose national holidays are not business days."""
    company_closed_days: str = ""
    """The company's own closed days: ``2026-08-13..2026-08-16, 2026-12-29..2027-01-03``."""
    quiet_hours: str = "20:00-08:00"
    """Local times no journey mail goes out (empty: none)."""
    default_time_zone: str = "Asia/Tokyo"
    """The team's: the days reports count in, and the local time of leads whose own time zone
    is not known."""
    # Raw events expire after this many days (DynamoDB TTL); summaries on the lead stay.
    event_retention_days: int = _setting(400, ge=1, le=3650)
    # Web-form bodies are small; anything bigger is refused before it is parsed.
    max_form_body_bytes: int = _setting(16 * 1024, ge=1024, le=1024 * 1024)
    # Form definitions are read on every submission; a warm function keeps them this long.
    form_cache_seconds: float = _setting(30.0, ge=0, le=3600)
    # How long a client submission id is remembered for replay detection.
    idempotency_ttl_hours: int = _setting(48, ge=1, le=24 * 30)
    submissions_per_address: str = "10/1h"
    """Form submissions one address may make, across every form (``off``: no limit)."""
    submissions_per_client: str = "60/1m"
    """Form submissions from one client network address (``off``: no limit)."""
    # Only set by the embedded local runtime: where its AWS endpoint is.
    aws_endpoint_url: str | None = None
    # The clock (see tsunagu.clock). Unset in AWS: the system clock.
    clock_start: str | None = None
    clock_epoch: float | None = None
    time_scale: float = _setting(1.0, gt=0, le=1_000_000)
    clock_url: str | None = None
    """Only set by the embedded runtime in virtual time: where its clock tells the time."""

    def __post_init__(self) -> None:
        problems = [
            f"{setting.name} ({variable_of(setting.name)}): {problem}"
            for setting in fields(self)
            if (problem := _problem(setting, getattr(self, setting.name)))
        ]
        if problems:
            raise SettingsError(problems)

    @property
    def admin_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The admin API's allowlist; empty: no limit."""
        return _networks(self.admin_allowed_cidrs)

    @property
    def submission_limits(self) -> SubmissionLimits:
        return SubmissionLimits.parse(self.submissions_per_address, self.submissions_per_client)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """The settings a function's environment gives; SettingsError names every variable
        that is missing or does not read as its setting's type and bounds."""
        texts: dict[str, str] = {}
        for setting in fields(cls):
            if variable_of(setting.name) in environ:
                texts[setting.name] = environ[variable_of(setting.name)]
        texts["region"] = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", "")
        if "AWS_ENDPOINT_URL" in environ:
            texts["aws_endpoint_url"] = environ["AWS_ENDPOINT_URL"]
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in fields(cls):
            if setting.name in texts:
                try:
                    values[setting.name] = _read(setting, texts[setting.name])
                except ValueError as error:
                    problems.append(f"{setting.name} ({variable_of(setting.name)}): {error}")
            elif setting.default is MISSING:
                problems.append(f"{setting.name} ({variable_of(setting.name)}): required")
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    @property
    def journey_activities(self) -> dict[str, str]:
        pairs = (pair.partition("=") for pair in self.journey_activity_arns.split(","))
        return {name.strip(): arn.strip() for name, _, arn in pairs if name.strip()}

    @property
    def allowlist(self) -> frozenset[str]:
        return frozenset(a.strip().casefold() for a in self.mail_allowlist.split(",") if a.strip())

    @property
    def sender_domains(self) -> frozenset[str]:
        return frozenset(
            d.strip().casefold() for d in self.verified_sender_domains.split(",") if d.strip()
        )

    def as_environ(self) -> dict[str, str]:
        """The environment that reproduces these settings (used by the local runtime and CLI)."""
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.aws_endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
        for name, value in asdict(self).items():
            if value is not None and name not in ("region", "aws_endpoint_url"):
                env[variable_of(name)] = str(value)
        return env


_AWS_VARIABLES = {"region": "AWS_REGION", "aws_endpoint_url": "AWS_ENDPOINT_URL"}


def variable_of(name: str) -> str:
    """The environment variable a setting is read from: TSUNAGU_<NAME>, or AWS's own."""
    return _AWS_VARIABLES.get(name) or ENV_PREFIX + name.upper()


def _secure_crm_url(url: str) -> None:
    parts = urlsplit(url)
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if url and (not parts.hostname or not (parts.scheme == "https" or loopback)):
        raise ValueError("must be an https:// URL (plain http only to a loopback host)")


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    # ip_network's ValueError names the part it cannot read.
    return tuple(ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def _known_time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # A typo here would otherwise surface as a 500 on the first report or journey wait
        raise ValueError(f"no such time zone {name!r} (an IANA name: Asia/Tokyo)") from None


_CHECKS: dict[str, Callable[[str], object]] = {
    "crm_webhook_url": _secure_crm_url,
    "submissions_per_address": RateLimit.parse,
    "submissions_per_client": RateLimit.parse,
    "admin_allowed_cidrs": _networks,
    "default_time_zone": _known_time_zone,
}
"""The settings whose values are checked by more than their type and bounds: each raises a
ValueError saying what is wrong."""


_TYPES: dict[str, tuple[type[Any], ...]] = {"str": (str,), "int": (int,), "float": (int, float)}
"""The types a setting may have (its annotation, without `` | None``), and the values each takes."""


def _read(setting: Field[Any], text: str) -> Any:
    """A variable's text as its setting's type (the annotation's text: this module's
    annotations are not evaluated)."""
    kind = str(setting.type).removesuffix(" | None")
    if kind in ("int", "float") and not text.isascii():
        # int() and float() read other scripts' digits (「５」); a setting is written in ASCII.
        raise ValueError(f"must be a number written in ASCII digits, not {text[:40]!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"must be a whole number, not {text[:40]!r}") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"must be a number, not {text[:40]!r}") from None
    return text


def _problem(setting: Field[Any], value: Any) -> str | None:
    """What is wrong with a setting's value, or None."""
    kind = str(setting.type)
    if value is None:
        return None if kind.endswith(" | None") else "required"
    kind = kind.removesuffix(" | None")
    expected: tuple[type[Any], ...] = _TYPES[kind]
    if isinstance(value, bool) or not isinstance(value, expected):
        return f"must be {'text' if kind == 'str' else 'a number'}, not {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    rules: Mapping[str, Any] = setting.metadata
    if "pattern" in rules and not re.fullmatch(rules["pattern"], value):
        return f"must match {rules['pattern']}"
    if "ge" in rules and value < rules["ge"]:
        return f"must be at least {rules['ge']}"
    if "gt" in rules and value <= rules["gt"]:
        return f"must be more than {rules['gt']}"
    if "le" in rules and value > rules["le"]:
        return f"must be at most {rules['le']}"
    if setting.name in _CHECKS:
        try:
            _CHECKS[setting.name](value)
        except ValueError as error:
            return str(error)
    return None


def _relevant_environ() -> tuple[tuple[str, str], ...]:
    keys = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
    return tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX) or k in keys)
    )


@lru_cache(maxsize=32)
def _settings_for(environ: tuple[tuple[str, str], ...]) -> Settings:
    return Settings.from_environ(dict(environ))


def get_settings() -> Settings:
    """The settings for the current environment; validated once, then cached."""
    return _settings_for(_relevant_environ())
