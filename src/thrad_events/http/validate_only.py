"""?validate_only=true on the ingest endpoints: the check's verdict as the JSON answer (200)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import msgspec

from thrad_events.http.admission import Check
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.ingest.checks import Problem, Verdict
from thrad_events.ingest.pipeline import RequestContext
from thrad_events.ingest.validate import decode_batch
from thrad_events.schemas import (
    BatchValidationItem,
    BatchValidationResponse,
    ValidationProblem,
    ValidationResult,
)
from thrad_events.store.records import ApiKeyRecord

_encoder = msgspec.json.Encoder()

CheckOne = Callable[[bytes, ApiKeyRecord, RequestContext], Awaitable[Verdict]]
CheckMany = Callable[[Sequence[bytes], ApiKeyRecord, RequestContext], Awaitable[list[Verdict]]]


def _problems(found: tuple[Problem, ...]) -> list[ValidationProblem]:
    return [ValidationProblem(field, message) for field, message in found]


def single_check(check: CheckOne) -> Check:
    async def run(body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> Answer:
        verdict = await check(body, key, ctx)
        result = ValidationResult(
            verdict.valid, _problems(verdict.errors), _problems(verdict.warnings)
        )
        return Answer(200, _encoder.encode(result), [JSON_TYPE])

    return run


def batch_check(field: str, check: CheckMany) -> Check:
    """A batch's items checked one by one; the envelope (its array, at most 500 items) is
    refused as on the normal path."""

    async def run(body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> Answer:
        verdicts = await check(decode_batch(body, field), key, ctx)
        results = [
            BatchValidationItem(
                index, verdict.valid, _problems(verdict.errors), _problems(verdict.warnings)
            )
            for index, verdict in enumerate(verdicts)
        ]
        return Answer(200, _encoder.encode(BatchValidationResponse(results)), [JSON_TYPE])

    return run
