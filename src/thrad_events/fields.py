"""The stored fields: one definition of each column of the events, conversions and clicks tables.

From it follow the stores' column lists and how each value is written (its Kind), the
pipeline's row builders (the columns copied as sent from the validated request, `Sent`), and
the enrichment stage's column list (ENRICHMENT_FIELDS). The migrations stay SQL; tests check
them against this module (tests/unit/test_fields.py on a migrated SQLite database,
tests/integration/store/test_postgres_store.py on PostgreSQL).

Nothing here imports the rest of the package: the store, the enrichment and the pipeline all
import it.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class Kind(enum.Enum):
    """What a column holds, and so how each store writes and reads it."""

    TEXT = "text"
    INTEGER = "integer"
    REAL = "real"
    FLAG = "flag"  # the test flag: 0/1 in SQLite, boolean in PostgreSQL, never NULL
    JSON = "json"  # an object: JSON text in SQLite, jsonb in PostgreSQL
    DECIMAL = "decimal"  # an exact amount: its plain text in SQLite, numeric in PostgreSQL
    # A datetime, written by instants.format_time (SQLite text; timestamptz in PostgreSQL).
    INSTANT = "instant"
    # The same, for a time the client gave: exported without a zero fraction (instants.py).
    SENT_INSTANT = "sent_instant"


# Every column that is not TEXT; a name has the same kind in every table.
KINDS: Mapping[str, Kind] = {
    "received_at": Kind.INSTANT,
    "conversion_time": Kind.SENT_INSTANT,
    "timestamp": Kind.INTEGER,  # Unix seconds
    "expires_at": Kind.INTEGER,  # Unix seconds
    "view_time_ms": Kind.INTEGER,
    "ua_is_bot": Kind.INTEGER,  # 0/1
    "geo_lat": Kind.REAL,
    "geo_lon": Kind.REAL,
    "consent": Kind.JSON,
    "params": Kind.JSON,
    "conversion_value": Kind.DECIMAL,
    "test": Kind.FLAG,
}


def kind_of(name: str) -> Kind:
    return KINDS.get(name, Kind.TEXT)


# The enrichment stage's columns (enrich/enricher.py), each helper's in its own group.
ADDRESS_FIELDS = ("ip_address", "sender_ip")
GEO_FIELDS = ("geo_country", "geo_region", "geo_city", "geo_lat", "geo_lon")
USER_AGENT_FIELDS = (
    "ua_browser",
    "ua_os",
    "ua_device",
    "ua_browser_version",
    "ua_os_version",
    "ua_device_type",
    "ua_is_bot",
)
# From page_url's query (landing_url's for clicks).
CAMPAIGN_FIELDS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "thrad_click_id",
)
ENRICHMENT_FIELDS = (*ADDRESS_FIELDS, *GEO_FIELDS, *USER_AGENT_FIELDS, *CAMPAIGN_FIELDS)


class Sent(str):
    """In a table's definition: a column copied as validated from the request's (or the click
    link's) field of the same name. The other columns are set by the pipeline itself."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    # In the order the stores write them and exports read them.
    columns: tuple[str, ...]
    # The columns copied as sent, in column order.
    sent: tuple[str, ...]

    def of_kind(self, *kinds: Kind) -> tuple[str, ...]:
        return tuple(column for column in self.columns if kind_of(column) in kinds)

    def sent_values(self) -> Callable[[Any], dict[str, Any]]:
        """The row's `sent` columns read off a validated request, built once per table: the
        pipeline's row builder starts from it."""
        names = self.sent
        read = operator.attrgetter(*names)

        def values(request: Any) -> dict[str, Any]:
            return dict(zip(names, read(request), strict=True))

        return values


def _table(name: str, *columns: str) -> Table:
    return Table(
        name,
        tuple(str(column) for column in columns),
        tuple(str(column) for column in columns if isinstance(column, Sent)),
    )


EVENTS = _table(
    "events",
    "received_at",
    "partner_id",
    Sent("event_name"),
    "tag_id",  # derived when missing (ingest/normalize.py); a browser Tag's own
    Sent("event_id"),
    "timestamp",  # whole seconds, the time received when missing
    Sent("page_url"),
    Sent("referrer"),
    "user_agent",  # a browser Tag's from its header
    "channel",
    Sent("session_id"),
    Sent("client_id"),
    Sent("attribution_type"),
    Sent("impression_id"),
    "click_id",  # a UUID in lower case
    Sent("bid_id"),
    Sent("impression_state"),
    "view_time_ms",
    Sent("consent"),
    "params",  # stamped with the sender
    *ENRICHMENT_FIELDS,
    # Migration sqlite 0007 (postgres 0005): sent with a test key (or a test click).
    "test",
)

CONVERSIONS = _table(
    "conversions",
    "received_at",
    "partner_id",
    "click_id",
    "conversion_time",
    Sent("conversion_value"),
    "currency",
    "event_type",
    Sent("order_id"),
    Sent("event_id"),
    "idempotency_key",
    "dedupe_key",
    Sent("page_url"),
    Sent("referrer"),
    "user_agent",
    "channel",
    Sent("session_id"),
    Sent("client_id"),
    "tag_id",
    Sent("consent"),
    "params",  # stamped with the sender, the unknown fields under params.extra
    *ENRICHMENT_FIELDS,
    "test",
)

# A click's Sent columns are its signed link's (ingest/clicklinks.ClickLink).
CLICKS = _table(
    "clicks",
    "click_id",
    "received_at",
    "expires_at",
    "landing_url",
    Sent("tag_id"),
    Sent("campaign_id"),
    Sent("ad_id"),
    Sent("bid_id"),
    Sent("impression_id"),
    "referrer",
    "user_agent",
    *ENRICHMENT_FIELDS,
    "test",
)

TABLES: Mapping[str, Table] = {table.name: table for table in (EVENTS, CONVERSIONS, CLICKS)}
