"""POST /v1/api/collect/batch and /v1/api/conversion/batch: many items, one answer per item.

The items are kept as raw JSON and each goes through exactly the single endpoint's validation
and pipeline; all valid items are stored in one commit. The answer is 200 with a result per item
in order and the totals, so one bad item never rejects the rest. Only a problem with the whole
request (auth, size, the envelope's shape, storage down) is an error status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from thrad_events.errors import IngestError, Outcome, Unavailable
from thrad_events.http.admission import Admission, Check, ingest_handle
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.validate_only import CheckMany, batch_check
from thrad_events.ingest.checks import Checker
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.ingest.validate import decode_batch
from thrad_events.metrics import Metrics
from thrad_events.schemas import (
    BatchItemResult,
    BatchResponse,
    BatchTotals,
    ErrorBody,
    ErrorDetail,
)
from thrad_events.store.records import ApiKeyRecord

_encoder = msgspec.json.Encoder()

BatchIngest = Callable[
    [Sequence[bytes], ApiKeyRecord, RequestContext], Awaitable[list[Outcome | IngestError]]
]


def _result(index: int, answer: Outcome | IngestError) -> BatchItemResult:
    if isinstance(answer, IngestError):
        details = [ErrorDetail(d.field, d.message) for d in answer.details]
        return BatchItemResult(
            index, "error", ErrorBody(str(answer.outcome), answer.message, details)
        )
    return BatchItemResult(index, "ok" if answer is Outcome.STORED else "duplicate")


def batch_handle(
    route: str,
    field: str,
    ingest_items: BatchIngest,
    admission: Admission,
    metrics: Metrics,
    check_items: CheckMany,
) -> Handle:
    """A batch answers 200 with a result per item and counts each item's outcome by `route`;
    only a refusal of the whole request (auth, size, envelope, storage down) is an error.
    With ?validate_only=true the items are checked instead, and the request counted once."""
    outcomes = metrics.outcomes
    check_batch = batch_check(field, check_items)

    async def check(body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> Answer:
        answer = await check_batch(body, key, ctx)
        outcomes.labels(route, Outcome.VALIDATED).inc()
        return answer

    async def ingest(
        body: bytes, key: ApiKeyRecord, ctx: RequestContext
    ) -> list[Outcome | IngestError]:
        return await ingest_items(decode_batch(body, field), key, ctx)

    def respond(answers: list[Outcome | IngestError]) -> tuple[Outcome, Answer]:
        if answers and all(isinstance(a, Unavailable) for a in answers):
            raise answers[0]  # type: ignore[misc]
        results = [_result(i, answer) for i, answer in enumerate(answers)]
        totals = BatchTotals(
            ok=sum(r.status == "ok" for r in results),
            duplicate=sum(r.status == "duplicate" for r in results),
            error=sum(r.status == "error" for r in results),
        )
        counts = Counter(a.outcome if isinstance(a, IngestError) else a for a in answers)
        for outcome, count in counts.items():
            outcomes.labels(route, outcome).inc(count)
        content = _encoder.encode(BatchResponse(results, totals))
        return Outcome.STORED, Answer(200, content, [JSON_TYPE])

    validate: Check = check
    return ingest_handle(admission, ingest, respond, validate)


def collect_batch_handle(
    route: str, ingestor: Ingestor, admission: Admission, metrics: Metrics, checker: Checker
) -> Handle:
    return batch_handle(
        route, "events", ingestor.collect_batch, admission, metrics, checker.collect_batch
    )


def conversion_batch_handle(
    route: str, ingestor: Ingestor, admission: Admission, metrics: Metrics, checker: Checker
) -> Handle:
    return batch_handle(
        route,
        "conversions",
        ingestor.conversion_batch,
        admission,
        metrics,
        checker.conversion_batch,
    )
