"""POST /v1/api/test/clicks: a test key stores a click to try conversions against, answered 201.

The click is stored flagged test (deleted after THRAD_TEST_RETENTION_DAYS, left out of reports
unless asked) and comes with the thrad_exp and thrad_sig the click redirect would have put on
the landing URL, so a browser Tag's signed conversion can be tried with it too. A live key is
refused 403: live clicks come only from followed click links.
"""

from __future__ import annotations

import msgspec

from thrad_events.errors import Forbidden, Outcome
from thrad_events.http.admission import Admission, ingest_handle
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.ingest.pipeline import Ingestor, MintedClick, RequestContext
from thrad_events.ingest.validate import decode_click_create
from thrad_events.schemas import CreatedClick
from thrad_events.store.records import ApiKeyRecord

_encoder = msgspec.json.Encoder()


def create_test_click_handle(ingestor: Ingestor, admission: Admission) -> Handle:
    async def create(body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> MintedClick:
        if not key.test:
            raise Forbidden(
                "only a test key (keys create --test) creates test clicks; live clicks come "
                "from followed click links"
            )
        request = decode_click_create(body)
        return await ingestor.create_click(
            ctx,
            campaign_id=request.campaign_id,
            ad_id=request.ad_id,
            bid_id=request.bid_id,
            test=True,
        )

    def respond(click: MintedClick) -> tuple[Outcome, Answer]:
        body = _encoder.encode(CreatedClick(click.click_id, click.thrad_exp, click.thrad_sig))
        return Outcome.STORED, Answer(201, body, [JSON_TYPE])

    return ingest_handle(admission, create, respond)
