"""`thrad-events serve` and `migrate`: the schema brought up to date, then the API served."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import tempfile
from typing import cast

import click

from thrad_events.auth import admin
from thrad_events.cli.common import cli_settings, cli_store, database_option, migrated_store


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, ValueError) as exc:
        raise click.ClickException(f"THRAD_REDIS_URL: Redis is not reachable ({exc})") from None


@click.command()
@database_option
@click.option("--host", default=None, help="Interface to listen on [default 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port to listen on [default 8080]")
@click.option("--workers", type=int, default=None, help="Worker processes [default 1]")
def serve(
    database_url: str | None, host: str | None, port: int | None, workers: int | None
) -> None:
    """Migrate the database, then serve the API."""
    import uvicorn

    from thrad_events.app import click_secret
    from thrad_events.http.protocol import JsonErrorHttpToolsProtocol
    from thrad_events.logs import configure_logging

    settings = cli_settings(database_url=database_url, host=host, port=port, workers=workers)
    configure_logging(settings.log_level, access_log=settings.access_log)
    if settings.redis_url:
        _check_redis(settings.redis_url)
    store = cli_store(settings.database_url, create=True)
    click_secret(settings, store)
    first_key = admin.create_first_key(store)
    if first_key is not None:
        click.echo(
            "First start: created partner 'dev' and this API key. It is shown only once:\n"
            f"  {first_key.api_key}"
        )
    store.close_sync()  # now, not when the command ends: the workers open stores of their own
    # Workers build their own app from the environment, so the flags travel through it.
    os.environ["THRAD_DATABASE_URL"] = settings.database_url
    # uvicorn re-raises the signal that stopped it once it has drained; a drained SIGTERM is a
    # clean stop, so it exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    metrics_dir = None
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Workers are fresh interpreters: they see this before importing prometheus_client.
        metrics_dir = tempfile.TemporaryDirectory(prefix="thrad-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    uvicorn.run(
        "thrad_events.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        # httptools with our head limits, header timeout and connection cap, answering every
        # refusal with the JSON error body (a partial: uvicorn only calls it, in every worker).
        http=cast(
            "type[asyncio.Protocol]",
            functools.partial(
                JsonErrorHttpToolsProtocol,
                header_timeout_s=settings.header_timeout_s,
                max_connections=settings.max_connections,
            ),
        ),
        access_log=settings.access_log,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default and rewrite the peer;
        # only THRAD_TRUSTED_PROXIES decides that (enrich/ip.py), unset meaning none trusted.
        proxy_headers=False,
        log_config=None,
        timeout_keep_alive=settings.keepalive_timeout_s,
        # The protocol caps connections itself (THRAD_MAX_CONNECTIONS), answering in JSON.
        limit_concurrency=None,
        timeout_graceful_shutdown=30,
    )
    if metrics_dir is not None:
        metrics_dir.cleanup()


@click.command()
@database_option
def migrate(database_url: str | None) -> None:
    """Apply pending schema migrations."""
    _, applied = migrated_store(cli_settings(database_url=database_url).database_url)
    click.echo(f"applied migrations: {applied}" if applied else "database is up to date")
