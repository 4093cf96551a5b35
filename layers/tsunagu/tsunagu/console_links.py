"""Addresses of the console's pages, for the links in mail to colleagues.

The console is a hash-routed single-page app (console/src/App.tsx: ``createHashRouter``), one
document at its URL: a screen is named in the fragment, never in the path. A path under it names
no file, which CloudFront's bucket answers 403 and the local runtime 404. The console's own links
encode the address the same way (``encodeURIComponent``); its router decodes it back.
"""

from __future__ import annotations

from urllib.parse import quote


def lead_page_url(console_url: str, email: str) -> str:
    """The console's page of the lead with this address (``console_url``: TSUNAGU_CONSOLE_URL,
    with or without its trailing slash)."""
    return f"{console_url.rstrip('/')}/#/leads/{quote(email, safe='')}"
