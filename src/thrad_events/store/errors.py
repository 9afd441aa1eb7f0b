"""The one error a store raises when it cannot answer; callers turn it into a 503."""

from __future__ import annotations


class StorageError(Exception):
    """The store could not answer (unreachable, locked beyond its timeout, saturated)."""
