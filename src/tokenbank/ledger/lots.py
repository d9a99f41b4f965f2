"""Token lots: which credit the tokens of a balance came from, and in which order they go.

Every positive credit makes a lot (``token_lots``) in the same unit as its entry: its
source, amount, ``remaining``, ``held`` (set aside by pending holds), priority and
``expires_at``. Tokens leave lots in the **spend order**: lowest priority number first,
then soonest ``expires_at`` (a lot that never expires last), then oldest (lowest id):
:func:`spend_key`. Defaults (configurable, :func:`configure`; README: ``LOT_PRIORITIES``,
``GRANT_EXPIRES_DAYS``):

========================  ========  ==========================================
source                    priority  expires
========================  ========  ==========================================
allotment                 10        as the subscription plan says
grant                     20        ``GRANT_EXPIRES_DAYS`` after (unset: never)
purchase                  50        never
adjustment                50        never
reinstatement             50        never
========================  ========  ==========================================

So a subscription's allotment is spent before a grant, and both before paid packs.

Rules (checked by :func:`tokenbank.ledger.service.check`):

- ``SUM(remaining)`` of an account's lots is its balance while that is >= 0, and 0 while
  it is negative (the negative part has no lot: a credit first pays it off, and the lot
  starts with what is left);
- a lot's ``remaining`` is its ``amount`` plus its moves (``token_lot_moves``, each a
  negative take tied to the entry that took it);
- ``held`` is the sum of the pending holds' allocations on the lot, and never exceeds
  ``remaining``;
- nothing is held or spent from a lot at or after its ``expires_at``. A hold's tokens
  were taken while the lot was live, so its commit may charge them after; what it leaves
  (release, expiry, a partial commit) is written off by the next expiry run.

The charge path (reserve, commit, release) does its lot work inside its one statement
on PostgreSQL (:mod:`tokenbank.ledger.repository`); this module is everything else,
Core statements that run in any unit of work: credits, direct spends, refunds, a hold's
commit that needs more than its allocation, the sweeper's expired holds, and the expiry
job. Every function assumes the caller's transaction has locked the account row first
(the lock order everywhere: the account, then its lots).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnClause

from tokenbank.db import Query, Unit
from tokenbank.ledger.models import (
    LotSource,
    ReservationStatus,
    TokenAccount,
    TokenLot,
    TokenLotMove,
    TokenReservation,
    TokenReservationLot,
    TokenTransaction,
    TransactionType,
)

accounts = cast(Table, TokenAccount.__table__)
lots = cast(Table, TokenLot.__table__)
moves = cast(Table, TokenLotMove.__table__)
allocations = cast(Table, TokenReservationLot.__table__)
reservations = cast(Table, TokenReservation.__table__)
transactions = cast(Table, TokenTransaction.__table__)

#: Default priority per source: lower spends first.
DEFAULT_PRIORITIES: dict[str, int] = {
    LotSource.ALLOTMENT: 10,
    LotSource.GRANT: 20,
    LotSource.PURCHASE: 50,
    LotSource.ADJUSTMENT: 50,
    LotSource.REINSTATEMENT: 50,
}


@dataclass
class LotPolicy:
    priorities: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    grant_expires_days: float | None = None

    def priority(self, source: str) -> int:
        return self.priorities.get(source, DEFAULT_PRIORITIES[source])

    def expires_at(self, source: str, now: datetime) -> datetime | None:
        """The default expiry of a new lot (an allotment's comes from its plan)."""
        if source == LotSource.GRANT and self.grant_expires_days is not None:
            return now + timedelta(days=self.grant_expires_days)
        return None


_policy = LotPolicy()


def parse_priorities(raw: str | Mapping[str, int] | None) -> dict[str, int]:
    """``LOT_PRIORITIES``: a JSON object of source -> priority (unnamed sources keep the
    default); an unknown source or a non-integer is an error."""
    given: Mapping[str, Any] = json.loads(raw) if isinstance(raw, str) else (raw or {})
    merged = dict(DEFAULT_PRIORITIES)
    for source, priority in given.items():
        if source not in DEFAULT_PRIORITIES:
            raise ValueError(f"LOT_PRIORITIES: unknown lot source {source!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"LOT_PRIORITIES: {source} must be a whole number")
        merged[source] = priority
    return merged


def configure(
    priorities: str | Mapping[str, int] | None = None, grant_expires_days: float | None = None
) -> None:
    """Set the process's lot defaults (the app does it at start-up from its settings)."""
    global _policy
    _policy = LotPolicy(parse_priorities(priorities), grant_expires_days)


def policy() -> LotPolicy:
    return _policy


_FAR = datetime.max


def spend_key(lot: Mapping[str, Any]) -> tuple[int, bool, datetime, int]:
    """The spend order: priority, then soonest expiry (never last), then oldest."""
    expires = lot["expires_at"]
    return (
        int(lot["priority"]),
        expires is None,
        _FAR if expires is None else expires.replace(tzinfo=None),
        int(lot["id"]),
    )


def is_live(lot: Mapping[str, Any], now: datetime) -> bool:
    return lot["expires_at"] is None or lot["expires_at"] > now


# --- statements (Core, for any unit) ---------------------------------------------------

_now = bindparam("now", type_=lots.c.created_at.type)
# Constants as SQL text: a statement for the driver names every parameter it takes.
_ZERO: ColumnClause[Any] = literal_column("0")
_PENDING: ColumnClause[Any] = literal_column(f"'{ReservationStatus.PENDING}'")

LOCK_ACCOUNT = Query.of(
    select(accounts.c.user_id, accounts.c.balance)
    .where(accounts.c.user_id == bindparam("user_id"))
    .with_for_update()
)
LIVE_LOTS = Query.of(
    select(lots.c.id, lots.c.remaining, lots.c.held, lots.c.priority, lots.c.expires_at)
    .where(lots.c.user_id == bindparam("user_id"), lots.c.remaining > _ZERO)
    .with_for_update()
)
#: The same, unlocked: a refusal's number, read without the account's lock (locking lots
#: without it first would break the lock order).
FREE_LOTS = Query.of(
    select(lots.c.id, lots.c.remaining, lots.c.held, lots.c.priority, lots.c.expires_at).where(
        lots.c.user_id == bindparam("user_id"), lots.c.remaining > _ZERO
    )
)
INSERT_LOT = Query.of(
    insert(lots)
    .values(
        user_id=bindparam("user_id"),
        source=bindparam("source"),
        amount=bindparam("amount"),
        remaining=bindparam("remaining"),
        held=_ZERO,
        priority=bindparam("priority"),
        expires_at=bindparam("expires_at", type_=lots.c.expires_at.type),
        created_at=_now,
        transaction_id=bindparam("transaction_id"),
    )
    .returning(lots.c.id)
)
TAKE = Query.of(
    update(lots)
    .where(lots.c.id == bindparam("lot_id"))
    .values(remaining=lots.c.remaining - bindparam("take"), held=lots.c.held - bindparam("unhold"))
    .returning(lots.c.id)
)
INSERT_MOVE = Query.of(
    insert(moves)
    .values(
        lot_id=bindparam("lot_id"),
        transaction_id=bindparam("transaction_id"),
        amount=bindparam("amount"),
        created_at=_now,
    )
    .returning(moves.c.id)
)
PENDING_ALLOCATIONS_ON_LOT = Query.of(
    select(allocations.c.reservation_id, allocations.c.amount)
    .select_from(allocations.join(reservations, reservations.c.id == allocations.c.reservation_id))
    .where(
        allocations.c.lot_id == bindparam("lot_id"),
        allocations.c.amount > _ZERO,
        reservations.c.status == _PENDING,
    )
    .order_by(allocations.c.reservation_id.desc())
)
SHRINK_ALLOCATION = Query.of(
    update(allocations)
    .where(
        allocations.c.reservation_id == bindparam("hold"),
        allocations.c.lot_id == bindparam("lot"),
    )
    .values(amount=allocations.c.amount - bindparam("by"))
    .returning(allocations.c.lot_id)
)
ALLOCATIONS_OF_HOLD = Query.of(
    select(allocations.c.lot_id, allocations.c.amount).where(
        allocations.c.reservation_id == bindparam("reservation_id"),
        allocations.c.amount > _ZERO,
    )
)
UNHOLD = Query.of(
    update(lots)
    .where(lots.c.id == bindparam("lot_id"))
    .values(held=lots.c.held - bindparam("part"))
    .returning(lots.c.id)
)
LOT_OF_CREDIT = Query.of(
    select(lots.c.id).where(lots.c.transaction_id == bindparam("transaction_id"))
)
LOT_COLUMNS = (
    lots.c.id,
    lots.c.user_id,
    lots.c.source,
    lots.c.amount,
    lots.c.remaining,
    lots.c.held,
    lots.c.priority,
    lots.c.expires_at,
    lots.c.created_at,
    lots.c.transaction_id,
    lots.c.expired_transaction_id,
)
DUE_LOTS = Query.of(
    select(lots.c.id, lots.c.user_id)
    .where(
        lots.c.expires_at <= _now,
        lots.c.remaining > _ZERO,
        lots.c.held == _ZERO,
        lots.c.expired_transaction_id.is_(None),
    )
    .order_by(lots.c.user_id, lots.c.id)
    .limit(bindparam("limit"))
)
LOT_FOR_UPDATE = Query.of(
    select(*LOT_COLUMNS).where(lots.c.id == bindparam("lot_id")).with_for_update()
)
MARK_EXPIRED = Query.of(
    update(lots)
    .where(lots.c.id == bindparam("lot_id"))
    .values(expired_transaction_id=bindparam("entry_id"))
    .returning(lots.c.id)
)


# --- credits ---------------------------------------------------------------------------


async def add_lot(
    unit: Unit,
    *,
    user_id: int,
    source: str,
    amount: int,
    transaction_id: int,
    balance_after: int,
    now: datetime,
    expires_at: datetime | None = None,
    priority: int | None = None,
) -> int:
    """The lot of a positive credit that left the balance at ``balance_after``. A credit
    to a negative balance pays that off first: the lot starts with what is left (a move
    of the credit's own entry records the part that paid the debt)."""
    before = balance_after - amount
    debt = min(-before, amount) if before < 0 else 0
    row = await INSERT_LOT.first(
        unit,
        user_id=user_id,
        source=str(source),
        amount=amount,
        remaining=amount - debt,
        priority=_policy.priority(source) if priority is None else priority,
        expires_at=expires_at,
        now=now,
        transaction_id=transaction_id,
    )
    assert row is not None
    lot_id = int(row["id"])
    if debt:
        await INSERT_MOVE.first(
            unit, lot_id=lot_id, transaction_id=transaction_id, amount=-debt, now=now
        )
    return lot_id


async def lot_of_credit(unit: Unit, transaction_id: int) -> int | None:
    row = await LOT_OF_CREDIT.first(unit, transaction_id=transaction_id)
    return None if row is None else int(row["id"])


# --- takes -----------------------------------------------------------------------------


@dataclass
class Plan:
    """What a take will do: per lot, tokens taken and how many of them were held."""

    takes: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(t for t, _ in self.takes.values())

    def add(self, lot_id: int, take: int, unhold: int = 0) -> None:
        t, u = self.takes.get(lot_id, (0, 0))
        self.takes[lot_id] = (t + take, u + unhold)


async def plan_spend(
    unit: Unit, user_id: int, tokens: int, now: datetime, *, lock: bool = True
) -> Plan:
    """Free (unheld) tokens of live lots, in the spend order, up to ``tokens``: what a
    direct spend takes. ``plan.total < tokens`` means the lots cannot pay it. ``lock``
    (the account is locked already): lock the lots too; otherwise only read them."""
    rows = await (LIVE_LOTS if lock else FREE_LOTS).all(unit, user_id=user_id)
    plan = Plan()
    need = tokens
    for lot in sorted((r for r in rows if is_live(r, now)), key=spend_key):
        free = int(lot["remaining"]) - int(lot["held"])
        if need <= 0:
            break
        if free > 0:
            part = min(free, need)
            plan.add(int(lot["id"]), part)
            need -= part
    return plan


async def plan_take_back(
    unit: Unit, user_id: int, tokens: int, now: datetime, *, first_lot_id: int | None = None
) -> Plan:
    """What a refund (or a commit beyond its allocation) takes: ``first_lot_id`` first
    (its free tokens, then its held ones), then the other lots' free tokens in the spend
    order (live lots before expired ones), then their held tokens. Fewer than ``tokens``
    when the lots run out (the rest is the negative balance)."""
    rows = await LIVE_LOTS.all(unit, user_id=user_id)
    own = [r for r in rows if int(r["id"]) == first_lot_id]
    others = sorted(
        (r for r in rows if int(r["id"]) != first_lot_id),
        key=lambda r: (not is_live(r, now), *spend_key(r)),
    )
    plan = Plan()
    need = tokens
    left = {int(r["id"]): (int(r["remaining"]), int(r["held"])) for r in rows}
    for group in (own, others):
        for held_too in (False, True):
            for lot in group:
                if need <= 0:
                    return plan
                lot_id = int(lot["id"])
                remaining, held = left[lot_id]
                free = remaining - held
                if not held_too and free > 0:
                    part = min(free, need)
                    plan.add(lot_id, part)
                    left[lot_id] = (remaining - part, held)
                    need -= part
                elif held_too and held > 0:
                    part = min(held, need)
                    plan.add(lot_id, part, part)
                    left[lot_id] = (remaining - part, held - part)
                    need -= part
    return plan


async def apply(unit: Unit, plan: Plan, transaction_id: int, now: datetime) -> None:
    """Take ``plan`` from its lots for the entry ``transaction_id``: lower ``remaining``
    (and ``held`` for held tokens, shrinking those holds' allocations, newest hold
    first), and record each take as a move."""
    for lot_id in sorted(plan.takes):
        take, unhold = plan.takes[lot_id]
        if unhold:
            await _shrink_allocations(unit, lot_id, unhold)
        await TAKE.first(unit, lot_id=lot_id, take=take, unhold=unhold)
        await INSERT_MOVE.first(
            unit, lot_id=lot_id, transaction_id=transaction_id, amount=-take, now=now
        )


async def _shrink_allocations(unit: Unit, lot_id: int, tokens: int) -> None:
    need = tokens
    for row in await PENDING_ALLOCATIONS_ON_LOT.all(unit, lot_id=lot_id):
        if need <= 0:
            break
        part = min(int(row["amount"]), need)
        await SHRINK_ALLOCATION.first(unit, hold=int(row["reservation_id"]), lot=lot_id, by=part)
        need -= part
    assert need <= 0, "a lot's held tokens are its pending holds' allocations"


async def take_back(
    unit: Unit,
    user_id: int,
    tokens: int,
    transaction_id: int,
    now: datetime,
    *,
    first_lot_id: int | None = None,
) -> int:
    """:func:`plan_take_back`, applied; returns the tokens taken from lots."""
    plan = await plan_take_back(unit, user_id, tokens, now, first_lot_id=first_lot_id)
    await apply(unit, plan, transaction_id, now)
    return plan.total


async def expire(unit: Unit, lot_id: int, tokens: int, transaction_id: int, now: datetime) -> None:
    """Write off what is left of a lot (``tokens``, all of it, none held) for its
    ``expiry`` entry."""
    await TAKE.first(unit, lot_id=lot_id, take=tokens, unhold=0)
    await INSERT_MOVE.first(
        unit, lot_id=lot_id, transaction_id=transaction_id, amount=-tokens, now=now
    )
    await MARK_EXPIRED.first(unit, lot_id=lot_id, entry_id=transaction_id)


async def unhold(unit: Unit, reservation_ids: Iterable[int]) -> None:
    """Give the allocations of holds that were released or expired back to their lots."""
    for reservation_id in reservation_ids:
        for row in await ALLOCATIONS_OF_HOLD.all(unit, reservation_id=reservation_id):
            await UNHOLD.first(unit, lot_id=int(row["lot_id"]), part=int(row["amount"]))


# --- reading ---------------------------------------------------------------------------


def list_query(user_id: int, *, active: bool, now: datetime, limit: int) -> Any:
    """An account's lots, newest first (``active``: with tokens left and not expired)."""
    stmt = select(*LOT_COLUMNS).where(lots.c.user_id == user_id)
    if active:
        stmt = stmt.where(
            lots.c.remaining > 0, (lots.c.expires_at.is_(None)) | (lots.c.expires_at > now)
        )
    return stmt.order_by(lots.c.id.desc()).limit(limit)


# --- the charge path's arithmetic (SQLite runs it in Python; PostgreSQL in its SQL) ------


def allocate(
    rows: Iterable[Mapping[str, Any]], tokens: int, now: datetime
) -> list[tuple[int, int]]:
    """A new hold's allocation: free tokens of live lots in the spend order, up to
    ``tokens`` (fewer when the lots cannot cover it)."""
    parts: list[tuple[int, int]] = []
    need = tokens
    for lot in sorted((r for r in rows if is_live(r, now)), key=spend_key):
        free = int(lot["remaining"]) - int(lot["held"])
        if need <= 0:
            break
        if free > 0:
            part = min(free, need)
            parts.append((int(lot["id"]), part))
            need -= part
    return parts


def commit_takes(
    allocation: Sequence[Mapping[str, Any]], charged: int
) -> list[tuple[int, int, int]]:
    """(lot, part, take) per allocated lot: a commit charges ``charged`` from its
    allocation in the spend order; every part leaves ``held``."""
    out: list[tuple[int, int, int]] = []
    need = charged
    for row in sorted(allocation, key=spend_key):
        part = int(row["part"])
        take = max(min(part, need), 0)
        out.append((int(row["id"]), part, take))
        need -= take
    return out


# --- verification (ledger.service.check) ------------------------------------------------


async def balance_mismatches(session: AsyncSession) -> list[tuple[int, int, int]]:
    """(user, balance, lots' remaining) where the lots do not hold the balance (or, for a
    negative balance, are not empty)."""
    total = (
        select(lots.c.user_id, func.sum(lots.c.remaining).label("remaining"))
        .group_by(lots.c.user_id)
        .subquery()
    )
    remaining = func.coalesce(total.c.remaining, 0)
    expected = case((accounts.c.balance > 0, accounts.c.balance), else_=0)
    stmt = (
        select(accounts.c.user_id, accounts.c.balance, remaining.label("remaining"))
        .select_from(accounts.outerjoin(total, total.c.user_id == accounts.c.user_id))
        .where(remaining != expected)
        .order_by(accounts.c.user_id)
    )
    return [(int(r[0]), int(r[1]), int(r[2])) for r in (await session.execute(stmt)).all()]


async def remaining_mismatches(session: AsyncSession) -> list[tuple[int, int, int, int]]:
    """(user, lot, remaining, amount - taken) where a lot's remaining is not its amount
    less what its moves took."""
    taken = (
        select(moves.c.lot_id, func.sum(moves.c.amount).label("moved"))
        .group_by(moves.c.lot_id)
        .subquery()
    )
    expected = lots.c.amount + func.coalesce(taken.c.moved, 0)
    stmt = (
        select(lots.c.user_id, lots.c.id, lots.c.remaining, expected.label("expected"))
        .select_from(lots.outerjoin(taken, taken.c.lot_id == lots.c.id))
        .where(lots.c.remaining != expected)
        .order_by(lots.c.id)
    )
    return [tuple(int(v) for v in r) for r in (await session.execute(stmt)).all()]  # type: ignore[misc]


async def held_mismatches(session: AsyncSession) -> list[tuple[int, int, int, int]]:
    """(user, lot, held, pending allocations) where a lot's ``held`` is not what its
    pending holds were allocated."""
    pending = (
        select(allocations.c.lot_id, func.sum(allocations.c.amount).label("allocated"))
        .select_from(
            allocations.join(reservations, reservations.c.id == allocations.c.reservation_id)
        )
        .where(reservations.c.status == ReservationStatus.PENDING)
        .group_by(allocations.c.lot_id)
        .subquery()
    )
    allocated = func.coalesce(pending.c.allocated, 0)
    stmt = (
        select(lots.c.user_id, lots.c.id, lots.c.held, allocated.label("allocated"))
        .select_from(lots.outerjoin(pending, pending.c.lot_id == lots.c.id))
        .where(lots.c.held != allocated)
        .order_by(lots.c.id)
    )
    return [tuple(int(v) for v in r) for r in (await session.execute(stmt)).all()]  # type: ignore[misc]


async def spent_after_expiry(session: AsyncSession) -> list[tuple[int, int, int]]:
    """(user, lot, entry) where a spend took a lot's tokens at or after its expiry: a
    direct spend after it, or a commit of tokens its hold set aside after it. (A commit
    charging beyond its allocation, after a refund took part of it, takes what is left
    anywhere, and is not counted.)"""
    allocated = (
        select(allocations.c.lot_id)
        .where(
            allocations.c.reservation_id == transactions.c.reservation_id,
            allocations.c.lot_id == moves.c.lot_id,
        )
        .exists()
    )
    claimed = case(
        (transactions.c.reservation_id.is_(None), transactions.c.created_at),
        else_=reservations.c.created_at,
    )
    stmt = (
        select(lots.c.user_id, lots.c.id, transactions.c.id)
        .select_from(
            moves.join(lots, lots.c.id == moves.c.lot_id)
            .join(transactions, transactions.c.id == moves.c.transaction_id)
            .outerjoin(reservations, reservations.c.id == transactions.c.reservation_id)
        )
        .where(
            transactions.c.transaction_type == TransactionType.DEDUCTION,
            lots.c.expires_at.is_not(None),
            claimed >= lots.c.expires_at,
            transactions.c.reservation_id.is_(None) | allocated,
        )
        .order_by(lots.c.id)
    )
    return [tuple(int(v) for v in r) for r in (await session.execute(stmt)).all()]  # type: ignore[misc]
