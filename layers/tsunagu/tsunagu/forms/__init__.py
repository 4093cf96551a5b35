"""Web forms: their definitions, and what a submission must look like to be accepted."""

RawValue = str | bool | int | float | None
"""A submitted value as it arrives: a JSON scalar, or text from a form post."""
