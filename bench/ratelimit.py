"""Where a rate-limit counter should live: ``python -m bench ratelimit``.

A micro-measurement behind the choice documented in docs/architecture.md. Per counted
request, on PostgreSQL, at 1 task (latency) and 32 tasks (throughput), one process:

- ``database``: the counter in its own short transaction (``Limiter`` without Redis: an
  ORM session, the upsert, COMMIT) — the fallback, and what every request paid before.
- ``joined``: the same upsert as one more statement inside a transaction that is open
  anyway (the hold's). Measured at its cheapest: raw asyncpg, prepared, against a unit
  that already writes a row; the figure is the difference with and without the upsert.
- ``redis``: ``Limiter`` with Redis — one Lua script call (INCR + EXPIRE), no transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.common import closed_loop, libpq_url, log, median, scratch_database
from tokenbank.db import Database
from tokenbank.ratelimit.flows import Limiter
from tokenbank.ratelimit.redis_counters import RedisCounters

REDIS_URL = "redis://127.0.0.1:6379/0"
RUNS = 3
SECONDS = 2.0

_UNIT = "INSERT INTO bench_unit (n) VALUES ($1)"
_COUNTER = (
    "INSERT INTO rate_limit_buckets (key, window_start, count) VALUES ($1, $2, 1) "
    "ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_buckets.count + 1 "
    "RETURNING count"
)


async def _rate(clients: int, op: Callable[[int, int], Awaitable[None]]) -> dict[str, float]:
    per_s, p50 = [], []
    for _ in range(RUNS):
        rate = await closed_loop(clients, SECONDS, op)
        per_s.append(rate.per_s)
        p50.append(rate.p50_ms)
    return {"per_s": round(median(per_s)), "p50_us": round(median(p50) * 1000)}


async def measure() -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with scratch_database("ratelimit") as url:
        admin = await asyncpg.connect(libpq_url(url))
        await admin.execute("CREATE TABLE bench_unit (n bigint)")
        await admin.close()
        for clients in (1, 32):
            out[f"c{clients}"] = await _measure(url, clients)
            log(f"rate-limit counters, {clients} task(s): {json.dumps(out[f'c{clients}'])}")
    return out


async def _measure(url: str, clients: int) -> dict[str, Any]:
    window = datetime.now(UTC).replace(second=0, microsecond=0)
    db = Database(url, pool_size=clients)
    prefix = f"tokenbank-bench:{uuid.uuid4().hex}:"
    in_db = Limiter(db)
    in_redis = Limiter(db, RedisCounters(REDIS_URL, prefix=prefix, timeout_s=1.0))
    pool = await asyncpg.create_pool(libpq_url(url), min_size=clients, max_size=clients)

    async def unit(client: int, i: int, *, joined: bool) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute(_UNIT, i)
            if joined:
                await conn.fetchval(_COUNTER, f"bench:user:{client}", window)

    try:
        base = await _rate(clients, lambda c, i: unit(c, i, joined=False))
        joined = await _rate(clients, lambda c, i: unit(c, i, joined=True))
        return {
            "database": await _rate(clients, lambda c, i: in_db.hit(f"bench:db:{c}", 10**9)),
            "redis": await _rate(clients, lambda c, i: in_redis.hit(f"bench:redis:{c}", 10**9)),
            "unit_without_counter": base,
            "unit_with_counter_joined": joined,
            "joined_added_p50_us": joined["p50_us"] - base["p50_us"],
        }
    finally:
        await pool.close()
        await in_redis.aclose()
        await db.dispose()
