"""All SQL of the ledger. Core statements only: this is the hot path of every AI reply."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias, cast

from sqlalchemy import Row, Select, Table, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

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


async def get_account(session: AsyncSession, user_id: int) -> AnyRow | None:
    stmt = select(
        accounts.c.user_id,
        accounts.c.balance,
        accounts.c.reserved,
        accounts.c.created_at,
        accounts.c.updated_at,
    ).where(accounts.c.user_id == user_id)
    return (await session.execute(stmt)).first()


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


async def find_deduction_for_reservation(
    session: AsyncSession, reservation_id: int
) -> AnyRow | None:
    stmt = select(*TX_COLUMNS).where(
        transactions.c.reservation_id == reservation_id,
        transactions.c.transaction_type == "deduction",
    )
    return (await session.execute(stmt)).first()


def history_query(user_id: int, limit: int, before: int | None) -> Select[Any]:
    stmt = select(*TX_COLUMNS).where(transactions.c.user_id == user_id)
    if before is not None:
        stmt = stmt.where(transactions.c.id < before)
    return stmt.order_by(transactions.c.id.desc()).limit(limit)


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

    ``FOR UPDATE SKIP LOCKED`` lets several app processes sweep at once without
    waiting on each other; the ``status = 'pending'`` predicate makes each resolve once.
    """
    due = (
        select(reservations.c.id)
        .where(reservations.c.status == "pending", reservations.c.expires_at <= now)
        .order_by(reservations.c.expires_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        update(reservations)
        .where(reservations.c.id.in_(due.scalar_subquery()), reservations.c.status == "pending")
        .values(status="expired", resolved_at=now)
        .returning(reservations.c.id, reservations.c.user_id, reservations.c.amount)
    )
    return list((await session.execute(stmt)).all())


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
