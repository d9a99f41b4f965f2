"""Reads that must not slow down as the ledger grows.

One table of ``mode.scale_total_rows`` ledger rows, generated server-side with
``generate_series``: a big user owns every tenth row (10^6 of 10^7 in ``--full``), a
small user 10^3 rows, filler users the rest. Rows interleave in id order as they would in
life, each ``balance_after`` is the user's running total and each account's balance is
the sum of its rows, so the ledger's guarantees hold on the generated data too.

Then the balance read and the first history page (the service calls behind
``GET /api/payment/user/tokens`` and ``/transactions``), each in its own transaction,
alternating big and small user; p50 latency per user, ratio big / small.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from bench.common import Mode, libpq_url, log, median, percentile, ratio, scratch_database
from tokenbank.db import Database
from tokenbank.ledger import service as ledger

BIG, SMALL = 1, 2
SMALL_ROWS = 1000

# t = 0 .. N-1 is a row's place in time. Every tenth row is the big user's; in every
# P-th block of ten, the second row is the small user's; the rest of block d goes to
# filler user 3 + d % P (so the small user's blocks all fall to filler 3, which has 8
# rows in each of its blocks and the others 9). That makes each row's running total a
# closed formula, with no sort over 10^7 rows.
GENERATE_ROWS = """
INSERT INTO token_transactions
    (user_id, transaction_type, amount, balance_after, description, created_at)
SELECT
    CASE WHEN t % 10 = 0 THEN 1
         WHEN t % 10 = 1 AND (t / 10) % $2 = 0 THEN 2
         ELSE 3 + (t / 10) % $2 END,
    'grant', 1,
    CASE WHEN t % 10 = 0 THEN t / 10 + 1
         WHEN t % 10 = 1 AND (t / 10) % $2 = 0 THEN (t / 10) / $2 + 1
         WHEN (t / 10) % $2 = 0 THEN ((t / 10) / $2) * 8 + (t % 10 - 2) + 1
         ELSE ((t / 10) / $2) * 9 + (t % 10 - 1) + 1 END,
    'bench row', timestamptz '2026-01-01 00:00:00+00' + t * interval '1 second'
FROM generate_series(0::bigint, $1::bigint - 1) AS t
"""


def layout(total_rows: int) -> tuple[int, int]:
    """(rows of the big user, filler users) for ``total_rows`` (a multiple of 10^4)."""
    blocks = total_rows // 10
    if total_rows % 10 or blocks % SMALL_ROWS:
        raise ValueError("total rows must be a multiple of 10,000")
    return blocks, blocks // SMALL_ROWS


async def generate(url: str, total_rows: int) -> dict[str, Any]:
    big_rows, fillers = layout(total_rows)
    started = time.perf_counter()
    conn = await asyncpg.connect(libpq_url(url))
    try:
        users = fillers + 2
        await conn.execute(
            """
            INSERT INTO users (id, username, email, password_hash, is_admin, created_at)
            SELECT g, 'scale' || g, 'scale' || g || '@example.com', '-', false, now()
            FROM generate_series(1, $1::bigint) AS g
            """,
            users,
        )
        await conn.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), $1)", users)
        await conn.execute(GENERATE_ROWS, total_rows, fillers)
        # Each account's balance is the sum of its rows (guarantee 1).
        await conn.execute(
            """
            INSERT INTO token_accounts (user_id, balance, reserved, created_at, updated_at)
            SELECT user_id, sum(amount), 0, now(), now()
            FROM token_transactions GROUP BY user_id
            """
        )
        await conn.execute("VACUUM ANALYZE token_transactions")
        await conn.execute("VACUUM ANALYZE token_accounts")
        counts = {
            "total_rows": int(await conn.fetchval("SELECT count(*) FROM token_transactions")),
            "big_user_rows": int(
                await conn.fetchval("SELECT balance FROM token_accounts WHERE user_id = 1")
            ),
            "small_user_rows": int(
                await conn.fetchval("SELECT balance FROM token_accounts WHERE user_id = 2")
            ),
            "users": users,
            "table_size": str(
                await conn.fetchval(
                    "SELECT pg_size_pretty(pg_total_relation_size('token_transactions'))"
                )
            ),
        }
    finally:
        await conn.close()
    counts["generate_s"] = round(time.perf_counter() - started, 1)
    assert counts["big_user_rows"] == big_rows and counts["small_user_rows"] == SMALL_ROWS
    return counts


async def explain(url: str, user_id: int) -> str:
    """The plan of the service's own first-page query (compiled from the repository)."""
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    from tokenbank.ledger import repository as repo

    query = repo.history_query(user_id, 51, None).compile(
        dialect=PGDialect_asyncpg(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    conn = await asyncpg.connect(libpq_url(url))
    try:
        rows = await conn.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) {query}"
        )
        return "\n".join(str(r[0]) for r in rows)
    finally:
        await conn.close()


async def measure_reads(url: str, reads: int) -> dict[str, dict[str, list[float]]]:
    db = Database(url, pool_size=1)
    timings: dict[str, dict[str, list[float]]] = {
        "balance": {"big": [], "small": []},
        "history": {"big": [], "small": []},
    }
    try:

        async def balance(user_id: int) -> None:
            async with db.transaction() as session:
                await ledger.balance(session, user_id)

        async def history(user_id: int) -> None:
            async with db.transaction() as session:
                page = await ledger.history(session, user_id, limit=50)
                assert len(page.items) == 50

        for _ in range(50):  # warm the pool, the prepared statements and the cache
            for user_id in (BIG, SMALL):
                await balance(user_id)
                await history(user_id)
        for _ in range(reads):
            for name, call in (("balance", balance), ("history", history)):
                for who, user_id in (("big", BIG), ("small", SMALL)):
                    t0 = time.perf_counter()
                    await call(user_id)
                    timings[name][who].append((time.perf_counter() - t0) * 1000)
    finally:
        await db.dispose()
    return timings


async def bench_scale(mode: Mode) -> dict[str, Any]:
    async with scratch_database("scale") as url:
        log(f"scale: generating {mode.scale_total_rows:,} ledger rows")
        counts = await generate(url, mode.scale_total_rows)
        log(f"scale: generated in {counts['generate_s']} s ({counts['table_size']})")
        runs: list[dict[str, float]] = []
        for _ in range(mode.runs):
            t = await measure_reads(url, mode.scale_reads)
            runs.append(
                {
                    f"{name}_{who}_p50_ms": percentile(t[name][who], 50)
                    for name in t
                    for who in ("big", "small")
                }
            )
        plans = {"big": await explain(url, BIG), "small": await explain(url, SMALL)}
    med = {key: median(r[key] for r in runs) for key in runs[0]}
    return {
        **counts,
        "reads_per_run": mode.scale_reads,
        "median": med,
        "runs": runs,
        "balance_read_ratio": ratio(med["balance_big_p50_ms"], med["balance_small_p50_ms"]),
        "history_ratio": ratio(med["history_big_p50_ms"], med["history_small_p50_ms"]),
        "history_plans": plans,
    }
