"""The browser Tag's credentials: a registered tag_id and the origins its pages are served from.

A page holds no secret, so the server trusts only what the browser itself vouches for: the
`Origin` header (a page cannot set it) against the origins the operator registered for the tag.
The partner a Tag's rows belong to comes from this registry, never from the request body.
Origins are compared exactly once normalised: `scheme://host[:port]`, the host in lower case
(IDNA for non-ASCII names), the scheme's default port dropped. Lookups are cached for a few
seconds, so a changed registration reaches every process within that time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from thrad_events.auth import admin
from thrad_events.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    Unavailable,
    ValidationFailed,
    field_error,
)
from thrad_events.instants import utcnow
from thrad_events.store.admin_sql import AdminSession
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError
from thrad_events.store.tags import KEEP, TagRecord, TagSession

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ORIGINS = 50
MAX_TAG_ID_CHARS = 256
MAX_ORIGIN_CHARS = 300
MAX_DAILY_CAP = 10**12
# A tag_id is what a page sends: printable ASCII without spaces or quotes, and never `site:...`,
# which names the tag the server derives for an event sent without one.
_TAG_ID = re.compile(r"[A-Za-z0-9_.:@/+-]{1,256}")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class BadOrigin(ValueError):
    """Not an origin: the message says why, in plain words."""


def normalize_origin(text: str) -> str:
    """`scheme://host[:port]` of a web origin as browsers send it in `Origin`; BadOrigin else.

    No path, query, fragment, user name or wildcard: an origin names exactly one site.
    """
    text = text.strip()
    if not text or len(text) > MAX_ORIGIN_CHARS:
        raise BadOrigin(f"must be scheme://host[:port], at most {MAX_ORIGIN_CHARS} characters")
    if "*" in text:
        raise BadOrigin("wildcards are not supported: list each origin")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise BadOrigin("is not a URL origin (scheme://host[:port])") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadOrigin("must start with http:// or https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise BadOrigin("must not carry a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise BadOrigin("must be scheme://host[:port] only, without a path, query or fragment")
    host = _host(parts.hostname or "")
    if port is not None and port != DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _host(hostname: str) -> str:
    if not hostname:
        raise BadOrigin("has no host")
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    try:
        host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadOrigin("has a host name that is not valid") from None
    if not _HOST.match(host):
        raise BadOrigin("has a host name that is not valid")
    return host


def request_origin(header: str | None) -> str | None:
    """A request's normalised Origin; None when it is absent, `null` (sandboxed frames, file
    pages, some redirects) or no origin at all."""
    if not header or header.strip() == "null":
        return None
    try:
        return normalize_origin(header)
    except BadOrigin:
        return None


def check_tag_id(tag_id: Any) -> str:
    if not isinstance(tag_id, str) or not _TAG_ID.fullmatch(tag_id):
        raise field_error(
            ValidationFailed,
            "tag_id",
            f"must be 1-{MAX_TAG_ID_CHARS} letters, digits or _ . : @ / + -",
        )
    if tag_id.startswith("site:"):
        raise field_error(
            ValidationFailed, "tag_id", "site:... names the tag_id the server derives; pick another"
        )
    return tag_id


def check_origins(origins: Any) -> tuple[str, ...]:
    """Each origin normalised, duplicates dropped; at least one, at most MAX_ORIGINS. Every bad
    origin is named by its place (`origins[2]`), all in one error."""
    if not isinstance(origins, list) or not origins:
        raise field_error(ValidationFailed, "origins", "must be a non-empty list of origins")
    if len(origins) > MAX_ORIGINS:
        raise field_error(ValidationFailed, "origins", f"at most {MAX_ORIGINS} origins")
    normalized: list[str] = []
    problems: list[FieldProblem] = []
    for index, origin in enumerate(origins):
        if not isinstance(origin, str):
            problems.append(FieldProblem(f"origins[{index}]", "must be a string"))
            continue
        try:
            found = normalize_origin(origin)
        except BadOrigin as problem:
            problems.append(FieldProblem(f"origins[{index}]", str(problem)))
            continue
        if found not in normalized:
            normalized.append(found)
    if problems:
        first, more = problems[0], len(problems) - 1
        summary = f"{first.field}: {first.message}" + (f" (and {more} more)" if more else "")
        raise ValidationFailed(summary, tuple(problems))
    return tuple(normalized)


def check_daily_cap(cap: Any) -> int | None:
    """A cap of requests per UTC day: a positive integer, or None for no cap."""
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_DAILY_CAP:
        raise field_error(
            ValidationFailed, "daily_cap", "must be a whole number from 1 to 10^12, or null"
        )
    return cap


# -- the operator's actions, each committed with its audit entry (as auth/admin.py's) ----------


def create_tag(
    store: Store,
    actor: str,
    *,
    partner: str,
    tag_id: str,
    origins: Iterable[str],
    daily_cap: int | None,
) -> TagRecord:
    """Register a tag for `partner` (its id or name; a new name creates the partner); Conflict
    when the tag_id is taken. Recorded as `tag.create`. Blocking: HTTP calls it in a thread."""
    checked = check_tag_id(tag_id)
    allowed = check_origins(list(origins))
    cap = check_daily_cap(daily_cap)
    if not isinstance(partner, str):
        raise field_error(ValidationFailed, "partner", "must be a string")
    admin.check_text(partner, "partner", admin.MAX_PARTNER_NAME_CHARS)
    now = utcnow()

    def work(session: AdminSession) -> TagRecord:
        owner = admin.partner_or_new(session, actor, partner, now)
        tags = session.tags()
        added = tags.add(
            tag_id=checked,
            partner_id=owner.partner_id,
            origins=allowed,
            daily_cap=cap,
            created_at=now,
        )
        if not added:
            raise field_error(Conflict, "tag_id", f"{checked!r} is already registered")
        details = {"partner_id": owner.partner_id, "origins": list(allowed), "daily_cap": cap}
        session.record(now, actor, "tag.create", checked, details)
        return _found(tags, checked)

    return store.admin(work)


def update_tag(
    store: Store, actor: str, tag_id: str, *, daily_cap: Any = KEEP, origins: Any = KEEP
) -> TagRecord:
    """Change a tag's daily cap (None: no cap) and/or replace its origins; NotFound when there
    is no such tag. Recorded as `tag.update`, with the tag's partner and what was changed."""
    cap = daily_cap if daily_cap is KEEP else check_daily_cap(daily_cap)
    allowed = origins if origins is KEEP else check_origins(origins)
    if cap is KEEP and allowed is KEEP:
        raise ValidationFailed("nothing to change: give origins or daily_cap")
    now = utcnow()

    def work(session: AdminSession) -> TagRecord:
        tags = session.tags()
        if not tags.update(tag_id, daily_cap=cap, origins=allowed):
            raise field_error(NotFound, "tag_id", f"no tag {tag_id!r}")
        record = _found(tags, tag_id)
        details: dict[str, Any] = {"partner_id": record.partner_id}
        if allowed is not KEEP:
            details["origins"] = list(record.origins)
        if cap is not KEEP:
            details["daily_cap"] = record.daily_cap
        session.record(now, actor, "tag.update", tag_id, details)
        return record

    return store.admin(work)


def list_tags(store: Store, partner: str | None, limit: int) -> tuple[list[TagRecord], bool]:
    """At most `limit` tags by tag_id, of one partner (its id or name) or of all, and whether
    there were more."""

    def work(session: AdminSession) -> list[TagRecord]:
        partner_id = None if partner is None else admin.known_partner(session, partner).partner_id
        return session.tags().list_tags(partner_id, limit + 1)

    found = store.admin(work, write=False)
    return found[:limit], len(found) > limit


def _found(tags: TagSession, tag_id: str) -> TagRecord:
    record = tags.find(tag_id)
    assert record is not None  # written just now, in this transaction
    return record


class TagRegistry:
    """The registry as requests see it: tags by id and known origins, remembered for `ttl_s`
    (unknown ones too, so a flood of made-up tag ids reaches the store once per id and period).
    """

    def __init__(self, store: Store, *, ttl_s: float, max_entries: int = 10_000) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._tags: OrderedDict[str, tuple[float, TagRecord | None]] = OrderedDict()
        self._origins: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    async def find(self, tag_id: str) -> TagRecord | None:
        now = time.monotonic()
        cached = self._tags.get(tag_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        record: TagRecord | None = await self._lookup(self._store.tags().find, tag_id)
        self._remember(self._tags, tag_id, (now, record))
        return record

    async def origin_registered(self, origin: str) -> bool:
        now = time.monotonic()
        cached = self._origins.get(origin)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        known = bool(await self._lookup(self._store.tags().origin_registered, origin))
        self._remember(self._origins, origin, (now, known))
        return known

    @staticmethod
    async def _lookup(lookup: Any, value: str) -> Any:
        try:
            return await asyncio.to_thread(lookup, value)
        except StorageError as exc:
            raise Unavailable(f"tag lookup failed: {exc}") from exc

    def _remember(self, entries: OrderedDict[str, Any], name: str, entry: Any) -> None:
        entries[name] = entry
        entries.move_to_end(name)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)
