"""What the rejections list and the delivery report may ask, validated from user input.

The HTTP endpoints and the CLI build their queries here, so both accept the same parameters and
refuse the same mistakes, as a 422 validation_error naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from thrad_events.errors import ValidationFailed, field_error
from thrad_events.reports.query import (
    given_parameters,
    group_by_names,
    limit_value,
    single_value,
    time_range,
)
from thrad_events.store.delivery_reads import GROUPS, DeliveryQuery, RejectionsQuery

REJECTIONS_DEFAULT_LIMIT = 100
REJECTIONS_MAX_LIMIT = 1000
DEFAULT_DELIVERY_GROUPS = ("day",)


def parse_rejections_query(
    items: Iterable[tuple[str, str]], *, partner_id: str | None, now: datetime
) -> RejectionsQuery:
    given = given_parameters(items, ("since", "until", "limit"))
    since, until = time_range(given, now)
    limit = limit_value(
        single_value(given, "limit"),
        default=REJECTIONS_DEFAULT_LIMIT,
        maximum=REJECTIONS_MAX_LIMIT,
    )
    return RejectionsQuery(since=since, until=until, partner_id=partner_id, limit=limit)


def parse_delivery_query(
    items: Iterable[tuple[str, str]], *, partner_id: str | None, now: datetime
) -> DeliveryQuery:
    given = given_parameters(items, ("since", "until", "group_by"))
    since, until = time_range(given, now)
    names = group_by_names(given.get("group_by", []))
    for name in names:
        if name not in GROUPS:
            raise field_error(
                ValidationFailed,
                "group_by",
                f"{name[:64]!r} is not a field of the delivery report; use one of "
                + ", ".join(GROUPS),
            )
    if len(set(names)) != len(names):
        raise field_error(ValidationFailed, "group_by", "a field is given twice")
    return DeliveryQuery(
        since=since,
        until=until,
        partner_id=partner_id,
        group_by=tuple(names) or DEFAULT_DELIVERY_GROUPS,
    )
