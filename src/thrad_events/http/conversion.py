"""POST /v1/api/conversion (and /api/conversion): a conversion tied to a Thrad click."""

from __future__ import annotations

from thrad_events.errors import Outcome
from thrad_events.http.admission import Admission, ingest_handle
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.validate_only import single_check
from thrad_events.ingest.checks import Checker
from thrad_events.ingest.pipeline import Ingestor

ANSWERS = {
    Outcome.STORED: Answer(200, b'{"status":"ok"}', [JSON_TYPE]),
    Outcome.DUPLICATE: Answer(200, b'{"status":"duplicate"}', [JSON_TYPE]),
}
_ANSWERS = {outcome: (outcome, answer) for outcome, answer in ANSWERS.items()}


def conversion_handle(ingestor: Ingestor, admission: Admission, checker: Checker) -> Handle:
    return ingest_handle(
        admission, ingestor.conversion, _ANSWERS.__getitem__, single_check(checker.conversion)
    )
