"""What the Python SDK over HTTP costs, next to the ledger called in-process.

One scratch PostgreSQL database; one ``tokenbank serve`` process (rate limits on, never
tripping, the API key's own limit included); 32 customers made and funded through the
SDK with one API key of every scope. Two ways to spend one token, ``mode.runs`` rounds of
each, alternating, medians:

- **in-process**: ``charge_once`` — the ledger's reserve then commit, each its own unit of
  work, called in this process (what the app does for its own chat);
- **SDK**: ``async with billing.hold(customer, 1): pass`` through ``AsyncTokenbank`` —
  ``POST /api/v1/customers/{id}/holds`` then ``POST /api/v1/holds/{id}/commit``, each
  with its API key checked, its idempotency key recorded and its own unit of work.

At 1 client the p50 difference is what the SDK adds (goal ≤ 3 ms); at 32 concurrent
clients (one customer each) the SDK's holds+commits per second over the in-process
charges per second is the throughput ratio (goal ≥ 0.5). The load generator shares the
machine with the server: on two cores the SDK's own CPU (httpx, JSON) competes with it.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from bench.common import (
    Mode,
    charge_once,
    closed_loop,
    libpq_url,
    log,
    median,
    ratio,
    scratch_database,
)
from bench.http import NEVER_TRIPS, AppServer
from bench.ledger import check_clean
from tokenbank.apikeys import service as api_keys
from tokenbank.db import Database
from tokenbank_client import AsyncTokenbank, async_http_client

CLIENTS = (1, 32)
FUNDS = 10**8


async def make_key(db: Database) -> str:
    async with db.transaction() as session:
        created = await api_keys.create_key(
            session, "bench-sdk", ["read", "charge", "grant", "checkout"]
        )
    return created.secret


async def customer_user_ids(url: str, external_ids: list[str]) -> list[int]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        rows = await conn.fetch(
            "SELECT external_id, user_id FROM customers WHERE external_id = ANY($1::text[])",
            external_ids,
        )
    finally:
        await conn.close()
    by_id = {r["external_id"]: int(r["user_id"]) for r in rows}
    return [by_id[e] for e in external_ids]


async def bench_sdk(mode: Mode) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, float]]] = {
        f"{way}_c{n}": [] for way in ("inprocess", "sdk") for n in CLIENTS
    }
    async with scratch_database("sdk") as url:
        db = Database(url, pool_size=max(CLIENTS))
        server = AppServer({"DATABASE_URL": url, "RATE_LIMIT_API_KEY_PER_MIN": NEVER_TRIPS})
        server.start()
        # The SDK's own client (its connection pool), as ``AsyncTokenbank`` makes it when
        # given none, with room for every client of the run.
        http = async_http_client(timeout_s=60, max_connections=64)
        try:
            billing = AsyncTokenbank(await make_key(db), base_url=server.url, http_client=http)
            customers = [f"bench-sdk-{n}" for n in range(max(CLIENTS))]
            for customer in customers:
                await billing.upsert_customer(customer)
                await billing.grant(customer, FUNDS, reason="bench funds")
            users = await customer_user_ids(url, customers)

            async def inprocess(n: int, i: int, tag: str) -> None:
                await charge_once(db, users[n], f"bench-inproc-{tag}-{n}-{i}")

            async def through_sdk(n: int, i: int, tag: str) -> None:
                async with billing.hold(customers[n], 1):
                    pass

            ways = {"inprocess": inprocess, "sdk": through_sdk}
            for op in ways.values():  # warm both: imports, pools, plans, connections
                await closed_loop(8, 1.0, lambda n, i, op=op: op(n, i, "warm"))
            for run in range(mode.runs):
                for n in CLIENTS:
                    for way, op in ways.items():
                        tag = f"{run}-{n}"
                        cpu = (server.cpu_s(), time.process_time())
                        rate = await closed_loop(
                            n, mode.http_s, lambda c, i, op=op, tag=tag: op(c, i, tag)
                        )
                        # CPU per operation (warm-up and tail included: a rough split of
                        # where the time goes, the server's and this process's).
                        ops = max(rate.ops, 1)
                        server_ms = (server.cpu_s() - cpu[0]) * 1000 / ops
                        here_ms = (time.process_time() - cpu[1]) * 1000 / ops
                        rounds[f"{way}_c{n}"].append(
                            {"per_s": rate.per_s, "p50_ms": rate.p50_ms, "ops": rate.ops,
                             "server_cpu_ms": server_ms, "client_cpu_ms": here_ms}
                        )
                        log(
                            f"sdk run {run + 1}/{mode.runs} {way} c={n}: "
                            f"{rate.per_s:.0f}/s, p50 {rate.p50_ms:.2f} ms, CPU per op: "
                            f"server {server_ms:.2f} ms, this process {here_ms:.2f} ms"
                        )
        finally:
            await http.aclose()
            server.stop()
            await db.dispose()
        violations = await check_clean(url)
    return summarize(rounds, violations)


def summarize(rounds: dict[str, list[dict[str, float]]], violations: int) -> dict[str, Any]:
    med = {
        name: {
            key: median(r[key] for r in runs)
            for key in ("per_s", "p50_ms", "server_cpu_ms", "client_cpu_ms")
        }
        for name, runs in rounds.items()
    }
    c1, c32 = f"_c{CLIENTS[0]}", f"_c{CLIENTS[1]}"
    return {
        "median": med,
        "runs": rounds,
        "added_p50_ms_c1": med["sdk" + c1]["p50_ms"] - med["inprocess" + c1]["p50_ms"],
        "throughput_ratio_c32": ratio(med["sdk" + c32]["per_s"], med["inprocess" + c32]["per_s"]),
        "invariant_violations": violations,
    }
