"""Fault injection: the failures AWS itself produces, at the seams where it produces them.

Off unless asked for (``--faults SPEC`` or ``$TSUNAGU_LOCAL_FAULTS``); ``make proof`` turns it on
to show that the product keeps its promises - no mail twice, no journey step lost - when

- the Lambda API throttles a Step Functions task before its handler runs (``task_throttled``:
  429 TooManyRequestsException, which the state machine's Retry sees as
  Lambda.TooManyRequestsException), or loses the answer of a handler that has run and done its
  work (``task_answer_lost``: 500 ServiceException, seen as Lambda.ServiceException, so the task
  runs again);
- a stream's function raises after its side effects (``handler_raises_after``: Lambda retries
  the whole batch), crashes part-way through a batch (``batch_crash_part_way``: the first records
  are processed, then the whole batch is retried), reports a record it did process as failed
  (``batch_partial_failure``: retried from that record), or a batch that succeeded is delivered
  again (``batch_redelivered``: the poller's checkpoint was lost);
- SES v2 throttles a send before taking the mail (``ses_throttled``: 429
  TooManyRequestsException), or takes the mail and loses its answer (``ses_answer_lost``: the
  mail is in the mailbox, the caller gets a 500).

A spec is ``kind=probability`` pairs separated by commas, ``all=P`` for every kind and
``seed=N`` for the random choices (``"seed=7,all=0.03,ses_answer_lost=0.01"``); ``first=1``
makes every kind with a probability fire at its first chance, so a short run injects each kind
however few chances it has (a batch of two records comes rarely in a small run). The choices are
drawn from one seeded generator; which invocation draws which number still depends on how the
runtime's threads interleave. ``GET /_local/faults`` answers the spec and how many faults of each
kind were injected.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from werkzeug.wrappers import Request, Response

log = logging.getLogger("tsunagu.local.faults")

ENVIRONMENT_VARIABLE = "TSUNAGU_LOCAL_FAULTS"


class Fault(StrEnum):
    TASK_THROTTLED = "task_throttled"
    TASK_ANSWER_LOST = "task_answer_lost"
    HANDLER_RAISES_AFTER = "handler_raises_after"
    BATCH_CRASH_PART_WAY = "batch_crash_part_way"
    BATCH_PARTIAL_FAILURE = "batch_partial_failure"
    BATCH_REDELIVERED = "batch_redelivered"
    SES_THROTTLED = "ses_throttled"
    SES_ANSWER_LOST = "ses_answer_lost"


class FaultSpecError(ValueError):
    """A --faults spec that cannot be read."""


@dataclass
class FaultPlan:
    """How likely each fault is, per chance to inject it, and the generator's seed."""

    probabilities: dict[Fault, float] = field(default_factory=dict)
    seed: int = 0
    first_chance: bool = False
    """Every kind with a probability fires at its first chance, then by its probability."""

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        plan = cls()
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, equals, value = part.partition("=")
            name = name.strip()
            if not equals:
                raise FaultSpecError(f"{part!r}: say kind=probability (or seed=N)")
            try:
                if name == "seed":
                    plan.seed = int(value)
                    continue
                if name == "first":
                    plan.first_chance = bool(int(value))
                    continue
                probability = float(value)
            except ValueError:
                raise FaultSpecError(f"{part!r}: not a number") from None
            if not 0.0 <= probability <= 1.0:
                raise FaultSpecError(f"{part!r}: a probability is between 0 and 1")
            if name == "all":
                plan.probabilities.update(dict.fromkeys(Fault, probability))
            elif name in {f.value for f in Fault}:
                plan.probabilities[Fault(name)] = probability
            else:
                kinds = ", ".join(f.value for f in Fault)
                raise FaultSpecError(f"no fault {name!r} (kinds: {kinds}, all, seed, first)")
        return plan

    def describe(self) -> str:
        chances = ",".join(f"{kind}={p:g}" for kind, p in self.probabilities.items() if p)
        first = ",first=1" if self.first_chance else ""
        return f"seed={self.seed}{first}" + (f",{chances}" if chances else "")


class FaultInjector:
    """Decides, with the plan's seeded generator, whether a fault fires; counts what fired."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)  # noqa: S311 - faults, not secrets
        self._lock = threading.Lock()
        self.injected: dict[Fault, int] = dict.fromkeys(Fault, 0)

    def fires(self, kind: Fault) -> bool:
        probability = self.plan.probabilities.get(kind, 0.0)
        if probability <= 0.0:
            return False
        with self._lock:
            first = self.plan.first_chance and self.injected[kind] == 0
            fired = first or self._random.random() < probability
            if fired:
                self.injected[kind] += 1
        if fired:
            log.info("fault injected: %s", kind)
        return fired

    def index(self, size: int) -> int:
        """A position in a batch of ``size`` records, from the same generator."""
        with self._lock:
            return self._random.randrange(size)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            counts = {kind.value: count for kind, count in self.injected.items()}
        return {"spec": self.plan.describe(), "injected": counts, "total": sum(counts.values())}


_INJECTOR: FaultInjector | None = None


def install(plan: FaultPlan | None) -> FaultInjector | None:
    """Turn injection on for this process (None: off); patch moto's SES v2 for the SES faults."""
    global _INJECTOR  # one runtime per process, like its clock
    _INJECTOR = FaultInjector(plan) if plan is not None else None
    if _INJECTOR is not None:
        _install_ses_faults()
        log.warning("fault injection is on: %s", plan.describe() if plan else "")
    return _INJECTOR


def injector() -> FaultInjector | None:
    return _INJECTOR


def fires(kind: Fault) -> bool:
    """Whether to inject ``kind`` now (never, unless injection is on)."""
    return _INJECTOR is not None and _INJECTOR.fires(kind)


def index(size: int) -> int:
    return _INJECTOR.index(size) if _INJECTOR is not None else 0


def service_error(code: str, status: int, message: str) -> Exception:
    """An AWS service error as moto's server answers it (JSON ``__type``, the HTTP status)."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError(code, message)
    error.code = status
    return error


def _install_ses_faults() -> None:
    from moto.sesv2.models import SESV2Backend

    if getattr(SESV2Backend.send_raw_email, "_tsunagu_faults", False):
        return
    original: Any = SESV2Backend.send_raw_email

    def send_raw_email(self: Any, *args: Any, **kwargs: Any) -> Any:
        if fires(Fault.SES_THROTTLED):
            raise service_error("TooManyRequestsException", 429, "Maximum sending rate exceeded.")
        message = original(self, *args, **kwargs)
        if fires(Fault.SES_ANSWER_LOST):
            raise service_error("InternalFailure", 500, "injected: the answer was lost")
        return message

    send_raw_email._tsunagu_faults = True  # type: ignore[attr-defined]
    SESV2Backend.send_raw_email = send_raw_email  # type: ignore[method-assign]


def faults_page(request: Request) -> Response:
    """``GET /_local/faults``: the spec and the faults injected so far, by kind."""
    current = injector()
    body = current.describe() if current is not None else {"spec": None, "injected": {}, "total": 0}
    return Response(json.dumps(body), status=200, mimetype="application/json")
