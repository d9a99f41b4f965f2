"""All SQL of payments: the ``payments`` rows and the webhook inbox."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    Update,
    bindparam,
    exists,
    func,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from tokenbank.auth.models import User
from tokenbank.db import DriverTransaction, Query, Unit, newest_first
from tokenbank.leases import LeasedQueue
from tokenbank.payments.models import (
    FINAL_EVENT_STATUSES,
    PENDING_EVENT_STATUSES,
    AutoTopup,
    AutoTopupAttemptState,
    AutoTopupSettings,
    EventStatus,
    Payment,
    PaymentStatus,
    ReconcileCheckpoint,
    StripeCustomer,
    WebhookEvent,
)
from tokenbank.types import utcnow

payments = cast(Table, Payment.__table__)
inbox = cast(Table, WebhookEvent.__table__)
checkpoints = cast(Table, ReconcileCheckpoint.__table__)
M = TypeVar("M")

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


async def insert_payment(
    session: AsyncSession,
    *,
    user_id: int,
    tier: str,
    tokens: int,
    amount_cents: int,
    currency: str,
    now: datetime,
    idempotency_key: str | None = None,
    payment_intent_id: str | None = None,
) -> int | None:
    """Insert a new purchase (``created``, nothing credited yet) — the one place a
    payment row is built; None when a unique key (the client's idempotency key or the
    intent id) already has a row."""
    values = {
        "user_id": user_id,
        "tier": tier,
        "tokens": tokens,
        "amount_cents": amount_cents,
        "currency": currency.lower(),
        "stripe_payment_intent_id": payment_intent_id,
        "status": PaymentStatus.CREATED,
        "tokens_credited": 0,
        "reversed_tokens": 0,
        "amount_refunded_cents": 0,
        "idempotency_key": idempotency_key,
        "version": 0,
        "created_at": now,
        "updated_at": now,
    }
    stmt = _insert_ignoring_conflicts(session, payments).values(**values).returning(payments.c.id)
    row = (await session.execute(stmt)).first()
    return None if row is None else int(row[0])


# The common case of the sync (a paid purchase credited for the first time), on any unit:
# a driver unit on the webhook worker's path (see ``sync.apply_paid``).

#: The columns a payment is seen with (``sync.PaymentView``), plus what the sync decides by.
_PAYMENT_COLUMNS = (
    payments.c.id,
    payments.c.user_id,
    payments.c.stripe_payment_intent_id.label("payment_intent_id"),
    payments.c.tier,
    payments.c.tokens,
    payments.c.amount_cents,
    payments.c.currency,
    payments.c.status,
    payments.c.tokens_credited,
    payments.c.reversed_tokens,
    payments.c.amount_refunded_cents,
    payments.c.dispute_status,
    payments.c.last_error_code,
    payments.c.stripe_mismatch,
    payments.c.created_at,
    payments.c.updated_at,
)
_topups = cast(Table, AutoTopup.__table__)

#: Our row for an intent, locked, with when its Stripe state was last read and whether an
#: auto top-up attempt paid with it (that attempt then learns its outcome: the general path).
PAYMENT_TO_CREDIT = Query.of(
    select(
        *_PAYMENT_COLUMNS,
        payments.c.stripe_read_at,
        exists()
        .where(_topups.c.payment_id == payments.c.id)
        .label("auto_topup"),
    )
    .where(payments.c.stripe_payment_intent_id == bindparam("payment_intent_id"))
    .with_for_update(of=payments)
)

#: The row once credited: its status and money as Stripe's state says, the tokens
#: credited, a new version (every change moves it).
CREDITED = Query.of(
    update(payments)
    .where(payments.c.id == bindparam("payment_id"))
    .values(
        status=bindparam("new_status"),
        amount_refunded_cents=bindparam("refunded"),
        dispute_status=bindparam("dispute"),
        stripe_mismatch=null(),
        last_error_code=bindparam("error_code"),
        tokens_credited=payments.c.tokens,
        version=payments.c.version + literal_column("1"),
        updated_at=bindparam("now", type_=payments.c.updated_at.type),
        stripe_read_at=bindparam("read_at", type_=payments.c.stripe_read_at.type),
    )
    .returning(*_PAYMENT_COLUMNS)
)


async def payment_to_credit(unit: Unit, payment_intent_id: str) -> Mapping[str, Any] | None:
    return await PAYMENT_TO_CREDIT.first(unit, payment_intent_id=payment_intent_id)


async def mark_credited(
    unit: Unit,
    payment_id: int,
    *,
    status: str,
    refunded_cents: int,
    dispute_status: str | None,
    last_error_code: str | None,
    read_at: datetime,
    now: datetime,
) -> Mapping[str, Any]:
    row = await CREDITED.first(
        unit,
        payment_id=payment_id,
        new_status=status,
        refunded=refunded_cents,
        dispute=dispute_status,
        error_code=last_error_code,
        read_at=read_at,
        now=now,
    )
    assert row is not None  # locked in this unit
    return row


async def _fresh(
    session: AsyncSession, model: type[M], *where: ColumnElement[bool], lock: bool = False
) -> M | None:
    """The one ``model`` row matching ``where``, read from the database even when the
    session holds it already; ``lock`` takes ``FOR UPDATE`` (SQLite's BEGIN IMMEDIATE
    already serialises writers, and SQLAlchemy emits nothing there)."""
    stmt = select(model).where(*where).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_payment(session: AsyncSession, payment_id: int) -> Payment | None:
    return await _fresh(session, Payment, Payment.id == payment_id)


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
    """The row for an intent (``lock``: ``FOR UPDATE``)."""
    return await _fresh(
        session, Payment, Payment.stripe_payment_intent_id == payment_intent_id, lock=lock
    )


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
    stmt = newest_first(stmt, Payment.id, limit=limit, before=before)
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


@dataclass(frozen=True)
class ClaimedEvent:
    """An inbox event a worker has claimed: only the holder of ``token`` may finish it."""

    id: str
    type: str
    payment_intent_id: str | None
    charge_id: str | None
    attempts: int
    token: str


_EVENT_VALUES = {
    name: bindparam(name, type_=inbox.c[name].type)
    for name in (
        "id",
        "type",
        "status",
        "attempts",
        "stripe_payment_intent_id",
        "stripe_charge_id",
        "payload",
        "last_error",
        "received_at",
        "processed_at",
        "next_attempt_at",
    )
}
#: The acknowledgement's one statement: the event inserted once, its id returned only
#: when this delivery inserted it.
_RECORD_EVENT = Query.of(
    postgresql.insert(inbox).values(_EVENT_VALUES).on_conflict_do_nothing().returning(inbox.c.id),
    sqlite=sqlite.insert(inbox)
    .values(_EVENT_VALUES)
    .on_conflict_do_nothing()
    .returning(inbox.c.id),
)


async def record_event(
    unit: Unit,
    *,
    event_id: str,
    event_type: str,
    payment_intent_id: str | None,
    charge_id: str | None,
    payload: dict[str, Any],
    status: EventStatus,
    now: datetime,
    error: str | None = None,
    payload_text: str | None = None,
) -> bool:
    """Insert the event once (True); later deliveries of the same id change nothing.

    One prepared statement in any unit. ``payload_text`` is the event's JSON as received
    (when the caller has it): PostgreSQL's driver stores it as it is, rather than
    serializing the parsed event again (a session or SQLite serializes ``payload``)."""
    final = status in FINAL_EVENT_STATUSES
    if isinstance(unit, DriverTransaction):
        stored: Any = payload_text if payload_text is not None else json.dumps(payload)
    else:
        stored = payload
    row = await _RECORD_EVENT.first(
        unit,
        id=event_id,
        type=event_type[:100],
        status=str(status),
        attempts=0,
        stripe_payment_intent_id=payment_intent_id,
        stripe_charge_id=charge_id,
        payload=stored,
        last_error=error[:MAX_ERROR_CHARS] if error else None,
        received_at=now,
        processed_at=now if final else None,
        next_attempt_at=None if final else now,
    )
    return row is not None


async def event_status(session: AsyncSession, event_id: str) -> str | None:
    row = (await session.execute(select(inbox.c.status).where(inbox.c.id == event_id))).first()
    return None if row is None else str(row[0])


async def event_state(session: AsyncSession, event_id: str) -> tuple[str | None, str | None]:
    """``(status, payment_intent_id)`` of an event; ``(None, None)`` when unknown."""
    stmt = select(inbox.c.status, inbox.c.stripe_payment_intent_id).where(inbox.c.id == event_id)
    row = (await session.execute(stmt)).first()
    return (None, None) if row is None else (str(row[0]), row[1])


#: The inbox as a leased queue (see :mod:`tokenbank.leases`).
INBOX = LeasedQueue(inbox, waiting=PENDING_EVENT_STATUSES, processing=EventStatus.PROCESSING)
#: What a claim returns of each event.
_CLAIMED = (
    inbox.c.id,
    inbox.c.type,
    inbox.c.stripe_payment_intent_id,
    inbox.c.stripe_charge_id,
    inbox.c.attempts,
)
#: The worker's claim of due events: one prepared statement, in any kind of unit.
CLAIM_DUE = INBOX.due_claim(_CLAIMED)


async def claim_events(
    session: AsyncSession,
    *,
    now: datetime,
    lease_until: datetime,
    token: str,
    limit: int = 1,
    event_id: str | None = None,
) -> list[ClaimedEvent]:
    """Claim up to ``limit`` due events, oldest due first (or the one ``event_id``, in any
    status but claimed by a live worker), counting an attempt on each: the shared leased
    claim (:meth:`tokenbank.leases.LeasedQueue.claim`, ``SKIP LOCKED`` on PostgreSQL)."""
    rows = await INBOX.claim(
        session,
        now=now,
        lease_until=lease_until,
        token=token,
        limit=limit,
        key=event_id,
        returning=_CLAIMED,
    )
    return [_claimed(r._mapping, token) for r in rows]


async def claim_due_events(
    unit: Unit, *, now: datetime, lease_until: datetime, token: str, limit: int
) -> list[ClaimedEvent]:
    """:func:`claim_events` of due events as one prepared statement (:data:`CLAIM_DUE`):
    the worker's claim, on the driver."""
    rows = await CLAIM_DUE.all(unit, now=now, lease_until=lease_until, token=token, limit=limit)
    return [_claimed(r, token) for r in rows]


def _claimed(row: Mapping[Any, Any], token: str) -> ClaimedEvent:
    return ClaimedEvent(
        id=str(row["id"]),
        type=str(row["type"]),
        payment_intent_id=row["stripe_payment_intent_id"],
        charge_id=row["stripe_charge_id"],
        attempts=int(row["attempts"]),
        token=token,
    )


#: End a claim (only the claim's holder may: its token), in any kind of unit — the sync's
#: driver unit marks its event there. ``processed_at`` and the intent are kept when NULL.
FINISH_EVENT = Query.of(
    update(inbox)
    .where(inbox.c.id == bindparam("event_id"), inbox.c.claim_token == bindparam("token"))
    .values(
        status=bindparam("new_status"),
        claim_token=null(),
        claimed_until=null(),
        last_error=bindparam("error"),
        next_attempt_at=bindparam("next_at", type_=inbox.c.next_attempt_at.type),
        processed_at=func.coalesce(
            bindparam("processed_at", type_=inbox.c.processed_at.type), inbox.c.processed_at
        ),
        stripe_payment_intent_id=func.coalesce(
            bindparam("pi", type_=inbox.c.stripe_payment_intent_id.type),
            inbox.c.stripe_payment_intent_id,
        ),
    )
    .returning(inbox.c.id)
)


async def finish_event(
    unit: Unit,
    event: ClaimedEvent,
    *,
    status: EventStatus,
    now: datetime,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
    payment_intent_id: str | None = None,
) -> bool:
    """End a claim with ``status``; False when the claim is no longer ours (it ran out
    and another worker took the event), in which case nothing is written."""
    row = await FINISH_EVENT.first(
        unit,
        event_id=event.id,
        token=event.token,
        new_status=status,
        error=error[:MAX_ERROR_CHARS] if error else None,
        next_at=next_attempt_at,
        processed_at=now if status in FINAL_EVENT_STATUSES else None,
        pi=payment_intent_id,
    )
    return row is not None


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest waiting event is due (None when nothing waits)."""
    stmt = select(func.min(inbox.c.next_attempt_at)).where(
        inbox.c.status.in_(PENDING_EVENT_STATUSES)
    )
    value = (await session.execute(stmt)).scalar()
    return value if isinstance(value, datetime) else None


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


# --- Stripe Customers -------------------------------------------------------------------

stripe_customers = cast(Table, StripeCustomer.__table__)


async def find_customer(session: AsyncSession, user_id: int) -> StripeCustomer | None:
    return await session.get(StripeCustomer, user_id)


async def insert_customer(
    session: AsyncSession, *, user_id: int, customer_id: str, test_clock_id: str | None
) -> StripeCustomer:
    """Record the user's Customer; a row written first by a racing request wins."""
    await session.execute(
        _insert_ignoring_conflicts(session, stripe_customers).values(
            user_id=user_id, customer_id=customer_id, test_clock_id=test_clock_id,
            created_at=utcnow(),
        )
    )
    found = await session.get(StripeCustomer, user_id, populate_existing=True)
    assert found is not None
    return found


@dataclass(frozen=True)
class Person:
    username: str
    email: str
    email_verified: bool = False


async def find_person(session: AsyncSession, user_id: int) -> Person | None:
    row = (
        await session.execute(
            select(User.username, User.email, User.email_verified_at).where(User.id == user_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return Person(row.username, row.email, row.email_verified_at is not None)


# --- auto top-up ---------------------------------------------------------------------


async def topup_settings(
    session: AsyncSession, user_id: int, *, lock: bool = False
) -> AutoTopupSettings | None:
    return await _fresh(session, AutoTopupSettings, AutoTopupSettings.user_id == user_id, lock=lock)


async def insert_topup_settings(session: AsyncSession, user_id: int, tier: str) -> None:
    """The person's row with everything off (a racing insert wins)."""
    now = utcnow()
    await session.execute(
        _insert_ignoring_conflicts(session, cast(Table, AutoTopupSettings.__table__)).values(
            user_id=user_id,
            enabled=False,
            state="off",
            threshold=0,
            tier=tier,
            monthly_max_count=0,
            monthly_max_amount=0,
            consecutive_failures=0,
            updated_at=now,
        )
    )


async def topup_in_flight(session: AsyncSession, user_id: int) -> AutoTopup | None:
    stmt = (
        select(AutoTopup)
        .where(AutoTopup.user_id == user_id, AutoTopup.state == AutoTopupAttemptState.PENDING)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt.limit(1))).scalar_one_or_none()


async def topups_since(session: AsyncSession, user_id: int, since: datetime) -> tuple[int, int]:
    """(count, amount in cents) of the top-ups since ``since`` that count against the
    monthly caps: in flight or succeeded."""
    stmt = select(func.count(), func.coalesce(func.sum(AutoTopup.amount_cents), 0)).where(
        AutoTopup.user_id == user_id,
        AutoTopup.created_at >= since,
        AutoTopup.state.in_(
            (AutoTopupAttemptState.PENDING, AutoTopupAttemptState.SUCCEEDED)
        ),
    )
    row = (await session.execute(stmt)).one()
    return int(row[0]), int(row[1])


async def topup(session: AsyncSession, attempt_id: int) -> AutoTopup | None:
    return await _fresh(session, AutoTopup, AutoTopup.id == attempt_id)


async def topup_for_payment(session: AsyncSession, payment_id: int) -> AutoTopup | None:
    return await _fresh(session, AutoTopup, AutoTopup.payment_id == payment_id, lock=True)
