"""The client's address, as far as it can be trusted, for limits keyed by address.

``X-Forwarded-For`` is believed only when the peer that connected is a configured trusted
proxy (``TRUSTED_PROXIES``); anyone else could write any address there. The header is
read from the right: each hop that is itself a trusted proxy is skipped, and the first
address that is not is the client (an address a client wrote on the left is never
reached while a proxy appended the real one). IPv6 clients are grouped by their /64,
the block one customer line usually gets, so rotating through it buys nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=32)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


def client_ip(peer: str | None, forwarded_for: list[str], trusted_proxies: tuple[str, ...]) -> str:
    """The client's address given the connecting peer and the X-Forwarded-For values."""
    networks = _networks(trusted_proxies)
    current = _parse(peer) if peer else None
    if current is None:
        return "unknown"
    if networks and _trusted(current, networks):
        hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                break  # garbage written by someone: stop at the last good hop
            current = address
            if not _trusted(address, networks):
                break
    return str(current)


def limit_key(ip: str) -> str:
    """The address a limit counts under: IPv4 as is, IPv6 by its /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def request_client_key(request: Request) -> str:
    """The limit key of the client that sent ``request``."""
    trusted: list[str] = request.app.state.settings.trusted_proxies
    ip = client_ip(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        tuple(trusted),
    )
    return limit_key(ip)
