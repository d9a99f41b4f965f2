"""All SQL of payments: the ``payments`` rows and the webhook inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, Update, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from tokenbank.auth.models import User
from tokenbank.payments.models import Payment, PaymentStatus, ReconcileCheckpoint, WebhookEvent

payments = cast(Table, Payment.__table__)
inbox = cast(Table, WebhookEvent.__table__)
checkpoints = cast(Table, ReconcileCheckpoint.__table__)

#: Statuses after which a PaymentIntent never changes status again.
FINAL_STATUSES = tuple(s.value for s in PaymentStatus if s.is_final)
MAX_ERROR_CHARS = 2000


def _insert_ignoring_conflicts(session: AsyncSession, table: Table) -> Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def _changed_rows(session: AsyncSession, stmt: Update) -> int:
    result = cast(CursorResult[Any], await session.execute(stmt))
    return int(result.rowcount)


# --- payments ------------------------------------------------------------------------


async def insert_payment(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert a row; None when a unique key (idempotency key or intent id) already has one."""
    stmt = _insert_ignoring_conflicts(session, payments).values(**values).returning(payments.c.id)
    row = (await session.execute(stmt)).first()
    return None if row is None else int(row[0])


async def get_payment(session: AsyncSession, payment_id: int) -> Payment | None:
    stmt = select(Payment).where(Payment.id == payment_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def find_by_user_key(
    session: AsyncSession, user_id: int, idempotency_key: str
) -> Payment | None:
    stmt = select(Payment).where(
        Payment.user_id == user_id, Payment.idempotency_key == idempotency_key
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def find_by_intent(
    session: AsyncSession, payment_intent_id: str, *, lock: bool = False
) -> Payment | None:
    """The row for an intent; ``lock`` takes ``FOR UPDATE`` (SQLite's BEGIN IMMEDIATE
    already serialises writers, and SQLAlchemy emits nothing there)."""
    stmt = (
        select(Payment)
        .where(Payment.stripe_payment_intent_id == payment_intent_id)
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def attach_intent(
    session: AsyncSession, payment_id: int, payment_intent_id: str, status: str, now: datetime
) -> bool:
    """Record the intent Stripe made for a row; never replaces a different one."""
    stmt = (
        update(payments)
        .where(
            payments.c.id == payment_id,
            (payments.c.stripe_payment_intent_id.is_(None))
            | (payments.c.stripe_payment_intent_id == payment_intent_id),
        )
        .values(stripe_payment_intent_id=payment_intent_id, updated_at=now)
    )
    attached = await _changed_rows(session, stmt) > 0
    if attached:
        # A sync may already have written a later status; only "created" is ours to move.
        await session.execute(
            update(payments)
            .where(payments.c.id == payment_id, payments.c.status == PaymentStatus.CREATED)
            .values(status=status)
        )
    return attached


async def claim_for_intent(
    session: AsyncSession, payment_id: int, user_id: int, payment_intent_id: str, now: datetime
) -> bool:
    """Give an intent to the row named in its metadata, if that row never learnt its id."""
    stmt = (
        update(payments)
        .where(
            payments.c.id == payment_id,
            payments.c.user_id == user_id,
            payments.c.stripe_payment_intent_id.is_(None),
        )
        .values(stripe_payment_intent_id=payment_intent_id, updated_at=now)
    )
    return await _changed_rows(session, stmt) > 0


async def list_for_user(
    session: AsyncSession, user_id: int, *, limit: int, before: int | None
) -> list[Payment]:
    stmt = select(Payment).where(Payment.user_id == user_id)
    if before is not None:
        stmt = stmt.where(Payment.id < before)
    stmt = stmt.order_by(Payment.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def unsettled_intent_ids(
    session: AsyncSession, *, since: datetime, limit: int = 1000
) -> list[str]:
    """Intents of our rows made since ``since`` whose status can still change, newest first
    (older ones are abandoned checkouts; their webhooks still sync them)."""
    stmt = (
        select(payments.c.stripe_payment_intent_id)
        .where(
            payments.c.stripe_payment_intent_id.is_not(None),
            payments.c.status.not_in(FINAL_STATUSES),
            payments.c.created_at >= since,
        )
        .order_by(payments.c.id.desc())
        .limit(limit)
    )
    return [str(r[0]) for r in (await session.execute(stmt)).all()]


async def user_exists(session: AsyncSession, user_id: int) -> bool:
    stmt = select(User.id).where(User.id == user_id)
    return (await session.execute(stmt)).first() is not None


# --- the webhook inbox ---------------------------------------------------------------


async def record_event(
    session: AsyncSession,
    *,
    event_id: str,
    event_type: str,
    payment_intent_id: str | None,
    payload: dict[str, Any],
    status: str,
    now: datetime,
) -> None:
    """Insert the event id once; later deliveries of the same id change nothing here."""
    stmt = _insert_ignoring_conflicts(session, inbox).values(
        id=event_id,
        type=event_type[:100],
        status=status,
        attempts=0,
        stripe_payment_intent_id=payment_intent_id,
        payload=payload,
        received_at=now,
    )
    await session.execute(stmt)


async def event_status(session: AsyncSession, event_id: str) -> str | None:
    row = (await session.execute(select(inbox.c.status).where(inbox.c.id == event_id))).first()
    return None if row is None else str(row[0])


async def mark_event(
    session: AsyncSession,
    event_id: str,
    *,
    status: str,
    now: datetime,
    payment_intent_id: str | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "attempts": inbox.c.attempts + 1,
        "last_error": error[:MAX_ERROR_CHARS] if error else None,
    }
    if status != "failed":
        values["processed_at"] = now
    if payment_intent_id is not None:
        values["stripe_payment_intent_id"] = payment_intent_id
    await session.execute(update(inbox).where(inbox.c.id == event_id).values(**values))


# --- reconcile's checkpoints ---------------------------------------------------------


async def checkpoint(session: AsyncSession, name: str) -> int | None:
    """Unix seconds up to which reconcile has read the list ``name`` (None: never)."""
    stmt = select(checkpoints.c.created_s).where(checkpoints.c.name == name)
    row = (await session.execute(stmt)).first()
    return None if row is None else int(row[0])


async def advance_checkpoint(
    session: AsyncSession, name: str, created_s: int, now: datetime
) -> None:
    """Move the checkpoint forward to ``created_s``; never back (runs may overlap)."""
    await session.execute(
        _insert_ignoring_conflicts(session, checkpoints).values(
            name=name, created_s=created_s, updated_at=now
        )
    )
    await session.execute(
        update(checkpoints)
        .where(checkpoints.c.name == name, checkpoints.c.created_s < created_s)
        .values(created_s=created_s, updated_at=now)
    )
