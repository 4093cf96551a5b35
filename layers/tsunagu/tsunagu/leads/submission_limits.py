"""How often forms may be submitted for one address and from one client.

Anyone who knows an address can post a form for it, as often as they like: a script once made an
invented address an MQL in a quarter of a second, and a flood of posts fills the leads table. So
submissions are counted in fixed windows, per address (across every form) and per client
address (the connection's source IP), and a submission over either limit is refused whole with
429 and ``Retry-After``: nothing of it is stored.

The counters live beside the submission it is part of: each is one conditional update in the
capture transaction (``hits < limit``), so a refused submission changes no counter, a counted one
cannot be half-stored, and the check costs no extra request.

The defaults leave people alone: ten submissions an hour for one address is more than anyone
fills in by hand, and sixty a minute from one client address leaves room for a company's whole
office behind one NAT answering the same invitation. Both are settings
(``TSUNAGU_SUBMISSIONS_PER_ADDRESS``, ``TSUNAGU_SUBMISSIONS_PER_CLIENT``; ``off`` disables one).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
OFF = "off"


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``10/1h``, ``60/m``, ``5/30s``; ``off`` (or empty) for no limit."""
        if text.strip().lower() in ("", OFF):
            return None
        match = _LIMIT.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a limit like '10/1h' or 'off'")
        count, amount, unit = match.groups()
        limit, window = int(count), int(amount or 1) * _UNIT_SECONDS[unit]
        if limit < 1 or window < 1:
            raise ValueError(f"{text!r}: the count and the window must be positive")
        return cls(limit, window)

    def describe(self) -> str:
        """In words: '10 per hour', '60 per 5 minutes'."""
        for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if self.window_seconds % seconds == 0:
                amount = self.window_seconds // seconds
                return f"{self.limit} per {unit if amount == 1 else f'{amount} {unit}s'}"
        return f"{self.limit} per {self.window_seconds} seconds"


@dataclass(frozen=True)
class CountedWindow:
    """One counter the submission adds to: refused when it already holds ``limit``."""

    key: str
    limit: int
    ends_at: datetime
    what: str
    """Whose limit, in words: 'this address' or 'this network address'."""
    rule: RateLimit

    @property
    def expires_at(self) -> int:
        """When DynamoDB may delete the counter (TTL): a while after its window ended."""
        return int((self.ends_at + timedelta(hours=1)).timestamp())

    def retry_after_seconds(self, now: datetime) -> int:
        return max(1, math.ceil((self.ends_at - now).total_seconds()))


def _window(rule: RateLimit, scope: str, subject: str, what: str, now: datetime) -> CountedWindow:
    start = int(now.timestamp()) // rule.window_seconds * rule.window_seconds
    ends_at = datetime.fromtimestamp(start + rule.window_seconds, tz=now.tzinfo)
    # A hash, not the address itself: the counter is not a second copy of personal data.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return CountedWindow(f"rate#{scope}#{digest}#{start}", rule.limit, ends_at, what, rule)


@dataclass(frozen=True)
class SubmissionLimits:
    per_address: RateLimit | None
    per_client: RateLimit | None

    @classmethod
    def parse(cls, per_address: str, per_client: str) -> SubmissionLimits:
        return cls(RateLimit.parse(per_address), RateLimit.parse(per_client))

    def windows(self, identity: str, source_ip: str | None, now: datetime) -> list[CountedWindow]:
        """The counters one submission for ``identity`` from ``source_ip`` adds to."""
        counted = []
        if self.per_address is not None:
            counted.append(_window(self.per_address, "address", identity, "this address", now))
        if self.per_client is not None and source_ip:
            counted.append(
                _window(self.per_client, "client", source_ip, "this network address", now)
            )
        return counted


NO_LIMITS = SubmissionLimits(None, None)
