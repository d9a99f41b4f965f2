"""The SQLite charge path against its limit: Python's ``sqlite3`` running the same statements.

Ours (``bench.ledger.run_sqlite``): ``ledger.reserve`` then ``ledger.settle`` through the
app's ``Database`` (``Database.run``: SQLite's driver unit), one client. The limit: the
statements one such charge sends to SQLite — captured where the driver unit executes them,
BEGIN IMMEDIATE and COMMIT included — replayed by the standard library's ``sqlite3`` in
one thread, back to back, on the same file with the same pragmas. The replay's statements
are the app's, whatever they become; only the values that name the charge change: the
idempotency key, and the hold's id (taken from the replayed INSERT, as the app takes it).
Values that depend on the state, such as ``balance_after``, are written as captured: the
cost is the same, and the file is thrown away.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

import tokenbank.db
from bench.common import Rate, charge_once
from tokenbank.db import Database

#: A hold id no other value of a charge is equal to, so that it can be told apart.
MARKER_ID = 987_654_320
KEY = "captured-charge-key"


@dataclass(frozen=True)
class Captured:
    #: ``("sql", text, params)`` or ``("commit",)`` / ``("rollback",)``, in order.
    steps: list[tuple[Any, ...]]
    #: The hold's id in the captured charge.
    reservation_id: int


async def capture(path: Path, user_id: int) -> Captured:
    """The statements of one charge as the app sends them to SQLite."""
    db = Database(f"sqlite:///{path}", pool_size=1)
    steps: list[tuple[Any, ...]] = []
    try:
        # A released hold with a distinctive id: the captured one takes the next.
        async with db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO token_reservations (id, user_id, amount, status,"
                    " idempotency_key, description, expires_at, created_at)"
                    " VALUES (:id, :user_id, 1, 'released', 'bench-marker', 'marker',"
                    " '2000-01-01 00:00:00', '2000-01-01 00:00:00')"
                ),
                {"id": MARKER_ID, "user_id": user_id},
            )
        # Every statement of a SQLite driver unit (BEGIN IMMEDIATE and COMMIT included)
        # goes through ``tokenbank.db._sqlite_execute`` on the connection's thread.
        execute = tokenbank.db._sqlite_execute

        def recording(conn: Any, sql: str, args: Any) -> Any:
            steps.append(("commit",) if sql == "COMMIT" else ("sql", sql, tuple(args)))
            return execute(conn, sql, args)

        tokenbank.db._sqlite_execute = recording
        try:
            await charge_once(db, user_id, KEY)
        finally:
            tokenbank.db._sqlite_execute = execute
    finally:
        await db.dispose()
    return Captured(steps=steps, reservation_id=MARKER_ID + 1)


def _connect(path: Path) -> sqlite3.Connection:
    """As ``tokenbank.db`` sets up every SQLite connection."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA busy_timeout=30000",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    ):
        conn.execute(pragma)
    return conn


def _values(params: Any, key: str, old_id: int, new_id: int | None) -> Any:
    def one(value: Any) -> Any:
        if value == KEY:
            return key
        if new_id is not None and isinstance(value, int) and value == old_id:
            return new_id
        if new_id is not None and isinstance(value, str) and value.endswith(f":{old_id}"):
            return value[: -len(str(old_id))] + str(new_id)
        return value

    return tuple(one(v) for v in params)


def replay(path: Path, captured: Captured, seconds: float, warmup_s: float = 0.5) -> Rate:
    """Charges per second by ``sqlite3`` running the captured statements, one thread."""
    conn = _connect(path)
    latencies: list[float] = []
    done = 0
    n = 0
    start_at = time.perf_counter() + warmup_s
    stop_at = start_at + seconds
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            key, new_id = f"raw-{n}", None
            for step in captured.steps:
                if step[0] == "commit":
                    conn.execute("COMMIT")
                elif step[0] == "rollback":
                    conn.execute("ROLLBACK")
                else:
                    params = _values(step[2], key, captured.reservation_id, new_id)
                    cursor = conn.execute(step[1], params)
                    cursor.fetchall()
                    if step[1].lstrip().upper().startswith("INSERT INTO TOKEN_RESERVATIONS"):
                        new_id = cursor.lastrowid
            n += 1
            t1 = time.perf_counter()
            if t0 >= start_at and t1 <= stop_at:
                done += 1
                latencies.append((t1 - t0) * 1000)
        charged = conn.execute(
            "SELECT count(*) FROM token_reservations"
            " WHERE status = 'committed' AND idempotency_key LIKE 'raw-%'"
        ).fetchone()[0]
    finally:
        conn.close()
    if charged != n:  # the replay must charge as the app does, or it measures nothing
        raise RuntimeError(f"the replay ran {n} charges but committed {charged} holds")
    return Rate(ops=done, seconds=seconds, latencies_ms=latencies)
