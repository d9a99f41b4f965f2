"""What billing adds to a reply, and whether one app process leaks memory.

Two app processes on one scratch database, the same code and settings except the reply's
price: ``REPLY_COST_TOKENS=0`` (the chat route skips the ledger entirely) and ``=1``
(reserve before the provider, commit with the reply), both with rate limits on (high
enough never to refuse, so the limiter runs on every request). wrk drives
``POST /api/chats/{id}/generate`` with the offline provider at 1 and 64 connections,
alternating the two servers, ``mode.runs`` rounds; medians. Only one server is loaded at
a time; the idle one runs its background jobs as usual.

Memory: the charging server's RSS, sampled while it answers ``mode.memory_requests`` more
generate requests after the billing rounds warmed it up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.common import Mode, log, median, ratio, scratch_database
from bench.http import AppServer, WrkResult, rate_limit_store, run_wrk, write_targets
from bench.ledger import check_clean
from tokenbank.db import Database
from tokenbank.ledger import service as ledger

#: ``BENCH_USAGE_PRICE=1`` prices the paid server's replies by usage (a price book), so
#: ``billing_added_*`` measures a usage-priced reply: a larger hold fitted to the prompt,
#: then a partial commit of the estimated usage (the offline model reports none).
USAGE_BOOK = (
    '{"models": {"offline-1": {"per_1k_input": 1, "per_1k_output": 1, "minimum": 1}}}'
)

USERS = 256
CONCURRENCY = (1, 64)
FUNDS = 10**9


def paid_price() -> dict[str, str]:
    if os.environ.get("BENCH_USAGE_PRICE") == "1":
        return {"PRICE_BOOK": USAGE_BOOK}
    return {"REPLY_COST_TOKENS": "1"}


def register_users(server: AppServer, count: int) -> list[tuple[int, str, int]]:
    """``count`` users through the API: (user id, bearer token, chat id)."""
    users: list[tuple[int, str, int]] = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n in range(count):
            name = f"bench{n:04d}"
            r = client.post(
                "/api/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": "bench-pass-1"},
            )
            if r.status_code != 201:
                raise RuntimeError(f"register failed: {r.status_code} {r.text}")
            body = r.json()
            token = str(body["access_token"])
            chat = client.post(
                "/api/chats",
                json={"title": "bench"},
                headers={"Authorization": f"Bearer {token}"},
            )
            chat.raise_for_status()
            users.append((int(body["user"]["id"]), token, int(chat.json()["id"])))
    return users


async def fund(url: str, user_ids: list[int], tokens: int) -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            for user_id in user_ids:
                await ledger.grant(session, user_id, tokens, "bench funds")
    finally:
        await db.dispose()


def _check(result: WrkResult, what: str) -> WrkResult:
    if result.errors or result.non_2xx:
        raise RuntimeError(f"{what}: {result.errors} socket errors, {result.non_2xx} non-2xx")
    return result


async def bench_billing(mode: Mode) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {
        f"cost{c}_c{n}": [] for c in (0, 1) for n in CONCURRENCY
    }
    memory: dict[str, Any] = {}
    redis_errors = 0.0
    async with scratch_database("billing") as url:
        free = AppServer({"DATABASE_URL": url, "REPLY_COST_TOKENS": "0"}).start()
        try:
            paid = AppServer({"DATABASE_URL": url, **paid_price()}).start()
            try:
                users = register_users(free, USERS)
                await fund(url, [u for u, _, _ in users], FUNDS)
                with tempfile.TemporaryDirectory() as tmp:
                    targets = Path(tmp) / "targets.tsv"
                    write_targets(
                        targets,
                        [
                            (f"/api/chats/{chat}/generate", f"Bearer {tok}")
                            for _, tok, chat in users
                        ],
                    )
                    env = {"BENCH_TARGETS": str(targets)}
                    servers = {0: free, 1: paid}
                    for server in servers.values():  # warm both: imports, pools, plans
                        run_wrk(server.url, "generate.lua", 64, 2, env)
                    for run in range(mode.runs):
                        for n in CONCURRENCY:
                            for cost, result in alternate(servers, n, mode.http_s, env):
                                rounds[f"cost{cost}_c{n}"].append(result)
                                log(
                                    f"billing run {run + 1}/{mode.runs} cost={cost} c={n}: "
                                    f"{result['per_s']:.0f} req/s, p50 {result['p50_ms']:.2f} ms"
                                )
                    memory = watch_memory(paid, env, mode.memory_requests)
                    redis_errors = sum(
                        s.metric("tokenbank_rate_limit_redis_errors_total") for s in (free, paid)
                    )
            finally:
                paid.stop()
        finally:
            free.stop()
        violations = await check_clean(url)
    result = summarize(rounds, memory, violations)
    # Hits Redis did not count in time (each then counted in the database instead).
    result["rate_limits"]["redis_errors"] = redis_errors
    return result


def alternate(
    servers: dict[int, AppServer], connections: int, seconds: float, env: dict[str, str]
) -> list[tuple[int, dict[str, Any]]]:
    """Both servers, in one-second slices taken in turn (ABBA...), so that a burst of load
    from elsewhere on the machine lands on both alike; one result per server."""
    slices: dict[int, list[WrkResult]] = {cost: [] for cost in servers}
    for i in range(max(1, round(seconds))):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for cost in order:
            result = run_wrk(servers[cost].url, "generate.lua", connections, 1, env)
            slices[cost].append(_check(result, f"generate cost={cost} c={connections}"))
    out: list[tuple[int, dict[str, Any]]] = []
    for cost, results in slices.items():
        requests = sum(r.requests for r in results)
        elapsed = sum(r.seconds for r in results)
        out.append(
            (
                cost,
                {
                    "requests": requests,
                    "per_s": round(requests / elapsed, 1) if elapsed else 0.0,
                    "p50_ms": round(median(r.p50_ms for r in results), 3),
                    "p99_ms": round(median(r.p99_ms for r in results), 3),
                    "slices": len(results),
                },
            )
        )
    return out


def watch_memory(server: AppServer, env: dict[str, str], requests: int) -> dict[str, Any]:
    """RSS before, during and after ``requests`` more generate requests at 64 connections."""
    samples: list[tuple[int, float]] = [(0, server.rss_mb())]
    done = 0
    chunk_s = 5.0
    while done < requests:
        result = _check(run_wrk(server.url, "generate.lua", 64, chunk_s, env), "memory")
        done += result.requests
        samples.append((done, server.rss_mb()))
        # Size the chunks so the run ends near the target and samples at about ten points.
        chunk_s = max(2.0, min(30.0, requests / 10 / max(result.per_s, 1.0)))
    log(f"memory: {samples[0][1]:.1f} MB -> {samples[-1][1]:.1f} MB over {done} requests")
    half = [s for s in samples if s[0] >= done / 2]
    return {
        "requests": done,
        "samples": [{"requests": n, "rss_mb": round(mb, 1)} for n, mb in samples],
        "rss_before_mb": round(samples[0][1], 1),
        "rss_after_mb": round(samples[-1][1], 1),
        "growth_mb": round(samples[-1][1] - samples[0][1], 1),
        "second_half_growth_mb": round(half[-1][1] - half[0][1], 1) if len(half) > 1 else 0.0,
        "slope_mb_per_10k_second_half": round(_slope(half) * 10_000, 3),
    }


def _slope(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per request (the trend, not one noisy end point)."""
    if len(points) < 2:
        return 0.0
    xs, ys = [float(p[0]) for p in points], [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def summarize(
    rounds: dict[str, list[dict[str, Any]]], memory: dict[str, Any], violations: int
) -> dict[str, Any]:
    med: dict[str, dict[str, float]] = {
        name: {
            "per_s": median(r["per_s"] for r in runs),
            "p50_ms": median(r["p50_ms"] for r in runs),
            "p99_ms": median(r["p99_ms"] for r in runs),
        }
        for name, runs in rounds.items()
    }
    out: dict[str, Any] = {
        "users": USERS,
        "rate_limits": {"enabled": True, "store": rate_limit_store()},
        "median": med,
        "runs": rounds,
    }
    for n in CONCURRENCY:
        paid, free = rounds[f"cost1_c{n}"], rounds[f"cost0_c{n}"]
        # Each goal is a ratio (or difference) of the two servers measured in the same
        # run, interleaved; the figure is the median over runs of that paired number.
        ratios = [ratio(p["per_s"], f["per_s"]) for p, f in zip(paid, free, strict=True)]
        added = [p["p50_ms"] - f["p50_ms"] for p, f in zip(paid, free, strict=True)]
        added_p99 = [p["p99_ms"] - f["p99_ms"] for p, f in zip(paid, free, strict=True)]
        out[f"throughput_ratio_c{n}_per_run"] = ratios
        out[f"throughput_ratio_c{n}"] = median(ratios)
        out[f"added_p50_ms_c{n}_per_run"] = added
        out[f"added_p50_ms_c{n}"] = median(added)
        out[f"added_p99_ms_c{n}_per_run"] = added_p99
        out[f"added_p99_ms_c{n}"] = median(added_p99)
        # The ratio of the two medians, which pairs numbers from different runs; kept for
        # comparison with earlier results.
        out[f"throughput_ratio_c{n}_of_medians"] = ratio(
            med[f"cost1_c{n}"]["per_s"], med[f"cost0_c{n}"]["per_s"]
        )
    return {**out, "memory": memory, "violations": violations}
