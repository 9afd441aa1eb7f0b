"""`thrad-events send collect|conversion`: the SDK from the shell, one server answer per line.

With --json the one object given is sent; without it, every non-blank line of stdin is one
object. Each line of output is the server's answer to the object on the same line of input:
{"status": "ok"} (a collect's 204), {"status": "duplicate"}, or the server's error body. The
exit status is 1 when any object failed. Numbers keep their digits (49.990 is sent as 49.990).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import click

from thrad_events.client.errors import ThradError
from thrad_events.client.sync import Thrad

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_CLI_BASE_URL = "http://127.0.0.1:8080"

Send = Callable[[Thrad, dict[str, Any]], dict[str, Any]]


def _connection_options(func: F) -> F:
    func = click.option(
        "--json",
        "json_text",
        default=None,
        metavar="OBJECT",
        help="The JSON object to send; without it, one object per line is read from stdin",
    )(func)
    func = click.option(
        "--base-url",
        envvar="THRAD_BASE_URL",
        default=DEFAULT_CLI_BASE_URL,
        show_default=True,
        help="Where the server is reached [env THRAD_BASE_URL]",
    )(func)
    return click.option(
        "--api-key",
        envvar="THRAD_API_KEY",
        default=None,
        help="Bearer API key [env THRAD_API_KEY]",
    )(func)


@click.group()
def send() -> None:
    """Send events or conversions to a Thrad server through the Python SDK."""


@send.command("collect")
@_connection_options
def send_collect(api_key: str | None, base_url: str, json_text: str | None) -> None:
    """Send events (POST /v1/api/collect); prints {"status":"ok"} for each stored one."""

    def one(client: Thrad, body: dict[str, Any]) -> dict[str, Any]:
        client.send_collect_body(body)
        return {"status": "ok"}

    _run(api_key, base_url, json_text, one)


@send.command("conversion")
@_connection_options
@click.option(
    "--idempotency-key",
    default=None,
    help="Idempotency-Key for the --json conversion [default: its event_id, else one derived "
    "from order_id, else a random one; the same on every retry]",
)
def send_conversion(
    api_key: str | None, base_url: str, json_text: str | None, idempotency_key: str | None
) -> None:
    """Report conversions (POST /v1/api/conversion); prints the status of each."""
    if idempotency_key is not None and json_text is None:
        raise click.UsageError("--idempotency-key needs --json: one key is for one conversion")

    def one(client: Thrad, body: dict[str, Any]) -> dict[str, Any]:
        return {"status": client.send_conversion_body(body, idempotency_key=idempotency_key)}

    _run(api_key, base_url, json_text, one)


def _run(api_key: str | None, base_url: str, json_text: str | None, one: Send) -> None:
    if not api_key:
        raise click.UsageError("an API key is needed: --api-key or THRAD_API_KEY")
    lines = [json_text] if json_text is not None else _stdin_lines()
    failed = False
    with Thrad(api_key=api_key, base_url=base_url) as client:
        for line in lines:
            answer, ok = _answer(client, line, one)
            failed = failed or not ok
            click.echo(json.dumps(answer, separators=(",", ":")))
    if failed:
        sys.exit(1)


def _stdin_lines() -> Iterator[str]:
    for line in sys.stdin:
        if line.strip():
            yield line


def _answer(client: Thrad, line: str, one: Send) -> tuple[dict[str, Any], bool]:
    try:
        body = json.loads(line, parse_float=Decimal)
    except ValueError as exc:
        return _local_error("invalid_json", f"not JSON: {exc}"), False
    if not isinstance(body, dict):
        return _local_error("invalid_json", "each input must be a JSON object"), False
    try:
        return one(client, body), True
    except ThradError as exc:
        return exc.to_json(), False
    except (TypeError, ValueError) as exc:
        return _local_error("invalid_request", str(exc)), False


def _local_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": []}}
