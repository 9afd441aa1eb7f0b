"""The SQL behind the reports, written once; each store supplies the few expressions that differ.

A report is one statement: the row's group values first (GROUP BY and ORDER BY refer to them by
position), then its aggregates. Every value that comes from a user (times, filter values, params
keys, the partner) is a bound parameter; field names come only from the whitelist in
reports/query.py. Group values are text and sort by code point with NULL first, in every store.
Money and time-to-convert are aggregated as lists, read back by the dialect and summed exactly in
Python (reports/aggregate.py), so every store answers to the digit. Where the stores' SQL
differs is reports/dialects.py's. `report_rows` runs a report on a store: the SQL in the store's
dialect, through the store's one read under the deadline (Store.read), then the rows shaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from thrad_events.deadline import Deadline
from thrad_events.instants import format_time
from thrad_events.money import plain_text
from thrad_events.reports.aggregate import conversion_rate, time_to_convert
from thrad_events.reports.dialects import Dialect, Fragment, dialect_of
from thrad_events.reports.query import (
    AnyReportQuery,
    ConversionsQuery,
    EventsQuery,
    FieldKind,
    FunnelQuery,
    NameKind,
    ReportField,
    ReportQuery,
    TimeBasis,
)
from thrad_events.store.base import Store
from thrad_events.store.test_rows import not_test
from thrad_events.taxonomy import STANDARD_EVENT_NAMES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ReportRow = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PreparedReport:
    sql: str
    args: tuple[Any, ...]
    shape: Callable[[Sequence[Any], Deadline], ReportRow]

    def rows(self, result: Sequence[Sequence[Any]], deadline: Deadline) -> list[ReportRow]:
        """The JSON-ready rows; shaping is part of the report's budget, like its SQL."""
        shaped = []
        for row in result:
            deadline.check()
            shaped.append(self.shape(row, deadline))
        return shaped


def prepare(query: AnyReportQuery, dialect: Dialect) -> PreparedReport:
    if isinstance(query, EventsQuery):
        return events_report(query, dialect)
    if isinstance(query, ConversionsQuery):
        return conversions_report(query, dialect)
    return funnel_report(query, dialect)


def report_rows(store: Store, query: AnyReportQuery, deadline: Deadline) -> list[ReportRow]:
    """The report's JSON-ready rows, one per group; blocking, on the calling thread. Raises
    ReportTimedOut once `deadline` has passed, StorageError when the store cannot answer."""
    prepared = prepare(query, dialect_of(store))
    return prepared.rows(store.read(prepared.sql, prepared.args, deadline), deadline)


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    alias: str
    event_time: str  # the column of TimeBasis.EVENT
    epoch: bool = False  # event_time holds integer Unix seconds, not a stored time
    name_column: str = ""  # what names=standard|custom reads

    def column(self, name: str) -> str:
        return f"{self.alias}.{name}"

    def time_column(self, basis: TimeBasis) -> str:
        return self.column(self.event_time if basis is TimeBasis.EVENT else "received_at")

    def epoch_time(self, basis: TimeBasis) -> bool:
        return self.epoch and basis is TimeBasis.EVENT


_EVENTS = _Table("events", "e", '"timestamp"', epoch=True, name_column="event_name")
_CONVERSIONS = _Table("conversions", "c", "conversion_time", name_column="event_type")
# A click has no time but its receipt: both bases are the same.
_CLICKS = _Table("clicks", "k", "received_at")


def _stored_time(basis: TimeBasis, table: _Table, dialect: Dialect) -> str:
    """The report's time basis as a stored time, which day and hour read."""
    column = table.time_column(basis)
    return dialect.from_epoch(column) if table.epoch_time(basis) else column


def _ceil_seconds(moment: datetime) -> int:
    """The first whole Unix second at or after `moment`: for integer seconds t, t >= moment
    exactly when t >= this, and likewise for <."""
    whole, rest = divmod(moment - EPOCH, timedelta(seconds=1))
    return whole + (1 if rest else 0)


def _ceil_instant(moment: datetime) -> datetime:
    return EPOCH + timedelta(seconds=_ceil_seconds(moment))


def _expression(
    field: ReportField, query: ReportQuery, table: _Table, dialect: Dialect
) -> Fragment:
    """The SQL of one group or filter field, over `table` (and the joined click, alias k)."""
    if field.kind is FieldKind.DAY:
        return dialect.day(_stored_time(query.time_basis, table, dialect)), ()
    if field.kind is FieldKind.HOUR:
        return dialect.hour(_stored_time(query.time_basis, table, dialect)), ()
    if field.kind is FieldKind.COLUMN:
        return table.column(field.column), ()
    if field.kind is FieldKind.CLICK:
        return _CLICKS.column(field.column), ()
    return dialect.params_text(table.column("params"), field.path)


def _where(
    query: ReportQuery, table: _Table, dialect: Dialect, *, by_partner: bool = True
) -> Fragment:
    """The time range, the partner (when the table has one) and the filters."""
    mark = dialect.placeholder
    # The bare column against bound values, so the (partner_id, time) indexes serve the range.
    time = table.time_column(query.time_basis)
    clauses = [f"{time} >= {mark}", f"{time} < {mark}"]
    args: list[Any]
    if table.epoch_time(query.time_basis):
        args = [_ceil_seconds(query.since), _ceil_seconds(query.until)]
    elif query.time_basis is TimeBasis.EVENT:
        # Event-time bounds are whole seconds, rounded up, on every table and store alike (an
        # event's timestamp has no fraction). Written with its zero fraction ("...:56.000000Z"),
        # such a bound also places a conversion_time text written without one ("...:55Z", as
        # before SQLite's migration 0010) by its instant.
        args = [format_time(_ceil_instant(query.since)), format_time(_ceil_instant(query.until))]
    else:
        args = [format_time(query.since), format_time(query.until)]
    if by_partner and query.partner_id is not None:
        clauses.append(f"{table.column('partner_id')} = {mark}")
        args.append(query.partner_id)
    if not query.include_test:
        clauses.append(not_test(table.alias))
    if query.names is not None and table.name_column:
        marks = ", ".join(mark for _ in STANDARD_EVENT_NAMES)
        negate = "NOT " if query.names is NameKind.CUSTOM else ""
        clauses.append(f"{table.column(table.name_column)} {negate}IN ({marks})")
        args.extend(STANDARD_EVENT_NAMES)
    for found in query.filters:
        sql, field_args = _expression(found.field, query, table, dialect)
        marks = ", ".join(mark for _ in found.values)
        clauses.append(f"{sql} IN ({marks})")
        args.extend(field_args)
        args.extend(found.values)
    return " AND ".join(clauses), tuple(args)


def _select(
    query: ReportQuery,
    table: _Table,
    dialect: Dialect,
    aggregates: Sequence[str],
    *,
    named: bool = False,
) -> Fragment:
    """The group values (named g0, g1, ... for an outer query), then `aggregates`."""
    columns: list[str] = []
    args: list[Any] = []
    for i, field in enumerate(query.group_by):
        sql, field_args = _expression(field, query, table, dialect)
        columns.append(dialect.text(sql) + (f" AS g{i}" if named else ""))
        args.extend(field_args)
    return ", ".join([*columns, *aggregates]), tuple(args)


def _grouped(query: ReportQuery, dialect: Dialect) -> Fragment:
    """GROUP BY, ORDER BY (group values, NULL first) and LIMIT, by position."""
    positions = [str(i) for i in range(1, len(query.group_by) + 1)]
    sql = ""
    if positions:
        sql += f" GROUP BY {', '.join(positions)}"
        sql += " ORDER BY " + ", ".join(f"{p} NULLS FIRST" for p in positions)
    return f"{sql} LIMIT {dialect.placeholder}", (query.limit,)


def _group_values(query: ReportQuery, row: Sequence[Any]) -> ReportRow:
    return {field.name: row[i] for i, field in enumerate(query.group_by)}


def _joins_click(query: ReportQuery) -> bool:
    fields = [*query.group_by, *(found.field for found in query.filters)]
    return any(field.kind is FieldKind.CLICK for field in fields)


def events_report(query: EventsQuery, dialect: Dialect) -> PreparedReport:
    select, select_args = _select(query, _EVENTS, dialect, ["count(*)"])
    where, where_args = _where(query, _EVENTS, dialect)
    tail, tail_args = _grouped(query, dialect)
    n = len(query.group_by)

    def shape(row: Sequence[Any], deadline: Deadline) -> ReportRow:
        return {**_group_values(query, row), "events": int(row[n])}

    return PreparedReport(
        f"SELECT {select} FROM events e WHERE {where}{tail}",
        (*select_args, *where_args, *tail_args),
        shape,
    )


def conversions_report(query: ConversionsQuery, dialect: Dialect) -> PreparedReport:
    money = dialect.money_by_currency(
        _CONVERSIONS.column("currency"), _CONVERSIONS.column("conversion_value")
    )
    select, select_args = _select(query, _CONVERSIONS, dialect, ["count(*)", money])
    where, where_args = _where(query, _CONVERSIONS, dialect)
    tail, tail_args = _grouped(query, dialect)
    join = " LEFT JOIN clicks k ON k.click_id = c.click_id" if _joins_click(query) else ""
    n = len(query.group_by)

    def shape(row: Sequence[Any], deadline: Deadline) -> ReportRow:
        totals = dialect.money_totals(row[n + 1], deadline)
        revenue = {currency: plain_text(totals[currency]) for currency in sorted(totals)}
        return {**_group_values(query, row), "conversions": int(row[n]), "revenue": revenue}

    return PreparedReport(
        f"SELECT {select} FROM conversions c{join} WHERE {where}{tail}",
        (*select_args, *where_args, *tail_args),
        shape,
    )


def funnel_report(query: FunnelQuery, dialect: Dialect) -> PreparedReport:
    """Clicks received in the range, grouped; each with its conversions so far (a cohort).

    For a partner, a click counts when that partner's own events or conversions carry its
    click_id: clicks have no partner of their own, and a partner must not learn of clicks
    it was never sent.
    """
    mark = dialect.placeholder
    # The conversions that count: the partner's own, or everyone's for an operator.
    own = f" AND c.partner_id = {mark}" if query.partner_id is not None else ""
    own_args: tuple[Any, ...] = (query.partner_id,) if query.partner_id is not None else ()
    # Test conversions and events (and test clicks, in _where) count only when asked for.
    live = "" if query.include_test else " AND " + not_test("c")
    live_events = "" if query.include_test else " AND " + not_test("e")
    own += live
    conversions = f"FROM conversions c WHERE c.click_id = k.click_id{own}"
    first = dialect.epoch_seconds("c.conversion_time")
    clicked = dialect.epoch_seconds("k.received_at")
    inner, inner_args = _select(
        query,
        _CLICKS,
        dialect,
        [
            f"(SELECT count(*) {conversions}) AS n",
            f"(SELECT min({first}) {conversions}) - {clicked} AS seconds",
        ],
        named=True,
    )
    where, where_args = _where(query, _CLICKS, dialect, by_partner=False)
    scope_args: tuple[Any, ...] = ()
    if query.partner_id is not None:
        where += (
            f" AND (EXISTS (SELECT 1 FROM conversions c WHERE c.click_id = k.click_id"
            f" AND c.partner_id = {mark}{live}) OR EXISTS (SELECT 1 FROM events e"
            f" WHERE e.click_id = k.click_id AND e.click_id IS NOT NULL"
            f" AND e.partner_id = {mark}{live_events}))"
        )
        scope_args = (query.partner_id, query.partner_id)
    outer = ", ".join(
        [
            *(f"f.g{i}" for i in range(len(query.group_by))),
            "count(*)",
            "coalesce(sum(CASE WHEN f.n > 0 THEN 1 ELSE 0 END), 0)",
            "coalesce(sum(f.n), 0)",
            dialect.int_list("f.seconds"),
        ]
    )
    tail, tail_args = _grouped(query, dialect)
    n = len(query.group_by)

    def shape(row: Sequence[Any], deadline: Deadline) -> ReportRow:
        clicks, converted = int(row[n]), int(row[n + 1])
        # A conversion stamped before its click is clock skew: it converted at once.
        seconds = [max(0, value) for value in dialect.ints(row[n + 3])]
        return {
            **_group_values(query, row),
            "clicks": clicks,
            "converted_clicks": converted,
            "conversions": int(row[n + 2]),
            "conversion_rate": conversion_rate(converted, clicks),
            "time_to_convert_s": time_to_convert(seconds),
        }

    return PreparedReport(
        f"SELECT {outer} FROM (SELECT {inner} FROM clicks k WHERE {where}) f{tail}",
        (*inner_args, *own_args, *own_args, *where_args, *scope_args, *tail_args),
        shape,
    )
