"""The rate limiter on the hot path: Redis when configured, the database otherwise.

Against the real Redis on 127.0.0.1:6379 (each test under its own key prefix) and both
databases. A Redis outage is real too: the limiter talks to Redis through a TCP relay
the test closes and opens again. Where Redis is meant to answer, its timeout is generous,
so that a busy test machine is not mistaken for an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from tokenbank import deps
from tokenbank.app import create_app
from tokenbank.auth.security import AccessClaims
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.deps import LimiterDep
from tokenbank.observability import RATE_LIMIT_STORE_ERRORS
from tokenbank.ratelimit.flows import Limiter
from tokenbank.ratelimit.models import RateLimitBucket
from tokenbank.ratelimit.redis_counters import RedisCounters
from tokenbank.ratelimit.service import RateLimited

from conftest import app_client, make_settings
from support import register_user

pytestmark = pytest.mark.anyio


async def bucket_rows(db_url: str) -> int:
    db = Database(db_url, pool_size=1)
    try:
        async with db.transaction() as session:
            return int(
                (
                    await session.execute(select(func.count()).select_from(RateLimitBucket))
                ).scalar_one()
            )
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def generate_settings(db_url: str, **overrides: Any) -> Settings:
    return make_settings(
        db_url,
        rate_limit_enabled=True,
        rate_limit_generate_per_min=3,
        rate_limit_register_per_min=100,
        **overrides,
    )


async def generate_statuses(client: httpx.AsyncClient, count: int) -> list[int]:
    user = await register_user(client)
    chat = await client.post("/api/chats", json={"title": "t"}, headers=user["headers"])
    url = f"/api/chats/{chat.json()['id']}/generate"
    statuses = []
    for _ in range(count):
        r = await client.post(url, json={"content": "What is 2 + 2?"}, headers=user["headers"])
        statuses.append(r.status_code)
    return statuses


async def test_generate_counts_in_redis_with_the_token_decoded_once(
    db_url: str, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 replies a minute: the 4th is 429; Redis holds the count, the database nothing;
    each request decodes its bearer token once (the limiter uses the route's user id)."""
    decoded: list[str] = []
    real_decode = deps.decode_access_claims

    def counting_decode(token: str, secret: str) -> AccessClaims:
        decoded.append(token)
        return real_decode(token, secret)

    monkeypatch.setattr(deps, "decode_access_claims", counting_decode)
    settings = generate_settings(
        db_url, redis_url=redis_url, redis_key_prefix=redis_prefix, redis_timeout_s=5
    )
    async with app_client(settings) as client:
        statuses = await generate_statuses(client, 4)
    assert statuses == [200, 200, 200, 429]
    # create chat + 4 generates, one decode each
    assert len(decoded) == 5
    assert await bucket_rows(db_url) == 0
    r = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in r.scan_iter(match=f"{redis_prefix}rl:generate:user:*")]
        assert len(keys) == 1
        assert int(await r.get(keys[0])) == 4
        assert 0 < await r.ttl(keys[0]) <= 120
    finally:
        await r.aclose()


async def test_without_redis_the_database_counts(db_url: str) -> None:
    async with app_client(generate_settings(db_url)) as client:
        statuses = await generate_statuses(client, 4)
    assert statuses == [200, 200, 200, 429]
    assert await bucket_rows(db_url) >= 1


async def test_redis_not_answering_falls_back_to_the_database(db_url: str) -> None:
    """Nothing listens on Redis's port: the limit still holds, counted in the database,
    and the failure is tried once, not on every request."""
    errors_before = RATE_LIMIT_STORE_ERRORS._value.get()
    settings = generate_settings(
        db_url, redis_url=f"redis://127.0.0.1:{free_port()}/0", rate_limit_redis_retry_s=60
    )
    async with app_client(settings) as client:
        statuses = await generate_statuses(client, 4)
    assert statuses == [200, 200, 200, 429]
    assert await bucket_rows(db_url) >= 1
    assert RATE_LIMIT_STORE_ERRORS._value.get() - errors_before == 1


class Relay:
    """A TCP relay to Redis that the test can cut and restore (a Redis outage, for real)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_an_outage_moves_counts_to_the_database_and_back(
    db_url: str, redis_url: str, redis_prefix: str
) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    relay = Relay(port)
    await relay.open()
    db = Database(db_url, pool_size=2)
    counters = RedisCounters(f"redis://127.0.0.1:{relay.port}/0", prefix=redis_prefix, timeout_s=5)
    limiter = Limiter(db, counters, redis_retry_s=0.2)
    window = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)
    try:
        await limiter.hit("k", 10, now=window)
        assert limiter.store == "redis"
        await relay.cut()
        await limiter.hit("k", 10, now=window)  # Redis fails: counted in the database
        assert limiter.store == "database"
        assert await bucket_rows(db_url) == 1
        await relay.open()
        deadline = asyncio.get_running_loop().time() + 5
        while limiter.store != "redis":  # the retry pause is 0.2 s
            assert asyncio.get_running_loop().time() < deadline, "Redis was never retried"
            await asyncio.sleep(0.05)
        await limiter.hit("k", 10, now=window)
        r = aioredis.Redis.from_url(redis_url)
        try:
            key = f"{redis_prefix}rl:k:{int(window.timestamp()) // 60 * 60}"
            assert int(await r.get(key)) == 2  # the hit during the outage is not in Redis
        finally:
            await r.aclose()
    finally:
        await limiter.aclose()
        await db.dispose()
        with contextlib.suppress(AssertionError, RuntimeError):
            await relay.cut()


def _limiter(db_url: str, redis_url: str, redis_prefix: str, store: str) -> tuple[Database, Limiter]:
    db = Database(db_url, pool_size=2)
    counters = (
        RedisCounters(redis_url, prefix=redis_prefix, timeout_s=5) if store == "redis" else None
    )
    return db, Limiter(db, counters)


@pytest.mark.parametrize("store", ["redis", "database"])
async def test_both_stores_count_the_same_windows(
    db_url: str, redis_url: str, redis_prefix: str, store: str
) -> None:
    """Two a minute: the third is refused, told when the next would be allowed, and is."""
    db, limiter = _limiter(db_url, redis_url, redis_prefix, store)
    start = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    try:
        await limiter.hit("w", 2, now=start + timedelta(seconds=1))
        await limiter.hit("w", 2, now=start + timedelta(seconds=2))
        with pytest.raises(RateLimited) as refused:
            await limiter.hit("w", 2, now=start + timedelta(seconds=45))
        # Three hits (the refused one counts) weigh 2 again 40 s into the next window.
        assert refused.value.headers == {"Retry-After": "55"}
        await limiter.hit("w", 2, now=start + timedelta(seconds=45 + 55))
        await limiter.hit("other", 2, now=start + timedelta(seconds=3))
    finally:
        await limiter.aclose()
        await db.dispose()
    assert (await bucket_rows(db_url) > 0) == (store == "database")


@pytest.mark.parametrize("store", ["redis", "database"])
async def test_a_burst_across_a_window_edge_gets_no_second_allowance(
    db_url: str, redis_url: str, redis_prefix: str, store: str
) -> None:
    """Three a minute, three at 0:59: fixed windows would allow three more at 1:00."""
    db, limiter = _limiter(db_url, redis_url, redis_prefix, store)
    edge = datetime(2026, 1, 1, 12, 1, 0, tzinfo=UTC)
    try:
        for n in range(3):
            await limiter.hit("edge", 3, now=edge - timedelta(seconds=1, milliseconds=100 * n))
        with pytest.raises(RateLimited):
            await limiter.hit("edge", 3, now=edge + timedelta(milliseconds=100))
        # A minute after the burst the window has slid past it.
        await limiter.hit("edge", 3, now=edge + timedelta(seconds=59))
    finally:
        await limiter.aclose()
        await db.dispose()


async def test_a_route_can_count_under_keys_of_its_own(
    db_url: str, redis_url: str, redis_prefix: str
) -> None:
    """``LimiterDep``: what a route uses to limit by something else than the caller (an
    account name being signed in to, say)."""
    settings = make_settings(
        db_url, redis_url=redis_url, redis_key_prefix=redis_prefix, redis_timeout_s=5
    )
    app = create_app(settings)

    async def limited(name: str, limiter: LimiterDep) -> dict[str, str]:
        await limiter.hit(f"test-account:{name}", 2)
        return {"ok": name}

    app.add_api_route("/test-limited/{name}", limited, methods=["POST"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            codes = [(await client.post("/test-limited/alice")).status_code for _ in range(3)]
            other = (await client.post("/test-limited/bob")).status_code
    assert codes == [200, 200, 429]
    assert other == 200
