"""Runs in a fresh interpreter (see test_cold_start.py); prints one RESULT line of JSON.

    BENCH_SYS_PATH=<function dir>:<layer dir> python -I -S -B _cold_start_child.py floor
    BENCH_SYS_PATH=<function dir>:<layer dir> python -I -S -B _cold_start_child.py handler <folder>

The interpreter sees nothing of this machine's packages (-I: no PYTHON* variables, user site or
script folder; -S: no site-packages), only what BENCH_SYS_PATH puts first on sys.path: the
built function's folder and the built layer's python/ folder, in the order Lambda puts /var/task
and /opt/python. -B: nothing writes bytecode, as nothing can on Lambda's read-only file systems.

<folder> is one of FUNCTIONS (capture_form, track_event): the handler module is imported as Lambda
imports it (``app``, from the function's folder), then the child builds what the first invocation
builds before its first network call, and the DynamoDB clients its first request builds.

Times are taken with time.perf_counter inside this process, so interpreter start-up and exit are
not part of them. Before the first perf_counter() call nothing is imported but os, sys and time
(and importlib for a handler), so no module's import cost leaves either measurement.

BENCH_CENSUS=1 in the environment records every botocore client created, with what creating it
cost. This imports botocore before the timed part, so the timings of such a run are not
comparable; it is only for the census.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing would move its cost out
if TYPE_CHECKING:
    from typing import Any

MARKER = "RESULT "
DEFERRED_MARKER = "DEFERRED WORK FOLLOWS"
REGION = "ap-northeast-1"


def _leads_client(tables: Any) -> Any:
    return tables.leads._get_connection().connection.client


def _events_client(tables: Any) -> Any:
    return tables.events._get_connection().connection.client


def _shared_client(tables: Any) -> Any:
    """Tables.connection: capture_form's transactions, track_event's BatchGetItem."""
    return tables.connection.client


def _capture_form_first_request() -> None:
    """What capture_form's first submission builds on first use rather than at import (README,
    Deploying to AWS): the Tracer, the stored form read into its record, the submission's check
    with the e-mail validator, and the search modules lead_to_item imports for a lead's first
    save."""
    import tsunagu.store.search_attributes  # noqa: F401  (lead_to_item imports it on first use)
    from tsunagu.forms.stored import StoredForm
    from tsunagu.forms.validation import validate_submission
    from tsunagu.observability import tracer

    tracer()
    email = {"name": "email", "type": "email", "required": True}
    form = StoredForm.from_definition({"form_id": "bench", "name": "Bench", "fields": [email]})
    validate_submission(form, {"email": "taro@example.jp"})


def _track_event_first_request() -> None:
    """What track_event's first batch builds on first use rather than at import: the Tracer and
    the first event's check."""
    from tsunagu.observability import tracer
    from tsunagu.tracking.browser import BrowserEvent

    tracer()
    BrowserEvent.read({"type": "page_view", "visitor_id": "v-bench-0001"})


# Per handler folder: the store its handler asks tsunagu.services for (settings, the clock and the
# bound tables are common to all), then the DynamoDB client the first request builds first, and
# the one it builds next (timed three times: built once, then reused), then what else the first
# request builds on first use.
FUNCTIONS = {
    "capture_form": (
        "lead_repository",
        _leads_client,
        _shared_client,
        _capture_form_first_request,
    ),
    "track_event": (
        "tracking_repository",
        _shared_client,
        _events_client,
        _track_event_first_request,
    ),
}


def _put_artifact_on_path() -> None:
    """The built function's folder and layer, first on sys.path, before anything is timed."""
    sys.path[:0] = [
        entry for entry in os.environ.get("BENCH_SYS_PATH", "").split(os.pathsep) if entry
    ]


def _census() -> list[list[Any]] | None:
    if os.environ.get("BENCH_CENSUS") != "1":
        return None
    import botocore.session

    created: list[list[Any]] = []
    create_client = botocore.session.Session.create_client

    def counted(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        client = create_client(session, service_name, *args, **kwargs)
        created.append([service_name, (time.perf_counter() - started) * 1000])
        return client

    botocore.session.Session.create_client = counted  # type: ignore[method-assign]
    return created


def _top_level_modules() -> list[str]:
    return sorted({name.split(".", 1)[0] for name in sys.modules})


def floor() -> dict[str, Any]:
    started = time.perf_counter()
    import boto3

    boto3.client("dynamodb", region_name=REGION)
    done = time.perf_counter()
    return {"total_ms": (done - started) * 1000, "modules": _top_level_modules()}


def handler(folder: str, census: list[list[Any]] | None) -> dict[str, Any]:
    store, first_client, next_client, first_request = FUNCTIONS[folder]
    import importlib

    started = time.perf_counter()
    # As Lambda's runtime imports the handler module `app` from /var/task.
    try:
        app = importlib.import_module("app")
    except ImportError as error:  # what Lambda reports as Runtime.ImportModuleError
        raise SystemExit(f"the handler does not import: {type(error).__name__}: {error}") from None
    imported = time.perf_counter()

    # What the first invocation builds before its first network call.
    import tsunagu.services
    import tsunagu.settings
    import tsunagu.store.tables

    settings = tsunagu.settings.get_settings()
    getattr(tsunagu.services, store)(settings)
    tsunagu.services.clock(settings)
    tables = tsunagu.store.tables.bind_tables(settings)
    initialised = time.perf_counter()
    modules = _top_level_modules()
    clients_at_init = list(census) if census is not None else None
    before_client = time.perf_counter()  # the look-ups above are not part of any figure

    # For information: the DynamoDB client the first request builds anyway.
    client = first_client(tables)
    with_client = time.perf_counter()

    # Also for information: the next one (capture_form: the connection commit_capture uses for its
    # transaction; track_event: the Events table's, for BatchWriteItem). The first use builds a
    # botocore session and client; later invocations reuse it (index 1 onwards).
    next_client_ms = []
    for _ in range(3):
        before = time.perf_counter()
        next_client(tables)
        next_client_ms.append((time.perf_counter() - before) * 1000)

    # Also for information: what the first request builds on first use that import once built.
    # (The -X importtime run stops reading at the marker: these imports are not the handler's.)
    print(DEFERRED_MARKER, file=sys.stderr, flush=True)
    before = time.perf_counter()
    first_request()
    deferred_ms = (time.perf_counter() - before) * 1000
    first_request_modules = _top_level_modules()
    return {
        "import_ms": (imported - started) * 1000,
        "init_ms": (initialised - imported) * 1000,
        "total_ms": (initialised - started) * 1000,
        "client_ms": (with_client - before_client) * 1000,
        "with_client_ms": (initialised - started + with_client - before_client) * 1000,
        "has_handler": callable(getattr(app, "handler", None)),
        "client_service": client.meta.service_model.service_name,
        "next_client_ms": next_client_ms,
        "deferred_ms": deferred_ms,
        "modules": modules,
        "first_request_modules": first_request_modules,
        "clients_at_init": clients_at_init,
    }


def main() -> None:
    _put_artifact_on_path()
    census = _census()
    mode = sys.argv[1]
    result = floor() if mode == "floor" else handler(sys.argv[2], census)
    import json

    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
