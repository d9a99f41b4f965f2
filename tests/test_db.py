"""The units of work: the pool replaces what the server ended; the driver unit (the hot
path on PostgreSQL) commits, rolls back, survives cancellation and lost connections, and
answers every case (a replay, a refusal) itself, in one unit, without leaving a trace."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, literal_column, select, text
from sqlalchemy.exc import DBAPIError

from ledger.test_service import assert_ledger_clean, balance_of, ledger_reserve, new_account
from tokenbank.db import (
    Database,
    DriverTransaction,
    PgStatement,
    Query,
    Unit,
    is_broken_connection,
)
from tokenbank.errors import is_connection_error
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InsufficientTokens
from tokenbank.observability import UNITS_OF_WORK

from support import terminate_backend, wait_for

pytestmark = pytest.mark.anyio


async def test_a_connection_the_server_ended_is_replaced_without_an_error(
    postgres_url: str,
) -> None:
    """No ping per checkout (it costs three round trips), yet no request sees a dead one."""
    db = Database(postgres_url, pool_size=1)
    try:
        async with db.transaction() as session:
            first_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            raw = await (await session.connection()).get_raw_connection()
            pooled = raw.driver_connection
        assert pooled is not None
        ender = Database(postgres_url, pool_size=1)
        try:
            async with ender.transaction() as session:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        finally:
            await ender.dispose()

        async def seen_closed() -> bool:
            return bool(pooled.is_closed())

        await wait_for(seen_closed, timeout_s=10, what="the client to see the socket close")
        async with db.transaction() as session:
            second_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second_pid != first_pid
    finally:
        await db.dispose()


# --- the driver unit of work (PostgreSQL's hot path) -------------------------------------


class Abandon(Exception):
    """Raised inside a unit of work to make it roll back."""


def _units(path: str) -> float:
    return float(UNITS_OF_WORK.labels(path)._value.get())


async def _reservation_count(db: Database, user_id: int) -> int:
    async with db.transaction() as session:
        found = await session.execute(
            text("SELECT count(*) FROM token_reservations WHERE user_id = :u"), {"u": user_id}
        )
        return int(found.scalar_one())


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    """One pooled connection: a connection handed back dirty would be the next one used."""
    db = Database(postgres_url, pool_size=1)
    yield db
    await db.dispose()


async def test_a_new_hold_runs_on_the_driver_and_is_committed(pg: Database) -> None:
    user_id = await new_account(pg, 5)
    driver, session = _units("driver"), _units("session")
    held = await ledger_reserve(pg, user_id, 2, "k1")
    assert (held.amount, held.status, held.replayed) == (2, "pending", False)
    assert (_units("driver") - driver, _units("session") - session) == (1, 0)
    b = await balance_of(pg, user_id)  # read from a new session: it was committed
    assert (b.balance, b.reserved) == (5, 2)
    await assert_ledger_clean(pg)


async def test_an_error_in_a_driver_unit_leaves_nothing_of_what_it_did(pg: Database) -> None:
    user_id = await new_account(pg, 5)

    async def work(unit: Unit) -> None:
        await ledger.reserve(unit, user_id, 2, idempotency_key="k", ttl_s=60)
        raise Abandon()

    with pytest.raises(Abandon):
        await pg.run(work)
    b = await balance_of(pg, user_id)
    assert (b.balance, b.reserved) == (5, 0)
    assert await _reservation_count(pg, user_id) == 0
    await assert_ledger_clean(pg)


async def test_a_cancelled_driver_unit_rolls_back_and_its_connection_serves_the_next(
    pg: Database,
) -> None:
    user_id = await new_account(pg, 5)
    holding = asyncio.Event()

    async def work(unit: Unit) -> None:
        await ledger.reserve(unit, user_id, 2, idempotency_key="cancelled", ttl_s=60)
        holding.set()
        await asyncio.Event().wait()  # a client that went away, mid-unit

    task = asyncio.create_task(pg.run(work))
    await asyncio.wait_for(holding.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The pool has one connection: the next unit gets the same one, with no transaction
    # left open on it (else this hold would join the cancelled one's).
    held = await ledger_reserve(pg, user_id, 1, "next")
    assert not held.replayed
    b = await balance_of(pg, user_id)
    assert (b.balance, b.reserved) == (5, 1)
    assert await _reservation_count(pg, user_id) == 1
    await assert_ledger_clean(pg)


async def test_a_replay_on_the_driver_is_one_unit_that_writes_nothing(pg: Database) -> None:
    user_id = await new_account(pg, 5)
    first = await ledger_reserve(pg, user_id, 2, "same")
    driver, session = _units("driver"), _units("session")
    again = await ledger_reserve(pg, user_id, 2, "same")
    assert again.replayed and again.id == first.id
    assert (_units("driver") - driver, _units("session") - session) == (1, 0)
    assert (await balance_of(pg, user_id)).reserved == 2
    assert await _reservation_count(pg, user_id) == 1
    await assert_ledger_clean(pg)


async def test_a_refusal_on_the_driver_is_one_transaction(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await new_account(pg, 1)
    driver, session = _units("driver"), _units("session")
    begun: list[str] = []
    execute = asyncpg.Connection.execute

    async def counting(self: asyncpg.Connection, query: str, *args: object) -> str:
        if query.strip().upper().startswith("BEGIN"):
            begun.append(query)
        return await execute(self, query, *args)

    monkeypatch.setattr(asyncpg.Connection, "execute", counting)
    with pytest.raises(InsufficientTokens) as refused:
        await ledger_reserve(pg, user_id, 2, "too-much")
    monkeypatch.setattr(asyncpg.Connection, "execute", execute)
    assert len(begun) == 1
    assert (refused.value.balance, refused.value.required) == (1, 2)
    assert (_units("driver") - driver, _units("session") - session) == (0, 0)  # rolled back
    b = await balance_of(pg, user_id)
    assert (b.balance, b.reserved) == (1, 0)
    assert await _reservation_count(pg, user_id) == 0


async def test_a_second_commit_on_the_driver_returns_the_first_entry(pg: Database) -> None:
    user_id = await new_account(pg, 5)
    held = await ledger_reserve(pg, user_id, 2, "c")

    async def settle(unit: Unit) -> ledger.Entry:
        return await ledger.commit(unit, held.id, "reply")

    entry = await pg.run(settle)
    again = await pg.run(settle)
    assert (entry.amount, entry.balance_after, entry.replayed) == (-2, 3, False)
    assert again.replayed and again.id == entry.id
    b = await balance_of(pg, user_id)
    assert (b.balance, b.reserved) == (3, 0)
    await assert_ledger_clean(pg)


async def test_a_connection_lost_in_a_driver_unit_is_a_connection_error_and_is_replaced(
    postgres_url: str, pg: Database
) -> None:
    user_id = await new_account(pg, 5)

    async def work(unit: Unit) -> None:
        assert isinstance(unit, DriverTransaction)
        pid = (await unit.fetchrow(PgStatement("SELECT pg_backend_pid() AS pid", ())))["pid"]
        await terminate_backend(postgres_url, pid)
        await ledger.reserve(unit, user_id, 1, idempotency_key="lost", ttl_s=60)

    with pytest.raises(DBAPIError) as lost:
        await pg.run(work)
    assert lost.value.connection_invalidated and is_connection_error(lost.value)
    held = await ledger_reserve(pg, user_id, 1, "lost")  # a fresh connection, nothing half-done
    assert not held.replayed
    assert (await balance_of(pg, user_id)).reserved == 1
    await assert_ledger_clean(pg)


async def test_driver_units_are_postgresql_only(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(RuntimeError, match="PostgreSQL-only"):
            async with db.driver_transaction():
                pass
    finally:
        await db.dispose()


def test_a_query_is_compiled_once_with_its_parameters_in_order() -> None:
    statement = PgStatement.from_core(
        select(literal_column("1")).where(
            literal_column("a") == bindparam("x"), literal_column("b") == bindparam("y")
        )
    )
    assert "$1" in statement.sql and "$2" in statement.sql
    assert statement.params == ("x", "y")
    assert statement.args({"y": 2, "x": 1}) == [1, 2]
    with pytest.raises(KeyError):
        statement.args({"x": 1})


# --- SQLite's driver unit ------------------------------------------------------------


async def test_sqlite_units_beyond_the_pool_wait_for_a_connection_and_all_commit(
    db_url: str,
) -> None:
    """Twenty units at once on a pool of two connections: each waits its turn (writers
    queue on BEGIN IMMEDIATE and on the pool), none fails, every hold is there."""
    db = Database(db_url, pool_size=1)
    try:
        user_id = await new_account(db, 100)
        held = await asyncio.gather(
            *(ledger_reserve(db, user_id, 1, f"many-{n}") for n in range(20))
        )
        assert sorted(h.id for h in held) == sorted({h.id for h in held})
        b = await balance_of(db, user_id)
        assert (b.balance, b.reserved) == (100, 20)
        await assert_ledger_clean(db)
    finally:
        await db.dispose()


async def test_a_sqlite_unit_reads_and_writes_datetimes_as_a_session_does(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Values cross SQLite's driver unit converted as SQLAlchemy converts them: an aware
    UTC datetime in, the same aware datetime out, readable by a session."""
    target = tmp_path / "tokenbank.db"
    shutil.copy(sqlite_template, target)
    db = Database(f"sqlite:///{target}", pool_size=1)
    try:
        user_id = await new_account(db, 5)
        held = await ledger_reserve(db, user_id, 2, "dates")
        assert held.expires_at.tzinfo is not None and held.created_at.tzinfo is not None
        async with db.transaction() as session:
            again = await ledger.get_reservation(session, held.id)
        assert (again.expires_at, again.created_at) == (held.expires_at, held.created_at)
    finally:
        await db.dispose()


# --- one statement on its own (the session check) -------------------------------------

_ACCOUNT_BALANCE = Query.of(
    select(literal_column("balance"))
    .select_from(text("token_accounts"))
    .where(literal_column("user_id") == bindparam("user_id"))
)


async def test_a_read_is_one_statement_without_begin_or_commit(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the read is one round trip: no BEGIN, no COMMIT; its answer is the
    committed state, on both databases."""
    db = Database(db_url, pool_size=1)
    try:
        user_id = await new_account(db, 7)
        sent: list[str] = []
        real = asyncpg.Connection.execute

        async def recording(self: asyncpg.Connection, query: str, *args: Any) -> Any:
            sent.append(query)
            return await real(self, query, *args)

        monkeypatch.setattr(asyncpg.Connection, "execute", recording)
        row = await db.read(_ACCOUNT_BALANCE, user_id=user_id)
        assert row is not None and row["balance"] == 7
        assert await db.read(_ACCOUNT_BALANCE, user_id=user_id + 1000) is None
        assert sent == []
        await assert_ledger_clean(db)  # the pool's one connection still works
    finally:
        await db.dispose()


async def test_a_cancelled_read_leaves_the_pool_healthy(postgres_url: str) -> None:
    """Cancelled while the server runs it: the server stops it, and the one pooled
    connection serves the next unit outside any transaction."""
    db = Database(postgres_url, pool_size=1)
    slow = Query.of(select(literal_column("pg_sleep(30)").label("slept")))
    try:
        user_id = await new_account(db, 7)
        task = asyncio.create_task(db.read(slow))

        async def sleepers() -> int:
            async with db.transaction() as session:  # the pool's overflow connection
                found = await session.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                        " AND query LIKE 'SELECT pg_sleep(30)%'"
                    )
                )
                return int(found.scalar_one())

        async def sleeping() -> bool:
            return await sleepers() == 1

        async def stopped() -> bool:
            return await sleepers() == 0

        await wait_for(sleeping, timeout_s=10, what="the read to run")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for(stopped, timeout_s=10, what="the server to stop the cancelled read")
        held = await ledger_reserve(db, user_id, 2, "after-read")
        assert held.status == "pending"
        await assert_ledger_clean(db)
    finally:
        await db.dispose()


async def test_driver_units_use_the_pool_the_engine_has_after_a_dispose(
    postgres_url: str,
) -> None:
    """``engine.dispose()`` swaps in a new pool: a driver unit or read taken afterwards
    comes from that one, so the next dispose() closes it (a connection left in the old
    pool would never be closed: an unclosed asyncpg connection and socket)."""
    db = Database(postgres_url, pool_size=1)
    try:
        await db.engine.dispose()
        fresh = db.engine.sync_engine.pool
        row = await db.read(Query.of(select(literal_column("1").label("one"))))
        assert row is not None and row["one"] == 1
        await db.run(lambda unit: Query.of(select(literal_column("2").label("two"))).first(unit))
        assert fresh.checkedin() == 1  # both went back to the engine's pool of now
    finally:
        await db.dispose()
    assert fresh.checkedin() == 0


def test_asyncpg_protocol_state_errors_mean_a_broken_connection_not_a_bug() -> None:
    """asyncpg reports a connection whose reply was cut off mid-operation (a request cancelled
    from outside) as ``InternalClientError``; that connection is discarded and the request
    answered 503, like a lost one, instead of a 500."""
    cut = asyncpg.InternalClientError(
        "cannot switch to state 13; another operation (2) is in progress"
    )
    assert is_broken_connection(cut)
    try:
        raise RuntimeError("wrapped") from cut
    except RuntimeError as wrapped:
        assert is_broken_connection(wrapped)
    assert is_broken_connection(asyncpg.InterfaceError("cannot perform operation: another "
                                                       "operation is in progress"))
    assert not is_broken_connection(asyncpg.InternalClientError("unexpected codec state"))
    assert not is_broken_connection(ValueError("cannot switch to state 13"))
