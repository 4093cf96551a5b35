"""Segments: the lead filter (``filter``), saved segments (``saved``) and finding the leads a
segment selects (``selection``)."""
