"""Which address a request counts under (trusted proxies, X-Forwarded-For, IPv6 /64)."""

from __future__ import annotations

import pytest

from tokenbank.client_address import client_ip, limit_key

PROXIES = ("10.0.0.0/8", "2001:db8:ffff::/48")


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # untrusted peer: header ignored
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["1.1.1.1, 198.51.100.1"], "198.51.100.1"),  # client-written left part
        ("10.1.2.3", ["198.51.100.1, 10.9.9.9"], "198.51.100.1"),  # two trusted hops
        ("10.1.2.3", ["198.51.100.1", "10.9.9.9"], "198.51.100.1"),  # repeated headers
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", ["10.0.0.7"], "10.0.0.7"),  # all trusted: the farthest one
        ("10.1.2.3", ["198.51.100.1, not-an-ip"], "10.1.2.3"),  # garbage stops the walk
        ("10.1.2.3", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.1.2.3", ["198.51.100.1:5555"], "198.51.100.1"),
        ("2001:db8:ffff::1", ["2001:db8:1::9"], "2001:db8:1::9"),
        ("::ffff:10.1.2.3", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped peer
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_ip(peer: str | None, xff: list[str], expected: str) -> None:
    assert client_ip(peer, xff, PROXIES) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_ip("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


def test_ipv6_keys_are_the_64_block() -> None:
    assert limit_key("2001:db8:1:2::1") == limit_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("198.51.100.7") == "198.51.100.7"
