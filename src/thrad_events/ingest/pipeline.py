"""The ingest pipeline: a validated request becomes an enriched row, deduplicated and stored."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from thrad_events.debugstream import capture as debug_capture
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.errors import ClickNotFound, IngestError, Outcome, Unavailable, detach
from thrad_events.fields import CLICKS, CONVERSIONS, EVENTS
from thrad_events.ingest import clicklinks, validate
from thrad_events.ingest.dedupe import conversion_dedupe_key
from thrad_events.ingest.normalize import (
    DEFAULT_EVENT_TYPE,
    SERVER_CHANNEL,
    WEB_CHANNEL,
    canonical_click_id,
    derive_tag_id,
    sanitize_extra,
    stamp_params,
    stamp_tag_params,
)
from thrad_events.schemas import CONVERSION_FIELDS
from thrad_events.store.base import Store
from thrad_events.store.delivery import current_route
from thrad_events.store.errors import StorageError
from thrad_events.store.records import ApiKeyRecord, InsertResult, Row
from thrad_events.store.tags import TagRecord

# Who sent a request: a partner's backend (its API key), or a page through a registered browser
# Tag. A Tag's rows are the partner's the registry names, on channel "web", with the browser's
# own address and User-Agent header (a page cannot speak for another client_ip or user agent).
Sender = ApiKeyRecord | TagRecord
# The stored user_agent of a Tag's row, from its header, is bounded like a body's.
MAX_USER_AGENT_CHARS = 2048
# The fields that prove a browser conversion's click; checked, never stored under params.extra.
CLICK_PROOF_FIELDS = ("thrad_exp", "thrad_sig")

if TYPE_CHECKING:
    from thrad_events.ingest.delivery import DeliveryRecorder


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the HTTP layer knows of a request besides its body; no HTTP types beyond here."""

    peer_ip: str | None
    forwarded_for: str | None = None
    origin: str | None = None
    referer: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None
    received_at: datetime | None = None
    # RFC 7239 Forwarded, believed like X-Forwarded-For (enrich/ip.py) when that is absent.
    forwarded: str | None = None


class Enricher(Protocol):
    """Columns derived server-side (geo_*, ua_*, utm_*, thrad_click_id), and the addresses as
    the row's consent lets them be stored (ip_address, sender_ip, possibly truncated)."""

    def __call__(
        self,
        *,
        ip_address: str | None,
        sender_ip: str | None,
        user_agent: str | None,
        page_url: str | None,
        consent: Mapping[str, Any] | None,
    ) -> dict[str, Any]: ...


def no_enrichment(
    *,
    ip_address: str | None,
    sender_ip: str | None,
    user_agent: str | None,
    page_url: str | None,
    consent: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class MintedClick:
    """A stored click and what the click redirect hands the landing page for it."""

    click_id: str
    thrad_exp: int
    thrad_sig: str


# Each table's columns copied as sent, read off the validated request (the click link for a
# click); the pipeline sets the others. fields.py defines which are which.
_event_sent = EVENTS.sent_values()
_conversion_sent = CONVERSIONS.sent_values()
_click_sent = CLICKS.sent_values()


class Ingestor:
    def __init__(
        self,
        store: Store,
        *,
        proxies: TrustedProxies,
        click_secret: str,
        click_ttl_s: int,
        enricher: Enricher = no_enrichment,
        delivery: DeliveryRecorder | None = None,
    ) -> None:
        self._store = store
        # Counts a batch's refused items (its stored and duplicate ones are the writer's).
        self._delivery = delivery
        # The items of a batch share their request's addresses, and a partner's backend sends
        # request after request from one address: the last answer is kept (one entry, so a
        # client varying its headers cannot grow it).
        self._sender_ip = functools.lru_cache(maxsize=1)(proxies.sender_ip)
        self._click_secret = click_secret
        self._click_ttl_s = click_ttl_s
        self._enrich = enricher

    @staticmethod
    def _browser_user_agent(ctx: RequestContext) -> str | None:
        return ctx.user_agent[:MAX_USER_AGENT_CHARS] if ctx.user_agent else None

    def _addresses(self, ctx: RequestContext, client_ip: str | None) -> dict[str, Any]:
        sender = self._sender_ip(ctx.peer_ip, ctx.forwarded_for, ctx.forwarded)
        ip_address = client_ip or sender
        return {"ip_address": ip_address, "sender_ip": sender}

    def _enriched(
        self,
        row: dict[str, Any],
        user_agent: str | None,
        page_url: str | None,
        consent: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        return self._enrich(
            ip_address=row["ip_address"],
            sender_ip=row["sender_ip"],
            user_agent=user_agent,
            page_url=page_url,
            consent=consent,
        )

    async def collect(self, body: bytes, key: Sender, ctx: RequestContext) -> Outcome:
        watched = debug_capture.current.get()
        if watched is not None:
            watched.received(key, body)
        row = self.event_row(body, key, ctx)
        result = await _insert(self._store.insert_event, row)
        if watched is not None:
            watched.row = row
        return _outcome(result, row)

    async def collect_batch(
        self, items: Sequence[bytes], key: ApiKeyRecord, ctx: RequestContext
    ) -> list[Outcome | IngestError]:
        """Each item validated and stored as the single endpoint would; one bad item fails alone."""
        return await self._batch(items, key, ctx, self.event_row, self._store.insert_events)

    async def conversion(self, body: bytes, key: Sender, ctx: RequestContext) -> Outcome:
        watched = debug_capture.current.get()
        if watched is not None:
            watched.received(key, body)
        row = self.conversion_row(body, key, ctx)
        result = await _insert(self._store.insert_conversion, row)
        if watched is not None:
            watched.row = row
        return _outcome(result, row)

    async def conversion_batch(
        self, items: Sequence[bytes], key: ApiKeyRecord, ctx: RequestContext
    ) -> list[Outcome | IngestError]:
        return await self._batch(
            items, key, ctx, self.conversion_row, self._store.insert_conversions
        )

    async def _batch(
        self,
        items: Sequence[bytes],
        key: ApiKeyRecord,
        ctx: RequestContext,
        make_row: Callable[[bytes, ApiKeyRecord, RequestContext], dict[str, Any]],
        insert_many: Callable[[Sequence[Row]], Awaitable[list[InsertResult | StorageError]]],
    ) -> list[Outcome | IngestError]:
        answers: list[Outcome | IngestError] = []
        rows: list[dict[str, Any]] = []
        positions: list[int] = []
        for item in items:
            try:
                rows.append(make_row(item, key, ctx))
            except IngestError as error:
                detach(error)  # kept in `answers`, this frame's: no cycle through its traceback
                answers.append(error)
                continue
            positions.append(len(answers))
            answers.append(Outcome.STORED)  # replaced below by the store's answer
        if rows:
            try:
                results = await insert_many(rows)
            except StorageError as exc:
                raise Unavailable(str(exc)) from exc
            for position, row, result in zip(positions, rows, results, strict=True):
                try:
                    if isinstance(result, StorageError):
                        raise Unavailable(str(result))
                    answers[position] = _outcome(result, row)
                except IngestError as error:
                    detach(error)
                    answers[position] = error
        route = current_route.get()
        if self._delivery is not None and route is not None:
            refused = [answer for answer in answers if isinstance(answer, IngestError)]
            if refused:
                self._delivery.items_refused(route, key, refused)
        watched = debug_capture.current.get()
        if watched is not None:
            watched.received(key, b"")
            watched.items = answers
            watched.item_rows = dict(zip(positions, rows, strict=True))
        return answers

    def event_row(self, body: bytes, key: Sender, ctx: RequestContext) -> dict[str, Any]:
        """Validate one collect body and build its enriched row (no I/O)."""
        request = validate.decode_collect(body)
        received_at = ctx.received_at or datetime.now(UTC)
        try:
            client_ip = validate.check_client_ip(request.client_ip)
            view_time_ms = validate.whole_view_time(request.view_time_ms)
        except IngestError as error:
            raise validate.collect_error(body, error) from None
        user_agent = request.user_agent
        if isinstance(key, TagRecord):
            tag_id, channel = key.tag_id, WEB_CHANNEL
            client_ip, user_agent = None, self._browser_user_agent(ctx)
            params = stamp_tag_params(request.params, key.partner_id)
        else:
            tag_id = derive_tag_id(request.tag_id, request.page_url, ctx.origin, ctx.referer)
            channel = SERVER_CHANNEL
            params = stamp_params(request.params, key.partner_id, key.label)
        row = _event_sent(request)
        row["received_at"] = received_at
        row["partner_id"] = key.partner_id
        row["tag_id"] = tag_id
        row["timestamp"] = validate.truncate_timestamp(
            request.timestamp, int(received_at.timestamp())
        )
        row["user_agent"] = user_agent
        row["channel"] = channel
        row["click_id"] = canonical_click_id(request.click_id)
        row["view_time_ms"] = view_time_ms
        row["params"] = params
        row["test"] = key.test
        row.update(self._addresses(ctx, client_ip))
        row.update(self._enriched(row, user_agent, request.page_url, request.consent))
        if row["click_id"] is None:
            # The landing page's thrad_click_id (seed: "capture thrad_click_id from the
            # advertiser landing URL") attributes an event that did not name its click.
            row["click_id"] = canonical_click_id(row.get("thrad_click_id"))
        return row

    def conversion_row(self, body: bytes, key: Sender, ctx: RequestContext) -> dict[str, Any]:
        """Validate one conversion body and build its enriched row (no I/O).

        A browser Tag's conversion must also prove its click: thrad_exp and thrad_sig as the
        click redirect minted them (403 bad_click_signature otherwise).
        """
        raw = validate.decode_object(body)
        # A Tag's proof is popped before validation: it is no unknown field to keep.
        web = isinstance(key, TagRecord)
        proof = [raw.pop(name, None) if web else None for name in CLICK_PROOF_FIELDS]
        request = validate.convert_conversion(raw)
        received_at = ctx.received_at or datetime.now(UTC)
        try:
            client_ip = validate.check_client_ip(request.client_ip)
            conversion_time = validate.parse_conversion_time(request.conversion_time)
            currency = validate.normalize_currency(request.currency)
        except IngestError as error:
            raise validate.conversion_error(raw, error) from None
        click_id = canonical_click_id(request.click_id)
        user_agent = request.user_agent
        tag_id: str | None
        if isinstance(key, TagRecord):
            thrad_exp, thrad_sig = proof
            clicklinks.check_click_signature(
                self._click_secret,
                str(click_id),
                thrad_exp,
                thrad_sig,
                int(received_at.timestamp()),
            )
            tag_id, channel = key.tag_id, WEB_CHANNEL
            client_ip, user_agent = None, self._browser_user_agent(ctx)
            params = stamp_tag_params(request.params, key.partner_id)
        else:
            tag_id, channel = request.tag_id, request.channel or SERVER_CHANNEL
            params = stamp_params(request.params, key.partner_id, key.label)
        dedupe_key = conversion_dedupe_key(ctx.idempotency_key, request.event_id)
        extra = {k: v for k, v in raw.items() if k not in CONVERSION_FIELDS}
        if extra:
            params["extra"] = sanitize_extra(extra)
        row = _conversion_sent(request)
        row["received_at"] = received_at
        row["partner_id"] = key.partner_id
        row["click_id"] = click_id
        row["conversion_time"] = conversion_time  # written by the store (instants.py)
        row["currency"] = currency
        row["event_type"] = request.event_type or DEFAULT_EVENT_TYPE
        row["idempotency_key"] = ctx.idempotency_key.strip() if ctx.idempotency_key else None
        row["dedupe_key"] = dedupe_key
        row["user_agent"] = user_agent
        row["channel"] = channel
        row["tag_id"] = tag_id
        row["params"] = params
        row["test"] = key.test
        row.update(self._addresses(ctx, client_ip))
        row.update(self._enriched(row, user_agent, request.page_url, request.consent))
        return row

    def click_preview(self, query_string: str) -> str:
        """Verify a click link and return its landing URL, storing nothing.

        What a HEAD is answered with: link unfurlers and mail scanners probe links that way, and
        counting their probes as clicks would inflate clicks and lower conversion rates. With no
        click stored there is no click id, so the landing URL goes without the thrad_* fields.
        """
        return clicklinks.verify_link(query_string, self._click_secret).url

    async def click(self, query_string: str, ctx: RequestContext) -> str:
        """Verify a click link, store the click, and return the landing redirect."""
        link = clicklinks.verify_link(query_string, self._click_secret)
        click = await self._store_click(link, ctx, test=False)
        return clicklinks.landing_redirect(
            link.url, click.click_id, click.thrad_exp, click.thrad_sig, link.bid_id
        )

    async def create_click(
        self,
        ctx: RequestContext,
        *,
        campaign_id: str | None = None,
        ad_id: str | None = None,
        bid_id: str | None = None,
        test: bool,
    ) -> MintedClick:
        """Store a click no link was followed for (a test key's, or an operator's), with no
        landing page; its thrad_exp and thrad_sig are what the redirect would have carried."""
        link = clicklinks.ClickLink("", campaign_id=campaign_id, ad_id=ad_id, bid_id=bid_id)
        return await self._store_click(link, ctx, test=test)

    async def _store_click(
        self, link: clicklinks.ClickLink, ctx: RequestContext, *, test: bool
    ) -> MintedClick:
        received_at = ctx.received_at or datetime.now(UTC)
        click_id = str(uuid.uuid4())
        expires_at = int(received_at.timestamp()) + self._click_ttl_s
        row = _click_sent(link)
        row["click_id"] = click_id
        row["received_at"] = received_at
        row["expires_at"] = expires_at
        row["landing_url"] = link.url
        row["referrer"] = ctx.referer
        row["user_agent"] = ctx.user_agent
        row["test"] = test
        row.update(self._addresses(ctx, None))
        # A click's campaign fields are the ones its landing URL carries; it has no consent.
        row.update(self._enriched(row, ctx.user_agent, link.url or None, None))
        await _insert(self._store.insert_click, row)
        signature = clicklinks.click_signature(self._click_secret, click_id, expires_at)
        return MintedClick(click_id, expires_at, signature)


async def _insert(insert: Callable[[Row], Awaitable[InsertResult]], row: Row) -> InsertResult:
    """One row through the store; a storage failure is the client's 503."""
    try:
        return await insert(row)
    except StorageError as exc:
        raise Unavailable(str(exc)) from exc


def _outcome(result: InsertResult, row: Row) -> Outcome:
    """What the store's answer for a row means to the client (an event's is never
    CLICK_NOT_FOUND: only a conversion names a click that must exist)."""
    if result is InsertResult.INSERTED:
        return Outcome.STORED
    if result is InsertResult.CLICK_NOT_FOUND:
        raise ClickNotFound(f"click_id {row['click_id']!r} is not a known click")
    return Outcome.DUPLICATE
