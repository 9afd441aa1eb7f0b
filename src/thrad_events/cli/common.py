"""What every `thrad-events` command shares: the --database-url option, the settings, the store
it works on, time options, refusals and tables.

This module imports no command module: the command modules import it, and cli/__init__.py
imports them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from thrad_events.auth import admin
from thrad_events.config import ConfigError, Settings
from thrad_events.errors import IngestError
from thrad_events.reports.safe_text import terminal_text
from thrad_events.store import missing_sqlite_file, open_store
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def database_option(func: F) -> F:
    return click.option(
        "--database-url",
        envvar="THRAD_DATABASE_URL",
        default=None,
        help="sqlite:///path or postgresql://... [env THRAD_DATABASE_URL]",
    )(func)


def cli_settings(**overrides: Any) -> Settings:
    """The settings from the environment and the command's flags; a bad value is one line."""
    try:
        return Settings.from_env(os.environ, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def cli_store(database_url: str | None, *, create: bool = False) -> Store:
    """The configured store, migrated, closed when the command ends; without `create`, a
    SQLite file that holds no database of ours (missing, empty, another program's) is an
    error."""
    settings = cli_settings(database_url=database_url)
    missing = None if create else missing_sqlite_file(settings.database_url)
    if missing is not None:
        raise click.ClickException(
            f"no thrad-events database at {missing} "
            f"(THRAD_DATABASE_URL={settings.database_url}); "
            "`thrad-events migrate` or `serve` creates it"
        )
    store, _ = migrated_store(settings.database_url)
    return store


def migrated_store(database_url: str) -> tuple[Store, list[int]]:
    """The store at `database_url`, closed when the command ends, and the migrations this just
    applied to it."""
    try:
        store = open_store(database_url)
        click.get_current_context().call_on_close(store.close_sync)
        applied = store.migrate()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except StorageError as exc:
        raise click.ClickException(f"THRAD_DATABASE_URL: {exc}") from None
    return store, applied


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 option as a UTC time (a time without a zone is UTC); None when not given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 time: {value!r}", param_hint=option) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def partner_id_of(store: Store, partner: str) -> str:
    """The id of the partner named or identified by `partner`."""
    try:
        return admin.partner_id_of(store, partner)
    except IngestError:
        raise click.BadParameter(f"no partner {partner!r}", param_hint="--partner") from None


def acting(action: Callable[[], T]) -> T:
    """Run an operator action; its refusal (unknown key, conflict, bad value) is one line."""
    try:
        return action()
    except IngestError as exc:
        raise click.ClickException(exc.message) from None


def write_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A header row and columns padded to their widest cell, every cell terminal-safe."""
    table = [list(header), *([terminal_text(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
