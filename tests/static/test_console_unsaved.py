"""No editor of the console loses typed work without a word: each says when its draft differs
from what it loaded or saved (console/src/unsaved.ts), and the guard around the screens asks
before the tab is closed or another screen is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "console" / "src"


@pytest.mark.parametrize(
    "screen", ["JourneyCanvas.tsx", "FormEditor.tsx", "Templates.tsx", "Segments.tsx", "Rules.tsx"]
)
def test_an_editor_says_when_it_holds_unsaved_work(screen: str) -> None:
    text = (SRC / "screens" / screen).read_text(encoding="utf-8")
    assert "useUnsavedWarning(" in text, f"{screen}: edits lost silently"


def test_the_screens_are_guarded_against_leaving_and_closing() -> None:
    unsaved = SRC / "unsaved.ts"
    guard = unsaved.read_text(encoding="utf-8") if unsaved.exists() else ""
    assert "beforeunload" in guard and "useBlocker(" in guard
    # useBlocker works in a data router only (not <HashRouter>)
    app = (SRC / "App.tsx").read_text(encoding="utf-8")
    assert "useLeaveGuard()" in app and "createHashRouter(" in app
