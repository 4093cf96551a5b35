"""Tsunagu's domain package: what Tsunagu does, independent of how a request reached it.

Imports point downward only: ``api`` (HTTP mapping used by handlers) -> domain modules
(``leads``, ``forms``) -> ``store`` (PynamoDB models and repositories). Nothing here imports
from ``functions/``.
"""
