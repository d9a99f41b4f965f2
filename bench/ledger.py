"""The charge path (reserve + commit of one token) against its physical limit.

Ours: the real service functions, ``ledger.reserve`` then ``ledger.commit``, each as its
own unit of work through ``Database.run`` — the way the chat route runs them: on a
driver transaction, with the session as the general path — from N asyncio tasks in one
process (uvloop, as under uvicorn). The limit: ``pgbench -M prepared`` running the very
same SQL text, taken from the repository module, in the same two-transaction structure,
at the same client counts, against the same database and the same pool of users. The
ratio ours / pgbench is the price of Python, SQLAlchemy and the driver.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import sqlite_raw
from bench.common import (
    DESCRIPTION,
    HOLD,
    Mode,
    Rate,
    charge_once,
    closed_loop,
    libpq_url,
    log,
    median,
    ratio,
    scratch_database,
    seed_users,
    vacuum,
)
from bench.profile import calls_per_charge
from tokenbank.db import Database, PgStatement
from tokenbank.ledger import repository as repo
from tokenbank.ledger import service as ledger

CLIENTS = (1, 8, 32)
USERS = 1000
FUNDS = 10**15


def _to_pgbench(
    statement: PgStatement, names: dict[str, str], literals: dict[str, str] | None = None
) -> str:
    """``$n`` placeholders become pgbench ``:variables`` (or the SQL ``literals`` given for
    a parameter, e.g. NULL); the SQL text is otherwise as is."""
    sql = statement.sql
    literals = literals or {}
    for index in range(len(statement.params), 0, -1):  # $10 before $1
        param = statement.params[index - 1]
        sql = sql.replace(f"${index}", literals.get(param) or f":{names[param]}")
    sql = re.sub(r"--[^\n]*", "", sql)  # comments would swallow the rest of the one line
    return " ".join(sql.split())  # pgbench reads one command per line


def pgbench_script() -> str:
    """reserve in one transaction, commit in the next: the same statements a reply runs
    (the hold's transaction without waiting for the disk, as the chat takes it). The hold
    locks the account first (:data:`repo.PG_LOCK_ACCOUNT`), as ``ledger.reserve`` does:
    ``PG_RESERVE`` reads the lots unlocked, relying on that earlier lock.

    ``\\gset`` hands the new reservation's id to the commit, as the service does.
    """
    lock = _to_pgbench(repo.PG_LOCK_ACCOUNT, {"user_id": "uid", "idempotency_key": "key"})
    reserve = _to_pgbench(
        repo.PG_RESERVE_RELAXED,
        {
            "user_id": "uid",
            "tokens": "tokens",
            "idempotency_key": "key",
            "description": "hold",
            "now": "now",
            "expires_at": "expires",
        },
    )
    commit = _to_pgbench(
        repo.PG_COMMIT,
        {"reservation_id": "r_id", "now": "now", "description": "description"},
        {"tokens": "NULL"},  # the whole hold, as a reply commits it
    )
    return "\n".join(
        [
            f"\\set uid random(1, {USERS})",
            "\\set key random(1, 9000000000000000000)",
            "BEGIN;",
            f"{lock};",
            f"{reserve} \\gset r_",
            "END;",
            "BEGIN;",
            f"{commit} \\gset c_",
            "END;",
            "",
        ]
    )


def run_pgbench(url: str, clients: int, seconds: float, *, charges: int | None = None) -> float:
    """Charges per second (one script run = one charge), excluding connection set-up.

    For ``seconds``, or ``charges`` script runs per client when given.
    """
    now = datetime.now(UTC)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(pgbench_script())
        script = Path(f.name)
    try:
        args = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            *(["-t", str(charges)] if charges is not None else ["-T", str(max(1, round(seconds)))]),
            "-D",
            "tokens=1",
            "-D",
            f"hold={HOLD}",
            "-D",
            f"description={DESCRIPTION}",
            "-D",
            f"now={now.isoformat()}",
            "-D",
            f"expires={(now + timedelta(days=1)).isoformat()}",
            "-f",
            str(script),
            libpq_url(url),
        ]
        out = subprocess.run(args, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr.strip() or out.stdout.strip()}")
        found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out.stdout)
        if not found:
            raise RuntimeError(f"pgbench printed no tps:\n{out.stdout}")
        return float(found.group(1))
    finally:
        script.unlink(missing_ok=True)


async def run_ours(
    url: str,
    clients: int,
    seconds: float,
    *,
    users: int = USERS,
    start_wall: float | None = None,
) -> Rate:
    """The real service functions, each step in its own transaction, as the chat route does."""
    db = Database(url, pool_size=clients)
    run_id = uuid.uuid4().hex[:8]
    rng = random.Random()

    async def charge(client: int, i: int) -> None:
        await charge_once(db, rng.randint(1, users), f"{run_id}:{client}:{i}")

    try:
        return await closed_loop(clients, seconds, charge, start_wall=start_wall)
    finally:
        await db.dispose()


def run_ours_processes(url: str, clients: int, seconds: float, processes: int) -> float:
    """Charges/s of ``processes`` app-like processes sharing ``clients`` between them.

    App servers are stateless and run side by side; this shows the charge path scaling
    with processes, each measuring the same wall-clock window.
    """
    start_wall = time.time() + 2.5  # time to start Python, import and connect
    per = clients // processes
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.ledger", url, str(per), str(seconds), str(start_wall)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"a charge process failed with {proc.returncode}")
        total += float(json.loads(out)["per_s"])
    return total


async def run_sqlite(path: Path, clients: int, seconds: float) -> Rate:
    """The same service calls on a SQLite file (WAL, synchronous=NORMAL)."""
    from tokenbank.migrate import upgrade_async

    url = f"sqlite:///{path}"
    await upgrade_async(url)
    db = Database(url, pool_size=max(clients, 1))
    try:
        async with db.transaction() as session:
            from tokenbank.auth.models import User

            for n in range(1, 11):
                user = User(username=f"b{n}", email=f"b{n}@bench.test", password_hash="-")
                session.add(user)
                await session.flush()
                await ledger.open_account(session, user.id)
                await ledger.grant(session, user.id, 10**9, "bench funds")
        run_id = uuid.uuid4().hex[:8]
        rng = random.Random()

        async def charge(client: int, i: int) -> None:
            await charge_once(db, rng.randint(1, 10), f"{run_id}:{client}:{i}")

        return await closed_loop(clients, seconds, charge)
    finally:
        await db.dispose()


async def check_clean(url: str) -> int:
    """Violations of the ledger's guarantees after the load (must be zero)."""
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            return len(await ledger.check(session))
    finally:
        await db.dispose()


async def bench_ledger(mode: Mode) -> dict[str, Any]:
    """Interleave ours and pgbench at each client count, ``mode.runs`` rounds; medians."""
    ours: dict[int, list[float]] = {c: [] for c in CLIENTS}
    pgb: dict[int, list[float]] = {c: [] for c in CLIENTS}
    two_processes: list[float] = []
    latency_c1: list[float] = []
    async with scratch_database("ledger") as url:
        await seed_users(url, USERS, FUNDS)
        for run in range(mode.runs):
            for clients in CLIENTS:
                await vacuum(url)
                rate = await run_ours(url, clients, mode.ledger_s)
                ours[clients].append(rate.per_s)
                if clients == 1:
                    latency_c1.append(rate.p50_ms)
                await vacuum(url)
                pgb[clients].append(run_pgbench(url, clients, mode.ledger_s))
                log(
                    f"ledger run {run + 1}/{mode.runs} c={clients}: ours "
                    f"{ours[clients][-1]:.0f}/s, pgbench {pgb[clients][-1]:.0f}/s"
                )
            if mode.ledger_processes:
                await vacuum(url)
                two_processes.append(run_ours_processes(url, CLIENTS[-1], mode.ledger_s, 2))
                log(
                    f"ledger run {run + 1}/{mode.runs} c=32, 2 processes: {two_processes[-1]:.0f}/s"
                )
        violations = await check_clean(url)
        calls = await calls_per_charge(url)
    result: dict[str, Any] = {
        "clients": list(CLIENTS),
        "users": USERS,
        "seconds_per_run": mode.ledger_s,
        "violations": violations,
        "python_calls_per_charge": calls,
    }
    for c in CLIENTS:
        result[f"ours_c{c}"] = {"median": median(ours[c]), "runs": ours[c]}
        result[f"pgbench_c{c}"] = {"median": median(pgb[c]), "runs": pgb[c]}
        # Ours and pgbench measured back to back in one run: the goal is that paired ratio,
        # its median over runs. The ratio of the two medians is kept for comparison.
        per_run = [ratio(o, p) for o, p in zip(ours[c], pgb[c], strict=True)]
        result[f"ratio_c{c}_per_run"] = per_run
        result[f"ratio_c{c}"] = median(per_run)
        result[f"ratio_c{c}_of_medians"] = ratio(median(ours[c]), median(pgb[c]))
    result["ours_2proc_c32"] = {"median": median(two_processes), "runs": two_processes}
    result["ratio_2proc_c32"] = median(
        [ratio(o, p) for o, p in zip(two_processes, pgb[CLIENTS[-1]], strict=False)]
    )
    result["ours_c1_p50_ms"] = median(latency_c1)
    result["pgbench_script"] = pgbench_script()
    return result


async def bench_sqlite(mode: Mode) -> dict[str, Any]:
    """The app's SQLite path at 1 and 8 clients; at 1, against ``sqlite3`` running the
    same statements in one thread on the same file, right after (see bench.sqlite_raw)."""
    rates: dict[int, list[float]] = {1: [], 8: []}
    raw: list[float] = []
    for _ in range(mode.runs):
        for clients in rates:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "bench.db"
                rate = await run_sqlite(path, clients, mode.sqlite_s)
                rates[clients].append(rate.per_s)
                if clients == 1:
                    captured = await sqlite_raw.capture(path, user_id=1)
                    raw.append(sqlite_raw.replay(path, captured, mode.sqlite_s).per_s)
    log(f"sqlite charges/s: {rates}; sqlite3 running the same statements: {raw}")
    per_run = [ratio(o, r) for o, r in zip(rates[1], raw, strict=True)]
    return {
        **{f"c{c}": {"median": median(r), "runs": r} for c, r in rates.items()},
        "raw_c1": {"median": median(raw), "runs": raw},
        "vs_raw_c1_per_run": per_run,
        "vs_raw_c1": median(per_run),
        "statements_per_charge": len([s for s in captured.steps if s[0] == "sql"]),
    }


if __name__ == "__main__":  # one of run_ours_processes' workers: url clients seconds start
    from bench.common import run_async

    _url, _clients, _seconds, _start = sys.argv[1:5]
    _rate = run_async(run_ours(_url, int(_clients), float(_seconds), start_wall=float(_start)))
    print(json.dumps({"per_s": _rate.per_s, "ops": _rate.ops}))
