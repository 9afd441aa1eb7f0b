"""Which address sent a request: the TCP peer, or the hop a trusted proxy forwarded for."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from thrad_events.config import IPNetwork


class TrustedProxies:
    """Believes X-Forwarded-For only from peers inside the configured networks."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def sender_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The right-most X-Forwarded-For hop that is not a trusted proxy.

        Hops left of an untrusted one could be forged by the client, so they are never used.
        A malformed hop ends the walk: the last address we could vouch for is returned.
        """
        if peer is None or not self._networks or not forwarded_for:
            return peer
        if not self.is_trusted(peer):
            return peer
        candidate = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                candidate = str(ipaddress.ip_address(hop))
            except ValueError:
                return candidate
            if not self.is_trusted(candidate):
                return candidate
        return candidate
