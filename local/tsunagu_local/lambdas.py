"""Functions of the template, their handlers imported and called in this process.

One module per function, loaded at its first invocation (its cold start) and kept (warm). Each
invocation runs with the function's own environment; because the process has one environment,
invocations take turns. A handler's exception comes back as a Lambda function error, so a state
machine's Catch or a stream's retry sees what it would see in AWS.

A function's Timeout is not enforced: ending an invocation after so many real seconds would make
a test's outcome depend on the machine's speed (a loaded CI machine would fail it). An invocation
that outlives its Timeout finishes, and the runtime logs a warning that AWS would have ended it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tsunagu_local import faults
from tsunagu_local.clocks import RuntimeClock, working
from tsunagu_local.faults import Fault

log = logging.getLogger("tsunagu.local.lambda")

# One process, one os.environ: invocations must not overlap. Re-entrant, so a handler that
# invokes another function synchronously does not deadlock.
_ENVIRONMENT_LOCK = threading.RLock()

NESTED_HEADER = "x-tsunagu-invoked-by"
"""Set on a synchronous Lambda Invoke made by a running handler. That call reaches moto's
server on another thread, which could never take the lock the waiting handler holds (the admin
API publishing through publish_journey hung until its timeout): the nested invocation runs
under the caller's hold instead, which is safe because the caller is blocked until it answers."""
_running = threading.local()
"""``token``: the invocation this thread is running a handler for (None outside one)."""
_holder: list[str] = []
"""The tokens of the invocations holding the lock, outermost first."""


def _mark_nested(params: dict[str, Any], **_: Any) -> None:
    """botocore's before-call hook on Lambda Invoke: say which running handler is calling."""
    token = getattr(_running, "token", None)
    if token is not None:
        params.setdefault("headers", {})[NESTED_HEADER] = token


def mark_nested_invocations() -> None:
    """Register the hook on the default session, which the handlers' clients come from."""
    import boto3

    events = boto3._get_default_session().events
    events.unregister("before-call.lambda.Invoke", unique_id="tsunagu-nested-invoke")
    events.register("before-call.lambda.Invoke", _mark_nested, unique_id="tsunagu-nested-invoke")


class FunctionError(Exception):
    """A handler raised: carries the payload Lambda would return with x-amz-function-error."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", ""))
        self.payload = payload


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int
    clock: RuntimeClock
    """The runtime's: an invocation is work in flight (in virtual time, the clock waits for it)."""
    _module: ModuleType | None = None
    invocations: int = 0
    past_timeout: int = 0
    """Invocations that ran longer than ``timeout`` real seconds (each was warned about)."""

    def _entry_point(self) -> Callable[[Any, Any], Any]:
        module_path, function_name = self.handler.rsplit(".", 1)
        if self._module is None:
            source = self.code_dir / (module_path.replace(".", "/") + ".py")
            module_name = f"tsunagu_function_{self.logical_id}_{module_path.replace('.', '_')}"
            spec = importlib.util.spec_from_file_location(module_name, source)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(f"{self.logical_id}: no handler module at {source}")
            module = importlib.util.module_from_spec(spec)
            # Registered like any imported module, so dataclasses and pydantic can find it.
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            self._module = module
        entry: Callable[[Any, Any], Any] = getattr(self._module, function_name)
        return entry

    def invoke(self, event: Any, *, invoked_by: str | None = None) -> Any:
        """Call the handler; raise FunctionError with Lambda's error payload if it fails.
        ``invoked_by``: the running invocation that called this one synchronously (it holds
        the lock and waits for the answer)."""
        nested = invoked_by is not None and bool(_holder) and _holder[-1] == invoked_by
        lock = contextlib.nullcontext() if nested else _ENVIRONMENT_LOCK
        with working(self.clock), lock, _environment(self.environment), _running_as_token():
            self.invocations += 1
            context = LambdaContext(self.name, self.arn, self.memory, self.timeout)
            try:
                entry_point = self._entry_point()
                # After the import: a cold start is Lambda's Init phase, not the invocation's.
                with self._warned_past_timeout():
                    return entry_point(event, context)
            except Exception as error:
                log.error("%s failed:\n%s", self.logical_id, traceback.format_exc())
                raise FunctionError(
                    {
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "requestId": context.aws_request_id,
                        "stackTrace": traceback.format_tb(error.__traceback__),
                    }
                ) from error

    @contextmanager
    def _warned_past_timeout(self) -> Iterator[None]:
        """Warn when the handler runs longer than the function's Timeout, in real seconds (what
        Lambda counts), however it ends. It is not stopped: see the module's docstring."""
        started = time.monotonic()
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            if elapsed > self.timeout:
                self.past_timeout += 1
                log.warning(
                    "%s ran %.2f real seconds, past its Timeout of %d s: in AWS it would be killed"
                    ' with "Task timed out after %d.00 seconds"',
                    self.logical_id,
                    elapsed,
                    self.timeout,
                    self.timeout,
                )


@contextmanager
def _running_as_token() -> Iterator[None]:
    token = uuid.uuid4().hex
    outer = getattr(_running, "token", None)
    _running.token = token
    _holder.append(token)
    try:
        yield
    finally:
        _holder.pop()
        _running.token = outer


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    # Only the function's own keys are touched: other threads (moto's server, state machine
    # executions) read the shared variables meanwhile, and must never see them missing.
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class FunctionRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, LocalFunction] = {}
        self._by_logical_id: dict[str, LocalFunction] = {}

    def add(self, function: LocalFunction) -> None:
        self._by_name[function.name] = function
        self._by_logical_id[function.logical_id] = function

    def get(self, name_or_arn: str) -> LocalFunction:
        name = name_or_arn.split(":")[6] if name_or_arn.startswith("arn:") else name_or_arn
        if name in self._by_name:
            return self._by_name[name]
        return self._by_logical_id[name]

    def __iter__(self) -> Iterator[LocalFunction]:
        return iter(self._by_logical_id.values())


def install_moto_invoke(registry: FunctionRegistry) -> None:
    """Make moto's docker-less Lambda call our handlers (Step Functions tasks invoke through it)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    mark_nested_invocations()

    def invoke(
        backend: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        function = registry.get(function_name)
        event = json.loads(body) if body else {}
        if headers.get("X-Amz-Invocation-Type") == "Event":
            # Counted as work before this request answers, so the clock cannot move in between.
            function.clock.begin_work()
            threading.Thread(target=_invoke_quietly, args=(function, event), daemon=True).start()
            return b""
        if faults.fires(Fault.TASK_THROTTLED):  # before the handler: nothing was done
            raise faults.service_error("TooManyRequestsException", 429, "Rate Exceeded.")
        try:
            result = function.invoke(event, invoked_by=headers.get(NESTED_HEADER))
        except FunctionError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error.payload).encode()
        if faults.fires(Fault.TASK_ANSWER_LOST):  # the handler has done its work
            raise faults.service_error("ServiceException", 500, "injected: the answer was lost")
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]


def _invoke_quietly(function: LocalFunction, event: Any) -> None:
    # Already logged; an asynchronous invocation's caller never sees the error.
    try:
        with contextlib.suppress(FunctionError):
            function.invoke(event)
    finally:
        function.clock.end_work()
