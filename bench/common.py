"""What every benchmark shares: scratch databases, timing loops, statistics, the machine."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import uvloop

from tokenbank.db import Database, Unit
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import Reservation
from tokenbank.migrate import upgrade_async

T = TypeVar("T")

#: One charge: its hold's TTL and descriptions (pgbench -D values cannot hold spaces).
TTL_S = 3600.0
HOLD = "bench-hold"
DESCRIPTION = "bench-reply"

PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Mode:
    """How long and how big: ``quick`` fits in five minutes, ``full`` is the real thing."""

    name: str
    runs: int
    ledger_s: float
    sqlite_s: float
    http_s: float
    webhook_events: int
    scale_total_rows: int
    scale_big_user_rows: int
    scale_reads: int
    memory_requests: int
    #: Also run the 32 clients as two processes of 16 (full runs only: it costs time).
    ledger_processes: bool
    #: Refused and granted holds timed per run (bench/chat.py), each.
    hold_samples: int


QUICK = Mode(
    name="quick",
    runs=3,
    ledger_s=2.0,
    sqlite_s=1.5,
    http_s=3.0,
    webhook_events=100,
    scale_total_rows=10**6,
    scale_big_user_rows=10**5,
    scale_reads=200,
    memory_requests=3_000,
    ledger_processes=False,
    hold_samples=300,
)
FULL = Mode(
    name="full",
    runs=5,
    ledger_s=10.0,
    sqlite_s=5.0,
    http_s=10.0,
    webhook_events=500,
    scale_total_rows=10**7,
    scale_big_user_rows=10**6,
    scale_reads=1000,
    memory_requests=100_000,
    ledger_processes=True,
    hold_samples=1000,
)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop, the loop uvicorn uses for the app, so both sides pay the same."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def database_url(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def libpq_url(url: str) -> str:
    """pgbench and psql want ``postgresql://``, never a SQLAlchemy driver suffix."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


@asynccontextmanager
async def scratch_database(tag: str, *, migrate: bool = True) -> AsyncIterator[str]:
    """A migrated PostgreSQL database that exists only for this block."""
    name = f"tokenbank_bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database_url(name)
    try:
        if migrate:
            await upgrade_async(url)
        yield url
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


#: A scratch database's name ends with the process id of the run that made it.
_SCRATCH_OWNER = re.compile(r"^tokenbank_bench_.*_(\d+)_[0-9a-f]{6}$")


def _left_over(name: str) -> bool:
    """Whether ``name`` is a scratch database whose run has ended (the process id in its
    name runs no more on this machine). Other databases are not the bench's to drop."""
    found = _SCRATCH_OWNER.match(name)
    if found is None:
        return False
    pid = int(found.group(1))
    if pid == os.getpid():
        return True  # made by an earlier process with this id: this run has made none yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


async def drop_leftover_databases() -> list[str]:
    """Drop the scratch databases of bench runs that were killed (see :func:`_left_over`).

    A database whose run is still alive is left alone: dropping it ``WITH (FORCE)``
    would cut that run's connections mid-statement (two runs on one machine used to
    break each other that way: "another operation is in progress", 500s, "database
    does not exist")."""
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        rows = await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'tokenbank_bench_%'"
        )
        dropped = [str(r["datname"]) for r in rows if _left_over(str(r["datname"]))]
        for name in dropped:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return dropped
    finally:
        await admin.close()


async def seed_users(url: str, count: int, tokens: int) -> None:
    """``count`` users with ids 1..count, each funded by one grant and its lot (balance =
    sum)."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        async with conn.transaction():
            await conn.execute(
                """
                INSERT INTO users (id, username, email, password_hash, is_admin, created_at)
                SELECT g, 'bench' || g, 'bench' || g || '@bench.test', '-', false, now()
                FROM generate_series(1, $1::bigint) AS g
                """,
                count,
            )
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), $1::bigint)", count
            )
            await conn.execute(
                """
                INSERT INTO token_accounts (user_id, balance, reserved, created_at, updated_at)
                SELECT g, $2::bigint, 0, now(), now() FROM generate_series(1, $1::bigint) AS g
                """,
                count,
                tokens,
            )
            await conn.execute(
                """
                INSERT INTO token_transactions (user_id, transaction_type, amount, balance_after,
                    description, idempotency_key, created_at)
                SELECT g, 'grant', $2::bigint, $2::bigint, 'bench funds', 'bench-seed', now()
                FROM generate_series(1, $1::bigint) AS g
                """,
                count,
                tokens,
            )
            await conn.execute(  # each grant's lot, as ledger.grant makes it
                """
                INSERT INTO token_lots (user_id, source, amount, remaining, held, priority,
                    created_at, transaction_id)
                SELECT user_id, 'grant', amount, amount, 0, 20, created_at, id
                FROM token_transactions WHERE idempotency_key = 'bench-seed'
                """
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def vacuum(url: str) -> None:
    """Start each run from the same footing: dead rows of the last run cleaned up."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("VACUUM ANALYZE token_accounts, token_reservations, token_transactions")
    finally:
        await conn.close()


@dataclass(frozen=True)
class Rate:
    ops: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)


async def closed_loop(
    clients: int,
    seconds: float,
    op: Callable[[int, int], Awaitable[None]],
    *,
    warmup_s: float = 0.5,
    start_wall: float | None = None,
) -> Rate:
    """``clients`` tasks each run ``op(client, i)`` back to back for ``seconds``.

    Only operations that both start and finish inside the measured window count. The
    window opens ``warmup_s`` from now, or at the wall-clock time ``start_wall`` (so that
    several processes measure the same window).
    """
    if start_wall is not None:
        warmup_s = max(0.0, start_wall - time.time())
    start_at = time.perf_counter() + warmup_s
    stop_at = start_at + seconds
    latencies: list[float] = []
    done = 0

    async def client(n: int) -> None:
        nonlocal done
        i = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            await op(n, i)
            i += 1
            t1 = time.perf_counter()
            if t0 >= start_at and t1 <= stop_at:
                done += 1
                latencies.append((t1 - t0) * 1000)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return Rate(ops=done, seconds=seconds, latencies_ms=latencies)


def percentile(values: Iterable[float], pct: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else float("nan")


def ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def _command_output(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


async def machine_info() -> dict[str, Any]:
    import fastapi
    import sqlalchemy

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        pg_version = str(await conn.fetchval("SHOW server_version"))
        pg_settings = {
            name: str(await conn.fetchval(f"SHOW {name}"))
            for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections")
        }
    finally:
        await conn.close()
    meminfo = _command_output(["grep", "MemTotal", "/proc/meminfo"]).split()
    cpu = _command_output(["grep", "-m1", "model name", "/proc/cpuinfo"]).split(":", 1)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu[1].strip() if len(cpu) == 2 else platform.processor(),
        "memory_gb": round(int(meminfo[1]) / 1024 / 1024, 1) if len(meminfo) > 1 else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "pgbench": _command_output(["pgbench", "--version"]),
        "sqlalchemy": sqlalchemy.__version__,
        "asyncpg": asyncpg.__version__,
        "fastapi": fastapi.__version__,
        "uvloop": getattr(uvloop, "__version__", "?"),
        "wrk": _command_output(["wrk", "--version"]).splitlines()[0:1],
        # Relative to the repository, so a committed result names no machine's paths.
        "executable": _relative_to_repo(sys.executable),
    }


def _relative_to_repo(path: str) -> str:
    repo = Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).relative_to(repo))
    except ValueError:
        return Path(path).name


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def charge_once(db: Database, user_id: int, key: str) -> None:
    """One charge of one token as a reply makes it: reserve, then commit, each its own
    unit of work; the hold's transaction does not wait for the disk (as the chat's)."""

    async def hold(unit: Unit) -> Reservation:
        return await ledger.reserve(
            unit, user_id, 1, idempotency_key=key, ttl_s=TTL_S, description=HOLD, durable=False
        )

    held = await db.run(hold)

    async def settle(unit: Unit) -> ledger.Settled:
        return await ledger.settle(unit, held.id, DESCRIPTION)

    await db.run(settle)
