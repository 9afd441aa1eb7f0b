"""The enrichment stage: every column the server derives for a row, in one call.

Given the addresses, the user agent, the page URL and the consent object of a row, it returns
geo_*, ua_*, utm_* and thrad_click_id, and the addresses as they may be stored: when consent
denies ad storage or opts out of sale (enrich/consent.py), ip_address is truncated (IPv4 /24,
IPv6 /48), geo is kept only to the region, and sender_ip too is truncated when it is the same
end user's address. A helper that fails leaves its columns empty; it never fails the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from thrad_events.enrich.campaign import campaign_columns
from thrad_events.enrich.consent import requires_minimisation
from thrad_events.enrich.geo import NO_GEO, GeoColumns, GeoLookup
from thrad_events.enrich.ip import truncate_ip
from thrad_events.enrich.useragent import NO_USER_AGENT, UserAgentParser
from thrad_events.fields import ENRICHMENT_FIELDS

log = logging.getLogger(__name__)

# Every column this stage returns: the stored fields' enrichment (fields.py).
ENRICHED_COLUMNS = ENRICHMENT_FIELDS


class RowEnricher:
    """Implements ingest.pipeline.Enricher over a geo lookup and a user-agent parser."""

    def __init__(
        self,
        geo: GeoLookup,
        user_agents: UserAgentParser,
        *,
        on_failure: Callable[[str], None] = lambda helper: None,
    ) -> None:
        self.geo = geo
        self._user_agents = user_agents
        self._failed: set[str] = set()
        # Told the helper's name on every failure, so that a fault is counted, not only logged.
        self._on_failure = on_failure

    def __call__(
        self,
        *,
        ip_address: str | None,
        sender_ip: str | None,
        user_agent: str | None,
        page_url: str | None,
        consent: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        geo = self._geo(ip_address) if ip_address else NO_GEO
        columns: dict[str, Any] = {"ip_address": ip_address, "sender_ip": sender_ip}
        if requires_minimisation(consent):
            columns["ip_address"] = truncate_ip(ip_address) if ip_address else None
            if sender_ip is not None and sender_ip == ip_address:
                columns["sender_ip"] = columns["ip_address"]
            if geo is not NO_GEO:
                geo = {**geo, "geo_city": None, "geo_lat": None, "geo_lon": None}
        columns.update(geo)
        columns.update(self._user_agent(user_agent) if user_agent else NO_USER_AGENT)
        columns.update(campaign_columns(page_url))
        return columns

    def _geo(self, ip_address: str) -> GeoColumns:
        try:
            return self.geo.lookup(ip_address)
        except Exception:
            self._failure("geo")
            return NO_GEO

    def _user_agent(self, user_agent: str) -> Mapping[str, Any]:
        try:
            return self._user_agents.columns(user_agent)
        except Exception:
            self._failure("user_agent")
            return NO_USER_AGENT

    def _failure(self, helper: str) -> None:
        # Enrichment fails open: the row is stored without these columns. A bug here should be
        # seen, but logged once, not once per event; the count says how many rows it cost.
        self._on_failure(helper)
        if helper not in self._failed:
            self._failed.add(helper)
            log.exception("%s enrichment failed; storing rows without it", helper)
