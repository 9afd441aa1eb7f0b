"""GET /v1/click: store the click, then redirect to the signed landing URL with thrad_click_id.

HEAD verifies the link the same way and redirects to the bare landing URL, storing nothing:
see Ingestor.click_preview.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.types import Receive, Scope

from thrad_events.errors import BadClickLink, Outcome
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import Answer
from thrad_events.http.request import context_of
from thrad_events.ingest.pipeline import Ingestor

# The characters a URL keeps as they are in Location; anything else is percent-encoded, so a
# landing URL can never put a control character or a space into the header.
_LOCATION_SAFE = ":/%#?=@[]!$&'()*+,;"


def click_handle(ingestor: Ingestor) -> Handle:
    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        try:
            query = scope["query_string"].decode()
        except UnicodeDecodeError:
            raise BadClickLink("the click link is not valid UTF-8") from None
        if scope["method"] == "HEAD":
            location, outcome = ingestor.click_preview(query), Outcome.PREVIEWED
        else:
            client = scope.get("client")
            ctx = context_of(headers, client and client[0])
            location, outcome = await ingestor.click(query, ctx), Outcome.STORED
        redirect = [
            (b"location", quote(location, safe=_LOCATION_SAFE).encode("latin-1")),
            (b"cache-control", b"no-store"),
        ]
        return outcome, Answer(302, b"", redirect)

    return handle
