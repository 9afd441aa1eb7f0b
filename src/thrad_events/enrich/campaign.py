"""Campaign fields a page URL carries in its query: the five utm_* and Thrad's thrad_click_id."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from thrad_events.fields import CAMPAIGN_FIELDS

CAMPAIGN_COLUMNS = CAMPAIGN_FIELDS
# The longest value kept, as for the request's own identifiers (a longer one is cut).
MAX_VALUE_CHARS = 256
# Query strings past this length are not read for campaign fields (page_url itself is kept).
MAX_QUERY_CHARS = 8192

CampaignColumns = Mapping[str, Any]
NO_CAMPAIGN: CampaignColumns = dict.fromkeys(CAMPAIGN_COLUMNS)

_WANTED = frozenset(CAMPAIGN_COLUMNS)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# Pages repeat (a shop's landing and checkout URLs): the parsed columns of recent ones are kept.
# Callers only read the mapping they get, so one cached answer is shared. A URL may be 8 KiB, so
# the entries stay few: at most 2 MiB however a client varies its URLs.
@functools.lru_cache(maxsize=256)
def campaign_columns(page_url: str | None) -> CampaignColumns:
    """utm_source ... utm_content and thrad_click_id from the URL's query string.

    Names are matched case-insensitively, the first non-empty value of a name wins, values are
    percent-decoded, stripped of control characters and cut to MAX_VALUE_CHARS. The fragment
    is not read.
    """
    if not page_url or "?" not in page_url:
        return NO_CAMPAIGN
    try:
        query = urlsplit(page_url).query
    except ValueError:  # e.g. an unbalanced "[" in the host
        return NO_CAMPAIGN
    if not query or len(query) > MAX_QUERY_CHARS:
        return NO_CAMPAIGN
    lowered = query.lower()
    if "utm_" not in lowered and "thrad_click_id" not in lowered:
        return NO_CAMPAIGN
    found: dict[str, Any] = {}
    for name, value in parse_qsl(query, errors="replace", max_num_fields=None):
        key = name.strip().lower()
        if key in _WANTED and key not in found:
            cleaned = _CONTROL.sub("", value).strip()[:MAX_VALUE_CHARS]
            if cleaned:
                found[key] = cleaned
    if not found:
        return NO_CAMPAIGN
    return {**NO_CAMPAIGN, **found}
