"""Tsunagu's domain package: what Tsunagu does, independent of how a request reached it.

Imports point downward only: ``api`` (HTTP mapping used by handlers) -> domain modules
(``leads``, ``forms``, ``tracking``, ``mail``, ``routing``) -> ``store`` (PynamoDB models,
repositories and the SES adapter). ``services`` wires them for a function. Nothing here imports
from ``functions/``.
"""
