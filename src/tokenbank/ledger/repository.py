"""All SQL of the ledger.

Everything here is SQLAlchemy Core, except the charge path on PostgreSQL: ``reserve`` and
``commit`` run once per AI reply, so each is ONE prepared statement (a data-modifying
CTE) sent to asyncpg inside the caller's transaction — a driver transaction on the hot
path (:meth:`tokenbank.db.Database.driver_transaction`), or a session's connection.
A charge is then two statements instead of five Core executions, and about a seventh of
the Python work; ``bench/`` measures it against pgbench running the same SQL text
(:data:`PG_RESERVE`, :data:`PG_COMMIT`). SQLite keeps the Core path (no DML in ``WITH``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeAlias, cast

import asyncpg
from sqlalchemy import Row, Select, Table, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.dml import Insert

from tokenbank.db import DriverTransaction, Query, Unit
from tokenbank.db import PgStatement as PgStatement  # the benchmarks read it from here
from tokenbank.ledger.models import TokenAccount, TokenReservation, TokenTransaction

AnyRow: TypeAlias = Row[*tuple[Any, ...]]

accounts = cast(Table, TokenAccount.__table__)
transactions = cast(Table, TokenTransaction.__table__)
reservations = cast(Table, TokenReservation.__table__)

TX_COLUMNS = (
    transactions.c.id,
    transactions.c.user_id,
    transactions.c.transaction_type,
    transactions.c.amount,
    transactions.c.balance_after,
    transactions.c.description,
    transactions.c.stripe_payment_intent_id,
    transactions.c.idempotency_key,
    transactions.c.reservation_id,
    transactions.c.actor_user_id,
    transactions.c.created_at,
)
RESERVATION_COLUMNS = (
    reservations.c.id,
    reservations.c.user_id,
    reservations.c.amount,
    reservations.c.status,
    reservations.c.idempotency_key,
    reservations.c.expires_at,
    reservations.c.created_at,
    reservations.c.resolved_at,
)


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def create_account(session: AsyncSession, user_id: int, now: datetime) -> None:
    stmt = insert_ignoring_conflicts(session, accounts).values(
        user_id=user_id, balance=0, reserved=0, created_at=now, updated_at=now
    )
    await session.execute(stmt)


ACCOUNT = Query.of(
    select(
        accounts.c.user_id,
        accounts.c.balance,
        accounts.c.reserved,
        accounts.c.created_at,
        accounts.c.updated_at,
    ).where(accounts.c.user_id == bindparam("user_id"))
)


async def get_account(unit: Unit, user_id: int) -> Mapping[str, Any] | None:
    return await ACCOUNT.first(unit, user_id=user_id)


async def move_balance(
    session: AsyncSession,
    user_id: int,
    *,
    balance_delta: int,
    reserved_delta: int,
    require_available: int | None,
    now: datetime,
) -> int | None:
    """The one conditional UPDATE every balance change goes through.

    With ``require_available=n`` the row changes only if ``balance - reserved >= n`` at
    the moment of the update: check and change are one statement, so no interleaving
    of concurrent requests can overdraw. Returns the new balance, or None if refused.
    """
    condition = accounts.c.user_id == user_id
    if require_available is not None:
        condition = and_(condition, accounts.c.balance - accounts.c.reserved >= require_available)
    stmt = (
        update(accounts)
        .where(condition)
        .values(
            balance=accounts.c.balance + balance_delta,
            reserved=accounts.c.reserved + reserved_delta,
            updated_at=now,
        )
        .returning(accounts.c.balance)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else int(row[0])


async def insert_transaction(session: AsyncSession, values: dict[str, Any]) -> AnyRow | None:
    """Insert a ledger entry; None when a unique key says it already exists."""
    stmt = insert_ignoring_conflicts(session, transactions).values(**values).returning(*TX_COLUMNS)
    return (await session.execute(stmt)).first()


async def find_transaction_by_key(
    session: AsyncSession, user_id: int, idempotency_key: str
) -> AnyRow | None:
    stmt = select(*TX_COLUMNS).where(
        transactions.c.user_id == user_id, transactions.c.idempotency_key == idempotency_key
    )
    return (await session.execute(stmt)).first()


async def find_purchase(session: AsyncSession, payment_intent_id: str) -> AnyRow | None:
    stmt = select(*TX_COLUMNS).where(
        transactions.c.stripe_payment_intent_id == payment_intent_id,
        transactions.c.transaction_type == "purchase",
    )
    return (await session.execute(stmt)).first()


def history_query(user_id: int, limit: int, before: int | None) -> Select[Any]:
    """Newest first, by walking ``ix_token_transactions_user_id_id`` backwards.

    The user is matched with ``BETWEEN u AND u``, not ``=``: with ``=`` PostgreSQL treats
    ``user_id`` as a constant, orders by ``id`` alone and, for a user who owns a large
    share of the table, may walk the primary key backwards filtering by user. That is
    quick while the user's entries are recent and reads millions of rows when they are
    old. With a range and ``ORDER BY user_id, id`` only the composite index gives the
    order, so every page reads ``limit`` index entries whatever the table holds.
    """
    stmt = select(*TX_COLUMNS).where(transactions.c.user_id.between(user_id, user_id))
    if before is not None:
        stmt = stmt.where(transactions.c.id < before)
    return stmt.order_by(transactions.c.user_id.desc(), transactions.c.id.desc()).limit(limit)


async def insert_reservation(session: AsyncSession, values: dict[str, Any]) -> AnyRow | None:
    stmt = (
        insert_ignoring_conflicts(session, reservations)
        .values(**values)
        .returning(*RESERVATION_COLUMNS)
    )
    return (await session.execute(stmt)).first()


async def find_reservation(session: AsyncSession, reservation_id: int) -> AnyRow | None:
    stmt = select(*RESERVATION_COLUMNS).where(reservations.c.id == reservation_id)
    return (await session.execute(stmt)).first()


async def find_reservation_by_key(
    session: AsyncSession, user_id: int, idempotency_key: str
) -> AnyRow | None:
    stmt = select(*RESERVATION_COLUMNS).where(
        reservations.c.user_id == user_id, reservations.c.idempotency_key == idempotency_key
    )
    return (await session.execute(stmt)).first()


async def resolve_reservation(
    session: AsyncSession,
    reservation_id: int,
    *,
    status: str,
    now: datetime,
    unexpired_only: bool,
) -> AnyRow | None:
    """Move a pending reservation to ``status``; None if it is not pending (resolves once)."""
    condition = and_(reservations.c.id == reservation_id, reservations.c.status == "pending")
    if unexpired_only:
        condition = and_(condition, reservations.c.expires_at > now)
    stmt = (
        update(reservations)
        .where(condition)
        .values(status=status, resolved_at=now)
        .returning(*RESERVATION_COLUMNS)
    )
    return (await session.execute(stmt)).first()


async def expire_due_reservations(session: AsyncSession, now: datetime, limit: int) -> list[AnyRow]:
    """Mark up to ``limit`` overdue pending reservations expired; returns what changed.

    Locks follow the ledger's one order — the account rows first, then the holds — so a
    sweeper never deadlocks with a ``reserve`` of the same user. ``SKIP LOCKED`` on the
    accounts lets several app processes sweep at once without waiting on each other (a
    busy account's holds are left to the next round); the ``status = 'pending'``
    predicate makes each hold resolve once.
    """
    due = (
        select(reservations.c.id, reservations.c.user_id)
        .where(reservations.c.status == "pending", reservations.c.expires_at <= now)
        .order_by(reservations.c.expires_at)
        .limit(limit)
    )
    candidates = (await session.execute(due)).all()
    if not candidates:
        return []
    users = sorted({int(r.user_id) for r in candidates})
    if is_postgresql(session):
        lock = (
            select(accounts.c.user_id)
            .where(accounts.c.user_id.in_(users))
            .order_by(accounts.c.user_id)
            .with_for_update(skip_locked=True)
        )
        users = [int(r[0]) for r in (await session.execute(lock)).all()]
        if not users:
            return []
    stmt = (
        update(reservations)
        .where(
            reservations.c.id.in_([int(r.id) for r in candidates]),
            reservations.c.user_id.in_(users),
            reservations.c.status == "pending",
        )
        .values(status="expired", resolved_at=now)
        .returning(reservations.c.id, reservations.c.user_id, reservations.c.amount)
    )
    return list((await session.execute(stmt)).all())


async def lock_account(session: AsyncSession, user_id: int) -> None:
    """Take the account row's lock first (a no-op on SQLite, whose writers are serial)."""
    if is_postgresql(session):
        await session.execute(
            select(accounts.c.user_id).where(accounts.c.user_id == user_id).with_for_update()
        )


async def find_violations(session: AsyncSession) -> list[AnyRow]:
    """Accounts whose cached totals disagree with the rows they summarise."""
    tx_sum = (
        select(
            transactions.c.user_id.label("user_id"),
            func.sum(transactions.c.amount).label("total"),
            func.max(transactions.c.id).label("last_id"),
        )
        .group_by(transactions.c.user_id)
        .subquery()
    )
    held = (
        select(
            reservations.c.user_id.label("user_id"), func.sum(reservations.c.amount).label("held")
        )
        .where(reservations.c.status == "pending")
        .group_by(reservations.c.user_id)
        .subquery()
    )
    last_tx = transactions.alias("last_tx")
    ledger_total = func.coalesce(tx_sum.c.total, 0)
    held_total = func.coalesce(held.c.held, 0)
    stmt = (
        select(
            accounts.c.user_id,
            accounts.c.balance,
            accounts.c.reserved,
            ledger_total.label("ledger_total"),
            held_total.label("held_total"),
            last_tx.c.balance_after.label("last_balance_after"),
        )
        .select_from(accounts)
        .outerjoin(tx_sum, tx_sum.c.user_id == accounts.c.user_id)
        .outerjoin(held, held.c.user_id == accounts.c.user_id)
        .outerjoin(last_tx, last_tx.c.id == tx_sum.c.last_id)
        .where(
            (accounts.c.balance != ledger_total)
            | (accounts.c.reserved != held_total)
            | (
                last_tx.c.balance_after.is_not(None)
                & (last_tx.c.balance_after != accounts.c.balance)
            )
        )
        .order_by(accounts.c.user_id)
    )
    return list((await session.execute(stmt)).all())


async def orphan_transaction_users(session: AsyncSession) -> list[int]:
    stmt = (
        select(transactions.c.user_id)
        .where(
            ~select(accounts.c.user_id).where(accounts.c.user_id == transactions.c.user_id).exists()
        )
        .distinct()
    )
    return [int(r[0]) for r in (await session.execute(stmt)).all()]


async def negative_without_reversal(session: AsyncSession) -> list[int]:
    """Guarantee 4: only a purchase_reversal may leave a balance below zero."""
    has_reversal = (
        select(transactions.c.id)
        .where(
            transactions.c.user_id == accounts.c.user_id,
            transactions.c.transaction_type == "purchase_reversal",
        )
        .exists()
    )
    stmt = select(accounts.c.user_id).where(accounts.c.balance < 0, ~has_reversal)
    return [int(r[0]) for r in (await session.execute(stmt)).all()]


async def count_accounts(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(accounts))).scalar_one())


# --- the charge path on PostgreSQL ------------------------------------------------------


#: Hold tokens and record the hold in one statement. The conditional UPDATE is the whole
#: check (guarantee 3); the INSERT runs only if it matched. ``held`` without a row means
#: the idempotency key exists already: the caller undoes the hold and replays the first.
PG_RESERVE = PgStatement(
    sql="""
WITH held AS (
    UPDATE token_accounts SET reserved = reserved + $2, updated_at = $5
    WHERE user_id = $1 AND balance - reserved >= $2
    RETURNING user_id
), created AS (
    INSERT INTO token_reservations
        (user_id, amount, status, idempotency_key, description, expires_at, created_at)
    SELECT user_id, $2, 'pending', $3, $4, $6, $5 FROM held
    ON CONFLICT DO NOTHING
    RETURNING id, user_id, amount, status, idempotency_key, expires_at, created_at, resolved_at
)
SELECT EXISTS (SELECT FROM held) AS held, created.*
FROM (VALUES (1)) AS one LEFT JOIN created ON true
""",
    params=("user_id", "tokens", "idempotency_key", "description", "now", "expires_at"),
)

#: Resolve a pending, unexpired hold, move it from ``reserved`` to the balance and write
#: the ``deduction`` — one statement, which also returns the account's ``reserved`` after
#: it (with the entry's ``balance_after``: what is left to spend). ``resolved`` is false
#: when the hold was not pending (resolves once, guarantee 6): the caller then works out
#: why, off the hot path.
PG_COMMIT = PgStatement(
    sql="""
WITH locked AS (
    -- Lock order: the account row first, then the hold, as everywhere in the ledger.
    SELECT a.user_id FROM token_accounts AS a
    WHERE a.user_id = (SELECT r.user_id FROM token_reservations AS r WHERE r.id = $1)
    FOR UPDATE
), resolved AS (
    UPDATE token_reservations SET status = 'committed', resolved_at = $2
    WHERE id = $1 AND status = 'pending' AND expires_at > $2
      AND EXISTS (SELECT FROM locked)
    RETURNING id, user_id, amount
), moved AS (
    -- One row at most (``id`` is the key): scalar subqueries keep this a key lookup of
    -- the account, where a join made the planner hash the whole accounts table.
    UPDATE token_accounts AS a
    SET balance = a.balance - (SELECT amount FROM resolved),
        reserved = a.reserved - (SELECT amount FROM resolved), updated_at = $2
    WHERE a.user_id = (SELECT user_id FROM resolved)
    RETURNING a.user_id, a.balance, a.reserved, $1::bigint AS reservation_id,
              (SELECT amount FROM resolved) AS amount
), posted AS (
    INSERT INTO token_transactions
        (user_id, transaction_type, amount, balance_after, description,
         idempotency_key, reservation_id, created_at)
    SELECT user_id, 'deduction', -amount, balance, $3, 'reservation:' || reservation_id,
           reservation_id, $2
    FROM moved
    ON CONFLICT DO NOTHING
    RETURNING id, user_id, transaction_type, amount, balance_after, description,
              stripe_payment_intent_id, idempotency_key, reservation_id, actor_user_id,
              created_at
)
SELECT EXISTS (SELECT FROM resolved) AS resolved, (SELECT reserved FROM moved) AS reserved_after,
       posted.*
FROM (VALUES (1)) AS one LEFT JOIN posted ON true
""",
    params=("reservation_id", "now", "description"),
)


#: :data:`PG_RESERVE` that also lets the transaction commit without waiting for the WAL
#: flush (``synchronous_commit`` off for this transaction only), in the same round trip.
PG_RESERVE_RELAXED = PgStatement(
    sql=PG_RESERVE.sql.replace(
        "SELECT EXISTS (SELECT FROM held) AS held, created.*",
        "SELECT EXISTS (SELECT FROM held) AS held, created.*,\n"
        "       set_config('synchronous_commit', 'off', true) AS synchronous_commit",
    ),
    params=PG_RESERVE.params,
)


def is_postgresql(session: Unit) -> bool:
    if isinstance(session, DriverTransaction):
        return True
    return session.get_bind().dialect.name == "postgresql"


async def pg_fetchrow(session: Unit, statement: PgStatement, *args: Any) -> Any:
    """Run ``statement`` in the caller's transaction: a driver transaction's, or a session's.

    In a session it goes to the session's own asyncpg connection.

    asyncpg prepares it once per connection and keeps it, so each call is one round trip
    with no SQL compilation and no result processing. SQLAlchemy's asyncpg adapter sends
    BEGIN lazily, before its own first statement, so when ours comes first we ask the
    adapter to begin (a private method: the rollback tests in ``tests/ledger`` fail if a
    SQLAlchemy upgrade ever changes it, and the check below refuses to write outside a
    transaction rather than silently autocommit).
    """
    if isinstance(session, DriverTransaction):
        return await session.fetchrow(statement, *args)
    # One greenlet hop for the session's connection and its pooled DBAPI connection.
    fairy = await session.run_sync(_pooled_connection)
    adapted: Any = fairy.dbapi_connection
    driver: asyncpg.Connection = fairy.driver_connection
    try:
        if adapted._transaction is None:
            await adapted._start_transaction()
        if not driver.is_in_transaction():  # never write to the ledger outside the caller's
            raise RuntimeError("the ledger's hot path found no open transaction")
        return await driver.fetchrow(statement.sql, *args)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        raise await _as_sqlalchemy_error(session, driver, statement, args, exc) from exc
    except DBAPIError:
        raise
    except Exception as exc:
        if not isinstance(exc, session.get_bind().dialect.loaded_dbapi.Error):
            raise
        # BEGIN failed inside the adapter, which already translated the error.
        raise await _as_sqlalchemy_error(session, driver, statement, args, exc) from exc


def _pooled_connection(sync_session: Session) -> PoolProxiedConnection:
    return sync_session.connection().connection


async def _as_sqlalchemy_error(
    session: AsyncSession,
    driver: asyncpg.Connection,
    statement: PgStatement,
    args: tuple[Any, ...],
    exc: Exception,
) -> DBAPIError:
    """The error SQLAlchemy would have raised, so callers and error handlers see one kind.

    A connection that died is invalidated, so it leaves the pool and the app answers 503,
    exactly as for a statement SQLAlchemy ran itself.
    """
    lost = driver.is_closed()
    if lost:
        await (await session.connection()).invalidate(exc)
    return DBAPIError(statement.sql, args, exc, connection_invalidated=lost)
