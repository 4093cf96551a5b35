"""Run by this folder's Makefile after pip: the layer must hold exactly what requirements.txt
pins, at the pinned versions. requirements.txt pins the dependencies of dependencies too, but a
release that starts requiring something new (on Lambda's platform) would have pip fetch it at
whatever version the index has that day, and the deployed layer would no longer be the tested
one: this stops the build instead.

Standard library only: it runs on whichever python3.13 `sam build` finds.

Usage: python3.13 installed_as_pinned.py requirements.txt <the layer's site folder>
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path


def canonical(name: str) -> str:
    """PEP 503's normalised name, as pip compares names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: Path) -> dict[str, str]:
    """requirements.txt's name==version lines (make layer-pins writes only those)."""
    pins = {}
    for line in requirements.read_text("utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            name, _, version = text.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def installed(site: Path) -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in distributions(path=[str(site)])}


def main(requirements: Path, site: Path) -> int:
    expected, found = pinned(requirements), installed(site)
    if found == expected:
        return 0
    for name in sorted(expected.keys() | found.keys()):
        if name not in found:
            problem = f"pinned {expected[name]}, not installed"
        elif name not in expected:
            problem = f"{found[name]} installed, not pinned"
        elif found[name] != expected[name]:
            problem = f"pinned {expected[name]}, installed {found[name]}"
        else:
            continue
        print(f"layer: {name} {problem}", file=sys.stderr)
    print("the layer is not what requirements.txt pins: run make layer-pins", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
