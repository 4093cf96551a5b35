"""What capture_form and track_event load at import, and the garbage collector around it: the
cold start these two functions pay on every new container (README, Deploying to AWS; measured by
tests/benchmarks/test_cold_start.py). A top-level import put back on their path would pass every
other test and only show as a slower cold start."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from tsunagu import HandlerImports

# Loaded on first use, never by importing the handler: the search words (lead_to_item imports
# them on a lead's first save), the e-mail validator (normalise_email), the X-Ray SDK (the
# Tracer, made on the first invocation). Never loaded at all: pydantic (see below), and with it
# lead search and lead updates.
NOT_AT_IMPORT = {
    "capture_form": (
        "pydantic",
        "tsunagu.store.search_attributes",
        "tsunagu.leads.search_words",
        "tsunagu.store.lead_search",
        "tsunagu.leads.search",
        "tsunagu.leads.updates",
        "email_validator",
        "aws_xray_sdk.core",
    ),
    "track_event": (
        "pydantic",
        "tsunagu.store.search_attributes",
        "tsunagu.leads.search_words",
        "tsunagu.store.lead_search",
        "tsunagu.leads.search",
        "tsunagu.leads.updates",
        "tsunagu.leads.capture",
        "tsunagu.leads.email",
        "email_validator",
        "aws_xray_sdk.core",
    ),
}

CHILD = textwrap.dedent(
    """
    import gc, importlib.util, json, sys
    folder, name = sys.argv[1], sys.argv[2]
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, folder + "/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    print(json.dumps({
        "modules": sorted(sys.modules),
        "gc_enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
        "handler": callable(module.handler),
    }))
    """
)


def imported_fresh(folder: str, module_name: str) -> dict[str, object]:
    """Import functions/<folder>/app.py as ``module_name`` in a new interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT / "functions" / folder), module_name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("folder", sorted(NOT_AT_IMPORT))
def test_importing_the_handler_as_lambda_does_leaves_the_deferred_modules_unloaded(
    folder: str,
) -> None:
    result = imported_fresh(folder, "app")
    assert result["handler"] is True
    loaded = set(result["modules"])  # type: ignore[call-overload]
    assert loaded.isdisjoint(NOT_AT_IMPORT[folder]), loaded & set(NOT_AT_IMPORT[folder])
    # As Lambda's entry module: what the imports made is frozen, and the collector is back on.
    assert result["gc_enabled"] is True
    assert isinstance(result["frozen"], int) and result["frozen"] > 10_000


REQUEST = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import app
    import tsunagu.store.search_attributes  # what lead_to_item imports on a lead's first save
    import tsunagu.store.stored_forms, tsunagu.store.tracking
    from tsunagu.forms.stored import StoredForm
    from tsunagu.forms.validation import validate_submission
    from tsunagu.tracking.browser import BrowserEvent
    from tsunagu.tracking.stored_sites import StoredSite

    email = {"name": "email", "type": "email", "required": True}
    form = StoredForm.from_definition({"form_id": "f", "name": "F", "fields": [email]})
    validate_submission(form, {"email": "taro@example.jp"})
    StoredSite.from_definition({"site_id": "s", "name": "S", "allowed_origins": []})
    BrowserEvent.read({"type": "page_view", "visitor_id": "v-0000000001"})
    print(json.dumps(sorted(sys.modules)))
    """
)


@pytest.mark.parametrize("folder", sorted(NOT_AT_IMPORT))
def test_a_first_request_loads_no_pydantic(folder: str) -> None:
    # Form definitions and sites are checked with pydantic when they are saved; the functions
    # that take submissions and events read them back as plain records (tsunagu.forms.stored,
    # tsunagu.tracking.stored_sites) and check requests by hand: pydantic's import is about
    # 50 ms of a cold start (README, Deploying to AWS).
    completed = subprocess.run(
        [sys.executable, "-c", REQUEST, str(ROOT / "functions" / folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout.splitlines()[-1])
    assert "tsunagu.store.search_attributes" in loaded  # the request path was walked
    assert not [name for name in loaded if name.split(".")[0] in ("pydantic", "pydantic_core")]
    assert "tsunagu.store.lead_search" not in loaded and "tsunagu.leads.updates" not in loaded


@pytest.mark.parametrize("folder", sorted(NOT_AT_IMPORT))
def test_loaded_under_another_name_as_the_local_runtime_does_nothing_is_frozen(
    folder: str,
) -> None:
    result = imported_fresh(folder, f"tsunagu_function_{folder}_app")
    assert result["handler"] is True
    assert result["gc_enabled"] is True
    assert result["frozen"] == 0


@pytest.fixture
def freezes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Calls of gc.freeze, recorded instead of made (a freeze would reach all of pytest's
    objects); the collector's state is restored afterwards."""
    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    was_enabled = gc.isenabled()
    try:
        yield calls
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


def test_the_collector_is_off_during_the_imports_and_on_again_after(freezes: list[str]) -> None:
    gc.enable()
    with HandlerImports("app"):
        assert not gc.isenabled()
    assert gc.isenabled()
    assert freezes == ["freeze"]


def test_an_import_that_raises_still_turns_the_collector_back_on_and_freezes_nothing(
    freezes: list[str],
) -> None:
    gc.enable()
    with pytest.raises(ImportError), HandlerImports("app"):
        raise ImportError("no module named missing")
    assert gc.isenabled()
    assert freezes == []


def test_a_collector_found_off_is_left_off(freezes: list[str]) -> None:
    gc.disable()
    with HandlerImports("tsunagu_function_CaptureFormFunction_app"):
        pass
    assert not gc.isenabled()
    assert freezes == []
