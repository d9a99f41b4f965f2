"""Sign-in and sign-up limits: per account with growing back-off (shared by every app
process), per client address taken from trusted proxies only, IPv6 by /64."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from reliability.harness import AppProcess
from tokenbank.app import create_app
from tokenbank.auth.models import AuthThrottle
from tokenbank.db import Database
from tokenbank.types import utcnow

from conftest import _truncate_postgres, make_settings
from support import register_user

pytestmark = pytest.mark.anyio


class Site:
    """One app; ``client(peer)`` talks to it from a given connecting address."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._clients: list[httpx.AsyncClient] = []

    def client(self, peer: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(peer, 40000))
        c = httpx.AsyncClient(transport=transport, base_url="http://t")
        c.app = self.app  # type: ignore[attr-defined]
        self._clients.append(c)
        return c

    async def time_passes(self) -> None:
        """Every lock ends now (as if its wait had passed)."""
        db: Database = self.app.state.db
        async with db.transaction() as session:
            await session.execute(update(AuthThrottle).values(locked_until=utcnow()))


@asynccontextmanager
async def _site(db_url: str, **overrides: Any) -> AsyncIterator[Site]:
    limits = {"rate_limit_enabled": True, "rate_limit_login_per_min": 1000,
              "rate_limit_register_per_min": 1000}
    app = create_app(make_settings(db_url, **(limits | overrides)))
    site = Site(app)
    async with app.router.lifespan_context(app):
        try:
            yield site
        finally:
            for c in site._clients:
                await c.aclose()


@pytest.fixture
async def site(db_url: str) -> AsyncIterator[Site]:
    # Waits long enough that none runs out between two requests of a test.
    async with _site(db_url, login_free_attempts=3, login_backoff_base_s=10) as s:
        yield s


async def _login(c: httpx.AsyncClient, name: str, password: str, **kw: Any) -> httpx.Response:
    return await c.post("/api/auth/login", json={"username": name, "password": password}, **kw)


async def test_each_failure_past_the_free_ones_doubles_the_wait(site: Site) -> None:
    c = site.client()
    await register_user(c, "victim", password="right-pass-1", verify=False)
    codes = [(await _login(c, "victim", f"wrong-{n}-1")).status_code for n in range(4)]
    assert codes == [401, 401, 401, 401]  # three free, the fourth is checked and locks
    waits = []
    for _ in range(4):
        locked = await _login(c, "victim", "right-pass-1")  # even the right password waits
        assert (locked.status_code, locked.json()["error"]["code"]) == (429, "login_locked")
        waits.append(int(locked.headers["retry-after"]))
        assert locked.json()["error"]["retry_after_s"] == waits[-1]
        await site.time_passes()
        assert (await _login(c, "victim", "wrong-again-1")).status_code == 401
    assert waits == [10, 20, 40, 80]
    await site.time_passes()
    assert (await _login(c, "victim", "right-pass-1")).status_code == 200
    # A success forgets the failures: three free attempts again.
    codes = [(await _login(c, "victim", f"wrong-{n}-1")).status_code for n in range(3)]
    assert codes == [401, 401, 401]


async def test_the_wait_is_capped(db_url: str) -> None:
    async with _site(db_url, login_free_attempts=1, login_backoff_base_s=100,
                     login_backoff_max_s=500) as site:
        c = site.client()
        waits = []
        assert (await _login(c, "ghost", "wrong-pass-1")).status_code == 401  # the free one
        for _ in range(6):
            assert (await _login(c, "ghost", "wrong-pass-1")).status_code == 401  # locks
            r = await _login(c, "ghost", "wrong-pass-1")
            waits.append(int(r.headers["retry-after"]))
            await site.time_passes()
        assert waits == [100, 200, 400, 500, 500, 500]


async def test_locking_one_account_never_blocks_another(site: Site) -> None:
    c = site.client()  # everyone behind one address, as behind a load balancer
    await register_user(c, "target", password="right-pass-1", verify=False)
    await register_user(c, "bystander", password="other-pass-1", verify=False)
    for n in range(10):
        await _login(c, "target", f"wrong-{n}-1")
    assert (await _login(c, "target", "right-pass-1")).status_code == 429
    assert (await _login(c, "bystander", "other-pass-1")).status_code == 200
    # Sign-in by email counts against the same account as by username.
    assert (await _login(c, "target@example.com", "right-pass-1")).status_code == 429
    # Unknown names behave like real ones (nothing tells them apart), each on its own.
    for _ in range(4):
        await _login(c, "nobody-here", "wrong-pass-1")
    assert (await _login(c, "nobody-here", "wrong-pass-1")).status_code == 429
    assert (await _login(c, "nobody-else", "wrong-pass-1")).status_code == 401


async def test_many_addresses_do_not_buy_more_guesses(db_url: str) -> None:
    async with _site(db_url, login_free_attempts=3, trusted_proxies=["10.0.0.0/8"]) as site:
        await register_user(site.client(), "popular", password="right-pass-1", verify=False)
        statuses = []
        for n in range(12):  # a botnet: every guess from another address, via the proxy
            c = site.client("10.0.0.2")
            r = await _login(c, "popular", f"wrong-{n}-1",
                             headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
            statuses.append(r.status_code)
        assert statuses == [401] * 4 + [429] * 8


async def test_a_burst_of_parallel_guesses_gets_no_extra_checks(db_url: str) -> None:
    # A wait far longer than the burst, so no lock can run out while it lasts.
    async with _site(db_url, login_free_attempts=3, login_backoff_base_s=600) as site:
        c = site.client()
        await register_user(c, "burst", password="right-pass-1", verify=False)
        answers = await asyncio.gather(*(_login(c, "burst", f"wrong-{n}-1") for n in range(20)))
        assert Counter(a.status_code for a in answers) == {401: 4, 429: 16}


def test_the_account_limit_holds_across_app_processes(postgres_url: str) -> None:
    """Two `tokenbank serve` processes on one database: 4 guesses checked in all, not 8."""
    _truncate_postgres(postgres_url)
    env = {
        "DATABASE_URL": postgres_url,
        "JWT_SECRET": "x" * 40,
        "LOGIN_FREE_ATTEMPTS": "3",
        "LOGIN_BACKOFF_BASE_S": "600",  # no lock runs out during the burst
        "RATE_LIMIT_LOGIN_PER_MIN": "1000",
        "BACKGROUND_JOBS": "false",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
    }
    apps = [AppProcess(env).launch(), AppProcess(env).launch()]
    try:
        for a in apps:
            a.wait_ready()

        async def burst() -> Counter[int]:
            async with httpx.AsyncClient(timeout=30) as c:
                r = await c.post(f"{apps[0].url}/api/auth/register", json={
                    "username": "shared", "email": "shared@example.com",
                    "password": "right-pass-1"})
                assert r.status_code == 201, r.text
                rs = await asyncio.gather(*(
                    c.post(f"{apps[i % 2].url}/api/auth/login",
                           json={"username": "shared", "password": f"wrong-{i}-1"})
                    for i in range(16)
                ))
            return Counter(r.status_code for r in rs)

        assert asyncio.run(burst()) == {401: 4, 429: 12}
    finally:
        for a in apps:
            a.stop()


def test_a_real_server_ignores_forwarded_for_from_loopback(postgres_url: str) -> None:
    """`tokenbank serve` behind no proxy: X-Forwarded-For rotated from 127.0.0.1 buys nothing."""
    _truncate_postgres(postgres_url)
    env = {
        "DATABASE_URL": postgres_url,
        "JWT_SECRET": "x" * 40,
        "RATE_LIMIT_LOGIN_PER_MIN": "3",
        "BACKGROUND_JOBS": "false",
    }
    app = AppProcess(env).start()
    try:
        statuses = [
            httpx.post(f"{app.url}/api/auth/login",
                       json={"username": f"n{n}-name", "password": "wrong-pass-1"},
                       headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=30).status_code
            for n in range(5)
        ]
    finally:
        app.stop()
    assert statuses == [401, 401, 401, 429, 429]


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(db_url: str) -> None:
    # No trusted proxies: rotating X-Forwarded-For from one address buys nothing.
    async with _site(db_url, rate_limit_enabled=True, rate_limit_login_per_min=3) as site:
        c = site.client("203.0.113.9")
        statuses = [
            (await _login(c, f"n{n}-name", "wrong-pass-1",
                          headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
            for n in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(db_url: str) -> None:
    async with _site(db_url, rate_limit_enabled=True, rate_limit_login_per_min=2,
                            trusted_proxies=["10.0.0.0/8", "192.168.0.0/16"]) as site:
        proxy = site.client("10.0.0.2")

        async def status(xff: str, name: str = "someone") -> int:
            return (await _login(proxy, name, "wrong-pass-1",
                                 headers={"X-Forwarded-For": xff})).status_code

        assert [await status("198.51.100.1") for _ in range(3)] == [401, 401, 429]
        # Another client behind the same load balancer is not locked out.
        assert await status("198.51.100.2") == 401
        # A client writing its own X-Forwarded-For: the proxy appends the real address,
        # which is what counts (read from the right, skipping trusted hops).
        assert await status("192.0.2.77, 198.51.100.1") == 429
        assert await status("198.51.100.1, 192.168.1.1") == 429  # two proxy hops
        # Without a forwarded address, the proxy itself is the client.
        no_header = await _login(proxy, "someone", "wrong-pass-1")
        assert no_header.status_code == 401


async def test_ipv6_clients_are_counted_by_their_64_block(db_url: str) -> None:
    async with _site(db_url, rate_limit_enabled=True, rate_limit_login_per_min=2) as site:
        same_block = [site.client(f"2001:db8:1:2::{n:x}") for n in range(1, 4)]
        statuses = [(await _login(c, "v6", "wrong-pass-1")).status_code for c in same_block]
        assert statuses == [401, 401, 429]
        other_block = site.client("2001:db8:1:3::1")
        assert (await _login(other_block, "v6", "wrong-pass-1")).status_code == 401


async def test_sign_ups_are_capped_per_address_per_day(db_url: str) -> None:
    async with _site(db_url, signup_per_ip_per_day=3, rate_limit_enabled=True,
                            rate_limit_register_per_min=100, trusted_proxies=["10.0.0.0/8"]) as site:
        proxy = site.client("10.0.0.2")

        async def sign_up(name: str, xff: str) -> httpx.Response:
            return await proxy.post(
                "/api/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": "cap-pass-1"},
                headers={"X-Forwarded-For": xff},
            )

        assert (await sign_up("cap1", "198.51.100.1")).status_code == 201
        taken = await sign_up("cap1", "198.51.100.1")  # a refused sign-up does not count
        assert taken.status_code == 409
        for name in ("cap2", "cap3"):
            assert (await sign_up(name, "198.51.100.1")).status_code == 201
        over = await sign_up("cap4", "198.51.100.1")
        assert (over.status_code, over.json()["error"]["code"]) == (429, "signup_limit_reached")
        assert 1 <= int(over.headers["retry-after"]) <= 24 * 3600
        assert (await sign_up("cap5", "198.51.100.2")).status_code == 201  # another network


async def test_parallel_sign_ups_do_not_slip_past_the_cap(db_url: str) -> None:
    async with _site(db_url, signup_per_ip_per_day=5) as site:
        c = site.client("198.51.100.50")
        answers = await asyncio.gather(*(
            c.post("/api/auth/register", json={
                "username": f"par{n}", "email": f"par{n}@example.com", "password": "cap-pass-1"})
            for n in range(12)
        ))
        assert Counter(a.status_code for a in answers) == {201: 5, 429: 7}
