"""Each store's schema as numbered SQL files (migrations/<store>/NNNN_what.sql), in order; each
store applies the ones it has not applied yet, in its own transaction and under its own lock."""

from __future__ import annotations

from importlib import resources


def migration_files(store: str) -> list[tuple[int, str]]:
    """(version, SQL) of every file of `store` ("sqlite" or "postgres"), by version."""
    folder = resources.files("thrad_events.store") / "migrations" / store
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)
