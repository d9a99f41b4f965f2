"""Read-side SQL for the operators' dashboard: searches, per-day totals, top spenders."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import User
from tokenbank.chat.models import ReplyRefund
from tokenbank.db import newest_first
from tokenbank.ledger.models import TokenAccount, TokenTransaction, TransactionType
from tokenbank.payments.models import Payment, WebhookEvent

transactions = cast(Table, TokenTransaction.__table__)
accounts = cast(Table, TokenAccount.__table__)
payments = cast(Table, Payment.__table__)
users = cast(Table, User.__table__)
events = cast(Table, WebhookEvent.__table__)
refunds = cast(Table, ReplyRefund.__table__)

_spent = (
    select(transactions.c.user_id, func.sum(-transactions.c.amount).label("spent"))
    .where(transactions.c.transaction_type == TransactionType.DEDUCTION)
    .group_by(transactions.c.user_id)
    .subquery()
)


def _users_with_balances() -> Select[Any]:
    return (
        select(
            users.c.id,
            users.c.username,
            users.c.email,
            users.c.is_admin,
            users.c.created_at,
            func.coalesce(accounts.c.balance, 0).label("balance"),
            func.coalesce(accounts.c.reserved, 0).label("reserved"),
            func.coalesce(_spent.c.spent, 0).label("spent"),
        )
        .select_from(users)
        .outerjoin(accounts, accounts.c.user_id == users.c.id)
        .outerjoin(_spent, _spent.c.user_id == users.c.id)
    )


async def get_user(session: AsyncSession, user_id: int) -> dict[str, Any] | None:
    """One user with balance and spend, by primary key (whatever other names exist)."""
    stmt = _users_with_balances().where(users.c.id == user_id)
    row = (await session.execute(stmt)).first()
    return dict(row._mapping) if row is not None else None


async def search_users(
    session: AsyncSession, query: str | None, limit: int
) -> list[dict[str, Any]]:
    stmt = _users_with_balances().order_by(users.c.id).limit(limit)
    if query:
        like = f"%{query.lower()}%"
        conditions: list[ColumnElement[bool]] = [
            func.lower(users.c.username).like(like),
            users.c.email.like(like),
        ]
        if query.isdigit():
            conditions.append(users.c.id == int(query))
        stmt = stmt.where(or_(*conditions))
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]


async def list_payments(
    session: AsyncSession,
    *,
    user_id: int | None,
    status: str | None,
    limit: int,
    before: int | None,
) -> list[dict[str, Any]]:
    stmt = select(payments, users.c.username).join(users, users.c.id == payments.c.user_id)
    if user_id is not None:
        stmt = stmt.where(payments.c.user_id == user_id)
    if status:
        stmt = stmt.where(payments.c.status == status)
    stmt = newest_first(stmt, payments.c.id, limit=limit, before=before)
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]


async def list_webhook_events(
    session: AsyncSession, *, status: str | None, limit: int
) -> list[dict[str, Any]]:
    stmt = (
        select(
            events.c.id,
            events.c.type,
            events.c.status,
            events.c.attempts,
            events.c.stripe_payment_intent_id,
            events.c.last_error,
            events.c.received_at,
            events.c.processed_at,
            events.c.next_attempt_at,
        )
        .order_by(events.c.received_at.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(events.c.status == status)
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]


async def daily_totals(session: AsyncSession, since: datetime) -> list[dict[str, Any]]:
    """Per UTC day: tokens sold (purchases), tokens used (deductions) and revenue (cents)."""
    day = func.date(transactions.c.created_at).label("day")
    token_stmt = (
        select(
            day,
            func.sum(
                case(
                    (
                        transactions.c.transaction_type == TransactionType.PURCHASE,
                        transactions.c.amount,
                    ),
                    else_=0,
                )
            ).label("tokens_sold"),
            func.sum(
                case(
                    (
                        transactions.c.transaction_type == TransactionType.DEDUCTION,
                        -transactions.c.amount,
                    ),
                    else_=0,
                )
            ).label("tokens_used"),
        )
        .where(transactions.c.created_at >= since)
        .group_by(day)
    )
    credited = (
        select(transactions.c.stripe_payment_intent_id, transactions.c.created_at)
        .where(transactions.c.transaction_type == TransactionType.PURCHASE)
        .subquery()
    )
    pay_day = func.date(credited.c.created_at).label("day")
    revenue_stmt = (
        select(pay_day, func.sum(payments.c.amount_cents).label("revenue_cents"))
        .select_from(credited)
        .join(payments, payments.c.stripe_payment_intent_id == credited.c.stripe_payment_intent_id)
        .where(credited.c.created_at >= since)
        .group_by(pay_day)
    )
    rows: dict[str, dict[str, Any]] = {}
    for r in (await session.execute(token_stmt)).all():
        key = str(r.day)
        rows[key] = {
            "day": key,
            "tokens_sold": int(r.tokens_sold or 0),
            "tokens_used": int(r.tokens_used or 0),
            "revenue_cents": 0,
        }
    for rev in (await session.execute(revenue_stmt)).all():
        key = str(rev.day)
        rows.setdefault(key, {"day": key, "tokens_sold": 0, "tokens_used": 0, "revenue_cents": 0})[
            "revenue_cents"
        ] = int(rev.revenue_cents or 0)
    return [rows[k] for k in sorted(rows)]


async def top_spenders(session: AsyncSession, since: datetime, limit: int) -> list[dict[str, Any]]:
    spent = func.sum(-transactions.c.amount).label("tokens_used")
    stmt = (
        select(users.c.id.label("user_id"), users.c.username, spent)
        .select_from(transactions)
        .join(users, users.c.id == transactions.c.user_id)
        .where(
            transactions.c.transaction_type == TransactionType.DEDUCTION,
            transactions.c.created_at >= since,
        )
        .group_by(users.c.id, users.c.username)
        .order_by(spent.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]


#: The columns of a ledger export, in order.
EXPORT_COLUMNS = (
    "id",
    "user_id",
    "transaction_type",
    "amount",
    "balance_after",
    "description",
    "stripe_payment_intent_id",
    "actor_user_id",
    "created_at",
)


async def count_transactions_since(session: AsyncSession, since: datetime) -> int:
    stmt = select(func.count()).select_from(transactions).where(transactions.c.created_at >= since)
    return int((await session.execute(stmt)).scalar_one())


async def transactions_page(
    session: AsyncSession, since: datetime, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """Ledger entries made since ``since`` with an id above ``after_id``, oldest first."""
    stmt = (
        select(*(transactions.c[name] for name in EXPORT_COLUMNS))
        .where(transactions.c.created_at >= since, transactions.c.id > after_id)
        .order_by(transactions.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in (await session.execute(stmt)).all()]


async def refunds_grouped(
    session: AsyncSession, since: datetime, by: str
) -> list[dict[str, Any]]:
    """Refunded replies since ``since`` grouped by ``by`` (``reason`` or ``model``): how
    many, and the tokens given back; most tokens first."""
    key = refunds.c[by]
    count = func.count().label("count")
    tokens = func.sum(refunds.c.tokens).label("tokens")
    stmt = (
        select(key, count, tokens)
        .where(refunds.c.created_at >= since)
        .group_by(key)
        .order_by(tokens.desc(), count.desc(), key)
    )
    return [
        {by: row[0], "count": int(row[1]), "tokens": int(row[2])}
        for row in (await session.execute(stmt)).all()
    ]
