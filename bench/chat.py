"""What a reply's history and a refused hold cost.

**History** (``generate_history_ratio``): one ``tokenbank serve`` process (cost 1, rate
limits on), 256 funded users. Each has four chats of 1 message and one of 100 (the
question the bench asks and the offline model's answer, 50 times over: what 50 earlier
bench requests would have left). wrk drives ``POST /api/chats/{id}/generate`` at 64
connections on the short chats, then on the long ones, in two-second slices taken in
turn (A B B A ..., ``mode.http_s`` each per run). After every slice the messages
it added are deleted (untimed), so a short chat always has 1 message when a request
reads it and a long one 100. The goal is short req/s ÷ long req/s, per run; its median
over runs. Beside it, the app process's CPU per request of each kind (from /proc), which
other load on the machine moves less.

**Refused holds** (``refused_hold_ratio``): the unit of work behind a 402 against the one
behind a granted hold, on the same database, in this process (uvloop), one request at a
time: ``flows.start_reply`` (ownership, history, hold) for a user with no tokens — it
raises ``InsufficientTokens``, which the route answers 402 — and for a funded user (the
hold is then released, untimed). Alternating, ``mode.hold_samples`` each per run; the goal
is p50 refused ÷ p50 granted, per run; its median over runs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import Mode, libpq_url, log, median, percentile, ratio, scratch_database
from bench.http import (
    BENCH_JWT_SECRET,
    AppServer,
    WrkResult,
    rate_limit_store,
    run_wrk,
    write_targets,
)
from bench.ledger import check_clean
from tokenbank.auth import sessions
from tokenbank.chat import flows
from tokenbank.chat import service as chat
from tokenbank.chat.providers import ChatTurn
from tokenbank.chat.providers.offline import offline_reply
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger.errors import InsufficientTokens
from tokenbank.types import utcnow

FUNDED = 256
BROKE = 32
SHORT_PER_USER = 4
LONG_MESSAGES = 100
CONNECTIONS = 64
#: Two seconds a slice: at 64 connections on a loaded machine a request can take most of a
#: second, and a slice only counts the requests it completes.
SLICE_S = 2
FUNDS = 10**9
#: The question wrk asks (bench/wrk/generate.lua), and the offline model's answer to it.
QUESTION = "What is 12 * (3 + 4)?"
ANSWER = offline_reply([ChatTurn("user", QUESTION)])


async def seed(url: str) -> dict[str, Any]:
    """Users, accounts, chats and messages in a few server-side statements."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        async with conn.transaction():
            total = FUNDED + BROKE
            await conn.execute(
                """
                INSERT INTO users (id, username, email, password_hash, is_admin, created_at)
                SELECT g, 'bench' || g, 'bench' || g || '@bench.test', '-', false, now()
                FROM generate_series(1, $1::bigint) AS g
                """,
                total,
            )
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), $1::bigint)", total
            )
            # Funded users' balances are one grant each (balance = the sum of entries);
            # the broke users have an account with nothing in it.
            await conn.execute(
                """
                INSERT INTO token_accounts (user_id, balance, reserved, created_at, updated_at)
                SELECT g, CASE WHEN g <= $1 THEN $2::bigint ELSE 0 END, 0, now(), now()
                FROM generate_series(1, $3::bigint) AS g
                """,
                FUNDED,
                FUNDS,
                total,
            )
            await conn.execute(
                """
                INSERT INTO token_transactions (user_id, transaction_type, amount,
                    balance_after, description, idempotency_key, created_at)
                SELECT g, 'grant', $2::bigint, $2::bigint, 'bench funds', 'bench-seed', now()
                FROM generate_series(1, $1::bigint) AS g
                """,
                FUNDED,
                FUNDS,
            )
            await conn.execute(  # each grant's lot, as ledger.grant makes it
                """
                INSERT INTO token_lots (user_id, source, amount, remaining, held, priority,
                    created_at, transaction_id)
                SELECT user_id, 'grant', amount, amount, 0, 20, created_at, id
                FROM token_transactions WHERE idempotency_key = 'bench-seed'
                """
            )
            short = await conn.fetch(
                """
                INSERT INTO chats (user_id, title, created_at, updated_at)
                SELECT u, 'short', now(), now()
                FROM generate_series(1, $1::bigint) AS u, generate_series(1, $2) AS k
                RETURNING id, user_id
                """,
                total,
                SHORT_PER_USER,
            )
            long = await conn.fetch(
                """
                INSERT INTO chats (user_id, title, created_at, updated_at)
                SELECT u, 'long', now(), now() FROM generate_series(1, $1::bigint) AS u
                RETURNING id, user_id
                """,
                FUNDED,
            )
            await conn.execute(
                """
                INSERT INTO messages (chat_id, role, content, tokens_charged, model,
                    idempotency_key, created_at)
                SELECT c, 'user', $2, 0, NULL, 'seed', now() FROM unnest($1::bigint[]) AS c
                """,
                [r["id"] for r in short],
                QUESTION,
            )
            await conn.execute(
                """
                INSERT INTO messages (chat_id, role, content, tokens_charged, model,
                    idempotency_key, created_at)
                SELECT c,
                       CASE WHEN n % 2 = 0 THEN 'user' ELSE 'assistant' END,
                       CASE WHEN n % 2 = 0 THEN $3 ELSE $4 END,
                       n % 2, CASE WHEN n % 2 = 0 THEN NULL ELSE 'offline-1' END,
                       'seed-' || (n / 2), now() + n * interval '1 millisecond'
                FROM unnest($1::bigint[]) AS c, generate_series(0, $2 - 1) AS n
                ORDER BY c, n
                """,
                [r["id"] for r in long],
                LONG_MESSAGES,
                QUESTION,
                ANSWER,
            )
            seed_max = int(await conn.fetchval("SELECT max(id) FROM messages"))
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return {
        "short": [(int(r["id"]), int(r["user_id"])) for r in short],
        "long": [(int(r["id"]), int(r["user_id"])) for r in long],
        "seed_max": seed_max,
    }


async def reset(url: str, seed_max: int) -> None:
    """Back to 1 and 100 messages: delete what the last slice added."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("DELETE FROM messages WHERE id > $1", seed_max)
    finally:
        await conn.close()


async def bearers(url: str, user_ids: set[int]) -> dict[int, str]:
    """A signed-in session per user (access tokens are checked against their session)."""
    settings = Settings(
        _env_file=None, database_url=url, jwt_secret=BENCH_JWT_SECRET, jwt_expires_s=6 * 3600
    )
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            now = utcnow()
            return {
                u: f"Bearer {(await sessions.start(session, u, settings, now)).access_token}"
                for u in sorted(user_ids)
            }
    finally:
        await db.dispose()


def _check(result: WrkResult, what: str) -> WrkResult:
    if result.errors or result.non_2xx:
        raise RuntimeError(f"{what}: {result.errors} socket errors, {result.non_2xx} non-2xx")
    return result


async def bench_history(mode: Mode, url: str, seeded: dict[str, Any]) -> dict[str, Any]:
    per_run: dict[str, list[dict[str, float]]] = {"short": [], "long": []}
    tokens = await bearers(url, {u for k in ("short", "long") for _, u in seeded[k]})
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for kind in ("short", "long"):
            chats = _round_robin([(c, u) for c, u in seeded[kind] if u <= FUNDED])
            files[kind] = {"BENCH_TARGETS": str(Path(tmp) / f"{kind}.tsv")}
            write_targets(
                Path(files[kind]["BENCH_TARGETS"]),
                [(f"/api/chats/{c}/generate", tokens[u]) for c, u in chats],
            )
        with AppServer({"DATABASE_URL": url, "REPLY_COST_TOKENS": "1"}) as server:
            for kind in ("short", "long"):  # warm: imports, pools, plans
                _check(run_wrk(server.url, "generate.lua", CONNECTIONS, 2, files[kind]), kind)
            await reset(url, seeded["seed_max"])
            for run in range(mode.runs):
                slices: dict[str, list[WrkResult]] = {"short": [], "long": []}
                cpu_s = {"short": 0.0, "long": 0.0}
                for i in range(max(1, round(mode.http_s))):
                    for kind in ("short", "long") if i % 2 == 0 else ("long", "short"):
                        cpu_before = server.cpu_s()
                        result = run_wrk(
                            server.url, "generate.lua", CONNECTIONS, SLICE_S, files[kind]
                        )
                        cpu_s[kind] += server.cpu_s() - cpu_before
                        slices[kind].append(_check(result, f"history {kind}"))
                        await reset(url, seeded["seed_max"])
                for kind, results in slices.items():
                    seconds = sum(r.seconds for r in results)
                    requests = sum(r.requests for r in results)
                    per_run[kind].append(
                        {
                            "per_s": round(requests / seconds, 1),
                            "p50_ms": round(median(r.p50_ms for r in results), 3),
                            # The app's own CPU per request: much steadier than req/s on a
                            # machine whose other load comes and goes.
                            "app_cpu_ms": round(1000 * cpu_s[kind] / max(requests, 1), 3),
                        }
                    )
                log(
                    f"history run {run + 1}/{mode.runs}: 1 message "
                    f"{per_run['short'][-1]['per_s']:.0f} req/s, {LONG_MESSAGES} messages "
                    f"{per_run['long'][-1]['per_s']:.0f} req/s"
                )
    ratios = [
        ratio(s["per_s"], lg["per_s"])
        for s, lg in zip(per_run["short"], per_run["long"], strict=True)
    ]
    cpu_ratios = [
        ratio(lg["app_cpu_ms"], s["app_cpu_ms"])
        for s, lg in zip(per_run["short"], per_run["long"], strict=True)
    ]
    return {
        "connections": CONNECTIONS,
        "long_messages": LONG_MESSAGES,
        "runs": per_run,
        "ratio_per_run": ratios,
        "ratio": median(ratios),
        "app_cpu_ratio_per_run": cpu_ratios,
        "app_cpu_ratio": median(cpu_ratios),
    }


def _round_robin(chats: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each user's first chat, then each one's second, ...: neighbouring targets (asked
    at the same moment) belong to different users, whose holds do not queue on one
    account row — for the short chats (four per user) as for the long ones (one)."""
    seen: dict[int, int] = {}
    ranked = []
    for chat_id, user_id in sorted(chats):
        seen[user_id] = seen.get(user_id, 0) + 1
        ranked.append((seen[user_id], user_id, chat_id))
    return [(chat_id, user_id) for _, user_id, chat_id in sorted(ranked)]


async def bench_holds(mode: Mode, url: str, seeded: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,
        database_url=url,
        jwt_secret=BENCH_JWT_SECRET,
        ai_provider="offline",
        reply_cost_tokens=1,
    )
    provider = chat.start_provider(settings)
    db = Database(url, pool_size=2)
    broke = [(c, u) for c, u in seeded["short"] if u > FUNDED]
    funded = [(c, u) for c, u in seeded["short"] if u <= FUNDED]
    refused_p50: list[float] = []
    granted_p50: list[float] = []
    ratios: list[float] = []

    async def start(chat_id: int, user_id: int) -> chat.PendingReply | chat.Generation:
        return await flows.start_reply(
            db,
            provider,
            settings,
            user_id=user_id,
            chat_id=chat_id,
            content=QUESTION,
            idempotency_key=None,
        )

    try:
        for _ in range(5):  # warm both paths
            await _refused(start, *broke[0])
            await _granted(db, start, *funded[0])
        for run in range(mode.runs):
            refused: list[float] = []
            granted: list[float] = []
            for i in range(mode.hold_samples):
                refused.append(await _refused(start, *broke[i % len(broke)]))
                granted.append(await _granted(db, start, *funded[i % len(funded)]))
            refused_p50.append(percentile(refused, 50))
            granted_p50.append(percentile(granted, 50))
            ratios.append(ratio(refused_p50[-1], granted_p50[-1]))
            log(
                f"holds run {run + 1}/{mode.runs}: refused p50 {refused_p50[-1]:.3f} ms, "
                f"granted p50 {granted_p50[-1]:.3f} ms"
            )
    finally:
        await db.dispose()
        await provider.aclose()
    return {
        "samples_per_run": mode.hold_samples,
        "refused_p50_ms_per_run": refused_p50,
        "granted_p50_ms_per_run": granted_p50,
        "refused_p50_ms": median(refused_p50),
        "granted_p50_ms": median(granted_p50),
        "ratio_per_run": ratios,
        "ratio": median(ratios),
    }


async def _refused(start: Any, chat_id: int, user_id: int) -> float:
    t0 = time.perf_counter()
    try:
        await start(chat_id, user_id)
    except InsufficientTokens:
        return (time.perf_counter() - t0) * 1000
    raise RuntimeError(f"user {user_id} was not refused")


async def _granted(db: Database, start: Any, chat_id: int, user_id: int) -> float:
    t0 = time.perf_counter()
    pending = await start(chat_id, user_id)
    elapsed = (time.perf_counter() - t0) * 1000
    if not isinstance(pending, chat.PendingReply):
        raise RuntimeError(f"user {user_id} was not granted a hold")
    await flows.release_hold(db, pending)
    return elapsed


async def bench_chat(mode: Mode) -> dict[str, Any]:
    async with scratch_database("chat") as url:
        seeded = await seed(url)
        holds = await bench_holds(mode, url, seeded)
        history = await bench_history(mode, url, seeded)
        violations = await check_clean(url)
    return {
        "rate_limits": {"enabled": True, "store": rate_limit_store()},
        "history": history,
        "holds": holds,
        "violations": violations,
    }
