"""POST /v1/api/collect (and /api/collect): one server-side event, answered 204."""

from __future__ import annotations

from thrad_events.errors import Outcome
from thrad_events.http.admission import Admission, ingest_handle
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import Answer
from thrad_events.http.validate_only import single_check
from thrad_events.ingest.checks import Checker
from thrad_events.ingest.pipeline import Ingestor

_NO_CONTENT = Answer(204)
# A repeat of an event already stored is also a 204: the client's retry succeeded.
ANSWERS = {outcome: _NO_CONTENT for outcome in (Outcome.STORED, Outcome.DUPLICATE)}
_ANSWERS = {outcome: (outcome, answer) for outcome, answer in ANSWERS.items()}


def collect_handle(ingestor: Ingestor, admission: Admission, checker: Checker) -> Handle:
    return ingest_handle(
        admission, ingestor.collect, _ANSWERS.__getitem__, single_check(checker.collect)
    )
