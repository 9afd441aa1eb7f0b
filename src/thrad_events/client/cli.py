"""`thrad-events send collect|conversion`: the SDK from the shell, one answer per input line.

With --json the one object given is sent to the single endpoint. Otherwise every line of stdin
(or of --file) is one object, sent through the batch endpoints, up to 500 objects a request.
Each output line answers one input line and names it: {"line": 3, "status": "ok"} (a collect's
204), "duplicate", "blank" for an empty line, or {"line": 3, "error": {...}}, the server's error
body (or the same shape for a line that is not a JSON object). Lines come out in input order.
On a terminal a progress bar shows on stderr; a summary line always ends stderr. The exit
status is 1 when any line failed. Numbers keep their digits (49.990 is sent as 49.990).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from thrad_events.client.errors import ThradError
from thrad_events.client.sync import Thrad
from thrad_events.client.wire import MAX_BATCH_ITEMS, BatchResult

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_CLI_BASE_URL = "http://127.0.0.1:8080"
# The server takes 1 MiB a request; half of it leaves room for the encoding's growth.
MAX_BATCH_BYTES = 512 * 1024

Send = Callable[[Thrad, dict[str, Any]], dict[str, Any]]
SendBatch = Callable[[Thrad, list[dict[str, Any]]], BatchResult]


def _connection_options(func: F) -> F:
    func = click.option(
        "--file",
        "input_file",
        type=click.File("r", encoding="utf-8"),
        default=None,
        help="Read one JSON object per line from this file instead of stdin",
    )(func)
    func = click.option(
        "--json",
        "json_text",
        default=None,
        metavar="OBJECT",
        help="The one JSON object to send; without it, one object per line is read",
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
def send_collect(
    api_key: str | None, base_url: str, json_text: str | None, input_file: IO[str] | None
) -> None:
    """Send events (POST /v1/api/collect, or its batch endpoint for many lines)."""

    def one(client: Thrad, body: dict[str, Any]) -> dict[str, Any]:
        client.send_collect_body(body)
        return {"status": "ok"}

    _run(api_key, base_url, json_text, input_file, one, lambda c, b: c.collect_batch(b))


@send.command("conversion")
@_connection_options
@click.option(
    "--idempotency-key",
    default=None,
    help="Idempotency-Key for the --json conversion [default: its event_id, else one derived "
    "from order_id, else a random one; the same on every retry]",
)
def send_conversion(
    api_key: str | None,
    base_url: str,
    json_text: str | None,
    input_file: IO[str] | None,
    idempotency_key: str | None,
) -> None:
    """Report conversions (POST /v1/api/conversion, or its batch endpoint for many lines)."""
    if idempotency_key is not None and json_text is None:
        raise click.UsageError("--idempotency-key needs --json: one key is for one conversion")

    def one(client: Thrad, body: dict[str, Any]) -> dict[str, Any]:
        return {"status": client.send_conversion_body(body, idempotency_key=idempotency_key)}

    _run(api_key, base_url, json_text, input_file, one, lambda c, b: c.conversion_batch(b))


@dataclass
class Tally:
    """What the answers said, for the summary line."""

    lines: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def count(self, answer: dict[str, Any]) -> None:
        self.lines += 1
        status = "error" if "error" in answer else str(answer.get("status"))
        self.by_status[status] = self.by_status.get(status, 0) + 1

    @property
    def failed(self) -> bool:
        return self.by_status.get("error", 0) > 0

    def summary(self, seconds: float) -> str:
        rate = self.lines / seconds if seconds > 0 else 0.0
        counts = ", ".join(
            f"{self.by_status.get(name, 0)} {name}"
            for name in ("ok", "duplicate", "error", "blank")
        )
        return f"{self.lines} lines in {seconds:.1f} s ({rate:,.0f}/s): {counts}"


def _run(
    api_key: str | None,
    base_url: str,
    json_text: str | None,
    input_file: IO[str] | None,
    one: Send,
    many: SendBatch,
) -> None:
    if not api_key:
        raise click.UsageError("an API key is needed: --api-key or THRAD_API_KEY")
    if json_text is not None and input_file is not None:
        raise click.UsageError("give --json or --file, not both")
    started = time.monotonic()
    tally = Tally()
    console = Console(stderr=True)
    with Thrad(api_key=api_key, base_url=base_url) as client:
        if json_text is not None:
            answers: Iterable[dict[str, Any]] = [_answer_one(client, 1, json_text, one)]
        else:
            answers = _answer_lines(client, input_file or sys.stdin, many)
        with _progress(console) as progress:
            task = progress.add_task("sending", total=None)
            for answer in answers:
                click.echo(json.dumps(answer, separators=(",", ":")))
                tally.count(answer)
                progress.update(task, completed=tally.lines)
    console.print(tally.summary(time.monotonic() - started), highlight=False, soft_wrap=True)
    if tally.failed:
        sys.exit(1)


def _progress(console: Console) -> Progress:
    """A progress bar on stderr when it is a terminal; nothing shows otherwise."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} lines"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _answer_one(client: Thrad, number: int, line: str, one: Send) -> dict[str, Any]:
    body, error = _parse(line)
    if body is None:
        return {"line": number, **(error or {})}
    try:
        return {"line": number, **one(client, body)}
    except ThradError as exc:
        return {"line": number, **exc.to_json()}
    except (TypeError, ValueError) as exc:
        return {"line": number, **_local_error("invalid_request", str(exc))}


@dataclass
class _Chunk:
    """Lines read but not answered yet: each line's answer, or the object it sends."""

    numbers: list[int] = field(default_factory=list)
    ready: dict[int, dict[str, Any]] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    body_numbers: list[int] = field(default_factory=list)
    size: int = 0


def _answer_lines(client: Thrad, lines: IO[str], many: SendBatch) -> Iterator[dict[str, Any]]:
    """Answers to every line, in order, sending the objects MAX_BATCH_ITEMS at a time."""
    chunk = _Chunk()
    for number, line in enumerate(lines, start=1):
        chunk.numbers.append(number)
        if not line.strip():
            chunk.ready[number] = {"line": number, "status": "blank"}
            continue
        body, error = _parse(line)
        if body is None:
            chunk.ready[number] = {"line": number, **(error or {})}
            continue
        chunk.bodies.append(body)
        chunk.body_numbers.append(number)
        chunk.size += len(line)
        if len(chunk.bodies) >= MAX_BATCH_ITEMS or chunk.size >= MAX_BATCH_BYTES:
            yield from _send_chunk(client, chunk, many)
            chunk = _Chunk()
    yield from _send_chunk(client, chunk, many)


def _send_chunk(client: Thrad, chunk: _Chunk, many: SendBatch) -> Iterator[dict[str, Any]]:
    answers = dict(chunk.ready)
    if chunk.bodies:
        answers.update(_send_batch(client, chunk.bodies, chunk.body_numbers, many))
    for number in chunk.numbers:
        yield answers[number]


def _send_batch(
    client: Thrad, bodies: list[dict[str, Any]], numbers: list[int], many: SendBatch
) -> dict[int, dict[str, Any]]:
    """One batch request; a refusal of the whole request answers each of its lines."""
    try:
        result = many(client, bodies)
    except ThradError as exc:
        return {number: {"line": number, **exc.to_json()} for number in numbers}
    except (TypeError, ValueError) as exc:
        # An item the client cannot encode (NaN, a value of no JSON type) fails the whole
        # request before it is sent: each line is then tried alone, so only it fails.
        if len(bodies) == 1:
            return {numbers[0]: {"line": numbers[0], **_local_error("invalid_request", str(exc))}}
        answers: dict[int, dict[str, Any]] = {}
        for body, number in zip(bodies, numbers, strict=True):
            answers.update(_send_batch(client, [body], [number], many))
        return answers
    answers = {}
    for item in result.results:
        number = numbers[item.index]
        if item.error is not None:
            answers[number] = {"line": number, **item.error.to_json()}
        else:
            answers[number] = {"line": number, "status": item.status}
    return answers


def _parse(line: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the object, None) or (None, the error body) for one input line."""
    try:
        body = json.loads(line, parse_float=Decimal)
    except ValueError as exc:
        return None, _local_error("invalid_json", f"not JSON: {exc}")
    if not isinstance(body, dict):
        return None, _local_error("invalid_json", "each input must be a JSON object")
    return body, None


def _local_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": []}}
