"""The tracking snippet's source, shipped inside the domain package (and so the layer)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def snippet_source() -> str:
    return files("tsunagu.tracking").joinpath("snippet.js").read_text("utf-8")
