"""Logger, Metrics and Tracer, configured once for every function.

Powertools reads its settings (service name, namespace, log level, tracing and metrics switches)
from the environment the template gives each function; nothing here talks to AWS at import.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

# A function that had nothing to count in an invocation is normal, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
metrics = Metrics()

Handler = Callable[[dict[str, Any], Any], Any]

_tracers: list[Tracer] = []


def tracer() -> Tracer:
    """The process's Tracer, made on first use rather than at import.

    Making one imports the X-Ray SDK (about 18 ms) and, with tracing on, patches botocore,
    pynamodb and the HTTP libraries (several ms more): made here, that is part of the first
    invocation rather than of the handler module's import, moved and not saved when tracing is
    on (README, Deploying to AWS). The patches are made on classes, so the clients built before
    have their calls traced too."""
    if not _tracers:
        _tracers.append(Tracer())
    return _tracers[0]


def observed(*, correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Wrap a Lambda handler with structured logging, tracing and metrics flushing."""

    def wrap(handler: Handler) -> Handler:
        traced_handler: list[Handler] = []

        @functools.wraps(handler)
        def traced(event: dict[str, Any], context: Any) -> Any:
            if not traced_handler:
                # Neither the answer nor the exception object goes into the trace's metadata:
                # answers carry leads' personal data (the admin API's, a journey task's), and
                # X-Ray keeps traces outside the retention Tsunagu sets for its own data. The
                # SDK still records an error's type, message and stack on the subsegment.
                traced = tracer().capture_lambda_handler(
                    handler, capture_response=False, capture_error=False
                )
                traced_handler.append(traced)
            return traced_handler[0](event, context)

        measured = metrics.log_metrics(traced)
        return logger.inject_lambda_context(correlation_id_path=correlation_id_path)(measured)

    return wrap


HTTP_API = correlation_paths.API_GATEWAY_HTTP
