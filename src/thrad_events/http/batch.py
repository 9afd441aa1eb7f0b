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

from thrad_events.errors import (
    IngestError,
    InvalidJson,
    MissingField,
    Outcome,
    PayloadTooLarge,
    Unavailable,
    ValidationFailed,
    field_error,
)
from thrad_events.http.admission import Admission, ingest_handle
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.ingest.validate import check_utf8, too_deep
from thrad_events.metrics import Metrics
from thrad_events.schemas import (
    MAX_BATCH_ITEMS,
    BatchItemResult,
    BatchResponse,
    BatchTotals,
    ErrorBody,
    ErrorDetail,
)
from thrad_events.store.base import ApiKeyRecord


class _RawEvents(msgspec.Struct):
    events: list[msgspec.Raw]


class _RawConversions(msgspec.Struct):
    conversions: list[msgspec.Raw]


_events_decoder = msgspec.json.Decoder(_RawEvents)
_conversions_decoder = msgspec.json.Decoder(_RawConversions)
_encoder = msgspec.json.Encoder()

BatchIngest = Callable[
    [Sequence[bytes], ApiKeyRecord, RequestContext], Awaitable[list[Outcome | IngestError]]
]


def _items(body: bytes, field: str) -> list[msgspec.Raw]:
    decoder = _events_decoder if field == "events" else _conversions_decoder
    try:
        envelope = decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if "missing required field" in text or "got `null`" in text:
            raise field_error(MissingField, field, f"required: a JSON array of {field}") from None
        if "`$`" in text or "at `$" not in text:
            raise InvalidJson(f"body must be a JSON object: {text}") from None
        raise field_error(ValidationFailed, field, text.split(" - at ")[0]) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep(body) from None
    check_utf8(body)
    items: list[msgspec.Raw] = getattr(envelope, field)
    if len(items) > MAX_BATCH_ITEMS:
        raise field_error(PayloadTooLarge, field, f"at most {MAX_BATCH_ITEMS} items per batch")
    return items


def _result(index: int, answer: Outcome | IngestError) -> BatchItemResult:
    if isinstance(answer, IngestError):
        details = [ErrorDetail(d.field, d.message) for d in answer.details]
        return BatchItemResult(
            index, "error", ErrorBody(str(answer.outcome), answer.message, details)
        )
    return BatchItemResult(index, "ok" if answer is Outcome.STORED else "duplicate")


def batch_handle(
    route: str, field: str, ingest_items: BatchIngest, admission: Admission, metrics: Metrics
) -> Handle:
    """A batch answers 200 with a result per item and counts each item's outcome by `route`;
    only a refusal of the whole request (auth, size, envelope, storage down) is an error."""
    outcomes = metrics.outcomes

    async def ingest(
        body: bytes, key: ApiKeyRecord, ctx: RequestContext
    ) -> list[Outcome | IngestError]:
        return await ingest_items(_items(body, field), key, ctx)

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

    return ingest_handle(admission, ingest, respond)


def collect_batch_handle(
    route: str, ingestor: Ingestor, admission: Admission, metrics: Metrics
) -> Handle:
    return batch_handle(route, "events", ingestor.collect_batch, admission, metrics)


def conversion_batch_handle(
    route: str, ingestor: Ingestor, admission: Admission, metrics: Metrics
) -> Handle:
    return batch_handle(route, "conversions", ingestor.conversion_batch, admission, metrics)
