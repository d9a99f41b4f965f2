"""Units of work that cancellation cannot break.

A request is cancelled when its client goes away, at whatever ``await`` it is in. Each
test here cancels a unit of work at one such moment — while the reply to ``BEGIN`` is
pending, in the middle of a statement, while the reply to ``COMMIT`` is pending — by
cancelling the task right as the driver sends that command (the cancellation lands on
the driver's wait for the reply, exactly as a disconnect does). Then:

- the next unit on the same pool works, and sees nothing of the cancelled one unless
  the cancellation came after ``COMMIT`` was sent (then all of it or none: the ledger
  stays whole either way);
- PostgreSQL: no backend of the database sits ``idle in transaction``;
- SQLite: another connection can take the write lock at once (no lock left behind),
  for a session and for SQLite's driver unit (``Database.run``) alike.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

import tokenbank.db
from ledger.test_service import assert_ledger_clean, balance_of, ledger_reserve, new_account
from tokenbank.db import Database, SqliteTransaction, Unit
from tokenbank.errors import is_connection_error
from tokenbank.ledger import service as ledger
from tokenbank.observability import UNITS_OF_WORK

from support import wait_for

pytestmark = pytest.mark.anyio


@contextmanager
def cancel_when(
    monkeypatch: pytest.MonkeyPatch, owner: type, method: str, matches: Callable[[Any], bool]
) -> Iterator[list[str]]:
    """Cancel the calling task as ``owner.method`` starts on a matching call (once).

    The driver still sends its command; the cancellation is delivered at its first wait,
    the wait for the server's reply. Yields a list that records the call it cut.
    """
    real = getattr(owner, method)
    cut: list[str] = []

    async def cancelling(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not cut and matches((self, *args)):
            cut.append(method)
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, cancelling)
    try:
        yield cut
    finally:
        monkeypatch.setattr(owner, method, real)


def _sql_starts(prefix: str) -> Callable[[Any], bool]:
    return lambda call: len(call) > 1 and str(call[1]).lstrip().upper().startswith(prefix)


def _sql_has(fragment: str) -> Callable[[Any], bool]:
    return lambda call: len(call) > 1 and fragment in str(call[1])


def _prepared_has(fragment: str) -> Callable[[Any], bool]:
    return lambda call: fragment in call[0].get_query()


async def _cancelled(run: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(run)
    with pytest.raises(asyncio.CancelledError):
        await task


async def _idle_in_transaction(url: str) -> int:
    """Backends of ``url``'s database idle in a transaction (read from another database)."""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        found = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = $1 AND state LIKE 'idle in transaction%'",
            name,
        )
        return int(found)
    finally:
        await admin.close()


async def _assert_no_backend_idle_in_transaction(url: str) -> None:
    async def none_idle() -> bool:
        return await _idle_in_transaction(url) == 0

    await wait_for(none_idle, timeout_s=10, what="no backend idle in transaction")


def _assert_sqlite_writable_at_once(url: str) -> None:
    """Another connection takes the write lock with no wait at all."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@pytest.fixture
async def one_connection(db_url: str) -> AsyncIterator[Database]:
    """One pooled connection: a connection handed back dirty is the next one used."""
    db = Database(db_url, pool_size=1)
    yield db
    await db.dispose()


async def _after_cancel(db: Database, db_url: str, user_id: int, *, may_commit: bool) -> None:
    """What every cancellation must leave: a healthy pool and a whole ledger."""
    if db.is_sqlite:
        _assert_sqlite_writable_at_once(db_url)
    else:
        await _assert_no_backend_idle_in_transaction(db_url)
    before = await balance_of(db, user_id)
    if not may_commit:
        assert (before.balance, before.reserved) == (10, 0)
    held = await ledger_reserve(db, user_id, 1, "next")  # the next unit on this pool
    assert (held.status, held.replayed) == ("pending", False)
    after = await balance_of(db, user_id)
    assert (after.balance, after.reserved) == (before.balance, before.reserved + 1)
    await assert_ledger_clean(db)
    if not db.is_sqlite:
        await _assert_no_backend_idle_in_transaction(db_url)


async def _grant_in_session(db: Database, user_id: int) -> None:
    async with db.transaction() as session:
        await ledger.grant(session, user_id, 3, "cancelled grant")


# Where a session's unit waits for the server, and how to recognise that call.
SESSION_POINTS_PG = {
    "begin": (asyncpg.Connection, "execute", _sql_starts("BEGIN")),
    "statement": (PreparedStatement, "fetch", _prepared_has("UPDATE token_accounts")),
    "commit": (asyncpg.Connection, "execute", _sql_starts("COMMIT")),
}
SESSION_POINTS_SQLITE = {
    "begin": (aiosqlite.Cursor, "execute", _sql_starts("BEGIN IMMEDIATE")),
    "statement": (aiosqlite.Cursor, "execute", _sql_has("UPDATE token_accounts")),
    "commit": (aiosqlite.Connection, "commit", lambda _call: True),
}
# The driver unit (PostgreSQL's hot path) sends BEGIN, its statements and COMMIT itself.
DRIVER_POINTS = {
    "begin": (asyncpg.Connection, "execute", _sql_starts("BEGIN")),
    "statement": (asyncpg.Connection, "fetchrow", _sql_has("token_accounts")),
    "commit": (asyncpg.Connection, "execute", _sql_starts("COMMIT")),
}


@pytest.mark.parametrize("point", ["begin", "statement", "commit"])
async def test_a_session_unit_cancelled_at_any_await_leaves_the_pool_healthy(
    one_connection: Database, db_url: str, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    db = one_connection
    user_id = await new_account(db, 10)
    points = SESSION_POINTS_SQLITE if db.is_sqlite else SESSION_POINTS_PG
    owner, method, matches = points[point]
    with cancel_when(monkeypatch, owner, method, matches) as cut:
        await _cancelled(_grant_in_session(db, user_id))
    assert cut == [method]
    await _after_cancel_grant(db, db_url, user_id, may_commit=point == "commit")


async def _after_cancel_grant(db: Database, db_url: str, user_id: int, *, may_commit: bool) -> None:
    b = await balance_of(db, user_id)
    assert b.balance in ((10, 13) if may_commit else (10,))
    if b.balance == 13:  # the grant committed before the cancellation: count it as funds
        async with db.transaction() as session:
            await ledger.spend(session, user_id, 3, "back to ten", idempotency_key="undo")
    await _after_cancel(db, db_url, user_id, may_commit=False)


@pytest.mark.parametrize("point", ["begin", "statement", "commit"])
async def test_a_driver_unit_cancelled_at_any_await_leaves_the_pool_healthy(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    db = Database(postgres_url, pool_size=1)
    try:
        user_id = await new_account(db, 10)
        owner, method, matches = DRIVER_POINTS[point]
        with cancel_when(monkeypatch, owner, method, matches) as cut:
            await _cancelled(ledger_reserve(db, user_id, 2, "cancelled"))
        assert cut == [method]
        b = await balance_of(db, user_id)
        if b.reserved == 2:  # cancelled after COMMIT was sent, and the server committed
            assert point == "commit"
            await _release_by_key(db, user_id, "cancelled")
        await _after_cancel(db, postgres_url, user_id, may_commit=False)
    finally:
        await db.dispose()


async def test_a_unit_cancelled_between_statements_is_rolled_back_and_its_connection_kept(
    postgres_url: str,
) -> None:
    """No reply pending: the rollback is confirmed and the same backend serves next."""
    db = Database(postgres_url, pool_size=1)
    try:
        user_id = await new_account(db, 10)
        holding = asyncio.Event()
        pids: list[int] = []

        async def work(unit: Unit) -> None:
            await ledger.reserve(unit, user_id, 2, idempotency_key="between", ttl_s=60)
            pids.append(await _backend_pid(unit))
            holding.set()
            await asyncio.Event().wait()  # a client that went away, between statements

        task = asyncio.create_task(db.run(work))
        await asyncio.wait_for(holding.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def next_pid(unit: Unit) -> int:
            return await _backend_pid(unit)

        assert await db.run(next_pid) == pids[0]  # rolled back, not discarded
        await _after_cancel(db, postgres_url, user_id, may_commit=False)
    finally:
        await db.dispose()


async def test_a_statement_cancelled_while_the_server_runs_it_is_stopped_and_rolled_back(
    postgres_url: str,
) -> None:
    """Cancelled in a long statement: the server stops it; nothing stays in a transaction."""
    db = Database(postgres_url, pool_size=1)
    try:
        user_id = await new_account(db, 10)

        async def work(unit: Unit) -> None:
            await ledger.reserve(unit, user_id, 2, idempotency_key="slow", ttl_s=60)
            await _sql(unit, "SELECT pg_sleep(30)")

        task = asyncio.create_task(db.run(work))

        async def sleeping() -> bool:
            return await _active_query_count(postgres_url, "pg_sleep(30)") == 1

        await wait_for(sleeping, timeout_s=10, what="the statement to run")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def ended() -> bool:
            return await _active_query_count(postgres_url, "pg_sleep(30)") == 0

        await wait_for(ended, timeout_s=10, what="the server to stop the cancelled statement")
        await _after_cancel(db, postgres_url, user_id, may_commit=False)
    finally:
        await db.dispose()


async def test_a_connection_left_in_a_transaction_is_never_handed_out(postgres_url: str) -> None:
    """A transaction begun behind the pool's back is rolled back on return, confirmed."""
    db = Database(postgres_url, pool_size=1)
    try:
        conn = await db.engine.connect()
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        pid = driver.get_server_pid()
        await driver.execute("BEGIN")
        await driver.execute("SELECT 1")
        await conn.close()  # back to the pool with the transaction open
        assert not driver.is_in_transaction()
        async with db.transaction() as session:
            again = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again == pid  # rolled back and kept, not discarded
        await _assert_no_backend_idle_in_transaction(postgres_url)
    finally:
        await db.dispose()


async def _backend_pid(unit: Unit) -> int:
    row = await _sql(unit, "SELECT pg_backend_pid() AS pid")
    return int(row["pid"])


async def _sql(unit: Unit, sql: str) -> Any:
    from tokenbank.db import DriverTransaction, PgStatement

    assert isinstance(unit, DriverTransaction)
    return await unit.fetchrow(PgStatement(sql, ()))


async def _active_query_count(url: str, fragment: str) -> int:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        found = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND position($2 in query) > 0"
            " AND pid <> pg_backend_pid()",
            name,
            fragment,
        )
        return int(found)
    finally:
        await admin.close()


async def _release_by_key(db: Database, user_id: int, key: str) -> None:
    async with db.transaction() as session:
        found = await session.execute(
            text("SELECT id FROM token_reservations WHERE user_id = :u AND idempotency_key = :k"),
            {"u": user_id, "k": key},
        )
        await ledger.release(session, int(found.scalar_one()))


async def test_driver_units_keep_their_connections_and_reconnect_through_the_same_pool(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A driver unit takes an idle connection and hands a clean one back without a
    greenlet hop; the pool opens up to twice its size under load and keeps every
    connection it opened (none is closed on its return, so the next burst opens none),
    and a pool whose connections were all invalidated reconnects through SQLAlchemy's
    usual path. No error is logged, no connection is left out."""
    db = Database(postgres_url, pool_size=1)
    try:
        user_id = await new_account(db, 1_000)

        async def one_charge(key: str) -> None:
            async def hold(unit: Unit) -> int:
                held = await ledger.reserve(unit, user_id, 1, idempotency_key=key, ttl_s=60)
                return held.id

            rid = await db.run(hold)

            async def commit(unit: Unit) -> None:
                await ledger.commit(unit, rid, "test")

            await db.run(commit)

        connects: list[object] = []
        event.listen(db.engine.sync_engine, "connect", lambda conn, _record: connects.append(conn))
        with caplog.at_level("WARNING"):
            for round_ in range(3):
                # Four at once on a pool of one: two connections, both kept.
                await asyncio.gather(*(one_charge(f"o{round_}:{n}") for n in range(4)))
                pool = db.engine.sync_engine.pool
                assert pool.checkedout() == 0  # type: ignore[attr-defined]
                assert pool.checkedin() == 2  # type: ignore[attr-defined]
                opened = len(connects)
                await asyncio.gather(*(one_charge(f"k{round_}:{n}") for n in range(4)))
                assert len(connects) == opened  # the second burst opened no connection
                # The idle connection marked for reconnection: the next unit reconnects.
                async with db.engine.connect() as conn:
                    (await conn.get_raw_connection()).invalidate(soft=True)
                await one_charge(f"r{round_}")
        assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
        assert (await balance_of(db, user_id)).balance == 1_000 - 3 * 9
        await assert_ledger_clean(db)
    finally:
        await db.dispose()


async def test_a_transaction_begun_behind_sqlalchemys_back_discards_that_connection(
    postgres_url: str,
) -> None:
    """asyncpg's "manually started transaction" error means a broken connection: a 503
    (``database_unavailable``) for that request, and a fresh connection for the next."""
    db = Database(postgres_url, pool_size=1)
    try:
        async with db.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.execute("BEGIN")
            with pytest.raises(DBAPIError) as broken:
                await conn.execute(text("SELECT 1"))
        assert broken.value.connection_invalidated and is_connection_error(broken.value)
        user_id = await new_account(db, 10)
        await _after_cancel(db, postgres_url, user_id, may_commit=False)
    finally:
        await db.dispose()


# --- SQLite's driver unit ------------------------------------------------------------
#
# Its statements run on the connection's own thread; a cancellation reaches the task
# while a trip is in flight there (BEGIN IMMEDIATE with the unit's first step, a later
# statement, COMMIT). The thread finishes that trip; the unit's ROLLBACK runs after it.


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "tokenbank.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


@contextmanager
def cancel_on_sqlite_thread(
    monkeypatch: pytest.MonkeyPatch, prefix: str, task: list[asyncio.Future[Any]]
) -> Iterator[list[str]]:
    """Cancel ``task[0]`` while the connection's thread is about to run a statement
    starting with ``prefix`` (once); the statement runs once the task is cancelled."""
    loop = asyncio.get_running_loop()
    real = tokenbank.db._sqlite_execute
    cut: list[str] = []

    def cutting(conn: Any, sql: str, args: Any) -> Any:
        if not cut and sql.lstrip().upper().startswith(prefix):
            cut.append(sql)
            cancelled = threading.Event()

            def cancel() -> None:
                task[0].cancel()
                cancelled.set()

            loop.call_soon_threadsafe(cancel)
            assert cancelled.wait(10)
        return real(conn, sql, args)

    monkeypatch.setattr(tokenbank.db, "_sqlite_execute", cutting)
    try:
        yield cut
    finally:
        monkeypatch.setattr(tokenbank.db, "_sqlite_execute", real)


@pytest.mark.parametrize(
    ("point", "prefix"),
    [
        ("begin", "BEGIN IMMEDIATE"),
        ("statement", "INSERT INTO TOKEN_RESERVATIONS"),
        ("commit", "COMMIT"),
    ],
)
async def test_a_sqlite_driver_unit_cancelled_mid_trip_leaves_no_lock(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, point: str, prefix: str
) -> None:
    db = Database(sqlite_url, pool_size=1)
    try:
        user_id = await new_account(db, 10)
        driver = float(UNITS_OF_WORK.labels("driver")._value.get())
        task: list[asyncio.Future[Any]] = []
        with cancel_on_sqlite_thread(monkeypatch, prefix, task) as cut:
            task.append(asyncio.ensure_future(ledger_reserve(db, user_id, 2, "cancelled")))
            with pytest.raises(asyncio.CancelledError):
                await task[0]
        assert len(cut) == 1
        assert float(UNITS_OF_WORK.labels("driver")._value.get()) == driver  # not committed
        b = await balance_of(db, user_id)
        if b.reserved == 2:  # cancelled as COMMIT ran on the thread: it committed
            assert point == "commit"
            await _release_by_key(db, user_id, "cancelled")
        await _after_cancel(db, sqlite_url, user_id, may_commit=False)
    finally:
        await db.dispose()


async def test_a_sqlite_driver_unit_cancelled_between_steps_is_rolled_back(
    sqlite_url: str,
) -> None:
    """No trip in flight: the rollback runs at once and the connection serves the next."""
    db = Database(sqlite_url, pool_size=1)
    try:
        user_id = await new_account(db, 10)
        holding = asyncio.Event()

        async def work(unit: Unit) -> None:
            await ledger.reserve(unit, user_id, 2, idempotency_key="between", ttl_s=60)
            holding.set()
            await asyncio.Event().wait()  # a client that went away, between statements

        task = asyncio.create_task(db.run(work))
        await asyncio.wait_for(holding.wait(), timeout=10)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _assert_sqlite_writable_at_once(sqlite_url)  # the unit holds the write lock
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _after_cancel(db, sqlite_url, user_id, may_commit=False)
    finally:
        await db.dispose()


async def test_a_failed_sqlite_step_comes_out_as_sqlalchemys_error_and_rolls_back(
    sqlite_url: str,
) -> None:
    """A statement SQLite refuses is a ``DBAPIError`` (as from a session); the unit
    rolls back everything before it."""
    db = Database(sqlite_url, pool_size=1)
    try:
        user_id = await new_account(db, 10)

        def broken(conn: Any) -> None:
            tokenbank.db._sqlite_execute(conn, "INSERT INTO no_such_table VALUES (1)", ())

        async def work(unit: Unit) -> None:
            await ledger.reserve(unit, user_id, 2, idempotency_key="failed", ttl_s=60)
            assert isinstance(unit, SqliteTransaction)
            await unit.call(broken)

        with pytest.raises(DBAPIError, match="no such table"):
            await db.run(work)
        await _after_cancel(db, sqlite_url, user_id, may_commit=False)
    finally:
        await db.dispose()
