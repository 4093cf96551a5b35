"""Logger, Metrics and Tracer, configured once for every function.

Powertools reads its settings (service name, namespace, log level, tracing and metrics switches)
from the environment the template gives each function; nothing here talks to AWS at import.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

# A function that had nothing to count in an invocation is normal, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
metrics = Metrics()
tracer = Tracer()

Handler = Callable[[dict[str, Any], Any], Any]


def observed(*, correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Wrap a Lambda handler with structured logging, tracing and metrics flushing."""

    def wrap(handler: Handler) -> Handler:
        traced = tracer.capture_lambda_handler(handler)
        measured = metrics.log_metrics(traced)
        return logger.inject_lambda_context(correlation_id_path=correlation_id_path)(measured)

    return wrap


HTTP_API = correlation_paths.API_GATEWAY_HTTP
