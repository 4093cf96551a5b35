"""The README's analytics query and the answer it shows, as printed there (the section
"Analytics with SQL"): tests run the text itself."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def readme_section() -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    return text.split("\n## Analytics with SQL\n", 1)[1].split("\n## ", 1)[0]


def readme_query() -> str:
    """The README's query, as printed there."""
    return re.findall(r"```sql\n(.*?)```", readme_section(), re.DOTALL)[0]


def readme_answer() -> str:
    """The result the README shows for it (the block right after the query)."""
    return readme_section().split(readme_query() + "```", 1)[1].split("```\n", 2)[1].strip()
