"""The token ledger: every token that enters, moves or leaves an account.

Guarantees (each is tested in ``tests/ledger``; ``tokenbank ledger check`` verifies 1 and 2):

1. ``balance == SUM(amount)`` of the account's transactions, always.
2. ``reserved == SUM(amount)`` of its pending reservations, always.
3. A deduction or reservation never takes ``balance - reserved`` below zero, whatever the
   concurrency: the check and the change are ONE conditional ``UPDATE ... WHERE
   balance - reserved >= :n`` (:func:`repository.move_balance`; on PostgreSQL a hold's
   UPDATE is the first step of :data:`repository.PG_RESERVE`), never read-then-write.
4. Only a ``purchase_reversal`` can make a balance negative (tokens already spent, then
   the money was refunded); a negative balance blocks spending until topped up.
5. One PaymentIntent credits tokens at most once, enforced by a unique index on purchase
   entries, whichever path (webhook, confirm-payment, reconcile) gets there first.
6. The same idempotency key never charges twice; a reservation resolves once
   (pending → committed | released | expired, by a ``WHERE status = 'pending'`` update).
7. Transactions are never updated or deleted (database triggers refuse it); mistakes are
   fixed by new entries.
8. Tokens are integers; every amount is checked to be a whole number within limits.

Every function here runs inside the caller's transaction and never commits: the request,
CLI command or background job that calls it owns the unit of work. When a unique key
reveals a replay, the balance change made a moment earlier in the same transaction is
undone before returning the first result, so a replay writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import DriverTransaction, TakeGeneralPath, Unit
from tokenbank.ledger import repository as repo
from tokenbank.ledger.errors import (
    AccountNotFound,
    IdempotencyKeyReused,
    InsufficientTokens,
    InvalidAmount,
    ReservationExpired,
    ReservationNotFound,
    ReservationNotPending,
)
from tokenbank.types import utcnow

TransactionType = Literal[
    "purchase",
    "deduction",
    "refund",
    "grant",
    "adjustment",
    "purchase_reversal",
    "purchase_reinstatement",
]
ReservationStatus = Literal["pending", "committed", "released", "expired"]

#: Far above any real pack, far below 64-bit overflow.
MAX_TOKENS = 1_000_000_000
MAX_DESCRIPTION = 500
MAX_KEY = 255


@dataclass(frozen=True)
class Balance:
    user_id: int
    balance: int
    reserved: int
    created_at: datetime
    updated_at: datetime

    @property
    def available(self) -> int:
        return self.balance - self.reserved


@dataclass(frozen=True)
class Entry:
    id: int
    user_id: int
    transaction_type: str
    amount: int
    balance_after: int
    description: str
    stripe_payment_intent_id: str | None
    idempotency_key: str | None
    reservation_id: int | None
    actor_user_id: int | None
    created_at: datetime
    #: True when this call found the entry already written (an idempotent replay).
    replayed: bool = False


@dataclass(frozen=True)
class Reservation:
    id: int
    user_id: int
    amount: int
    status: str
    idempotency_key: str
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    replayed: bool = False


@dataclass(frozen=True)
class Page:
    items: list[Entry]
    next_before: int | None


def _entry(row: repo.AnyRow, *, replayed: bool = False) -> Entry:
    return Entry(**row._asdict(), replayed=replayed)


def _reservation(row: repo.AnyRow, *, replayed: bool = False) -> Reservation:
    return Reservation(**row._asdict(), replayed=replayed)


def _pg_reservation(row: Any) -> Reservation:
    """From :data:`repository.PG_RESERVE`'s asyncpg record (columns by name)."""
    return Reservation(
        id=row["id"],
        user_id=row["user_id"],
        amount=row["amount"],
        status=row["status"],
        idempotency_key=row["idempotency_key"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
    )


def _pg_entry(row: Any) -> Entry:
    """From :data:`repository.PG_COMMIT`'s asyncpg record (columns by name)."""
    return Entry(
        id=row["id"],
        user_id=row["user_id"],
        transaction_type=row["transaction_type"],
        amount=row["amount"],
        balance_after=row["balance_after"],
        description=row["description"],
        stripe_payment_intent_id=row["stripe_payment_intent_id"],
        idempotency_key=row["idempotency_key"],
        reservation_id=row["reservation_id"],
        actor_user_id=row["actor_user_id"],
        created_at=row["created_at"],
    )


def check_amount(tokens: object, *, allow_negative: bool = False) -> int:
    """Refuse zero, negative (unless allowed), non-integer and absurdly large amounts."""
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        raise InvalidAmount("The amount must be a whole number of tokens.")
    if tokens == 0 or (tokens < 0 and not allow_negative):
        raise InvalidAmount(
            "The amount must not be zero." if tokens == 0 else "The amount must be positive."
        )
    if abs(tokens) > MAX_TOKENS:
        raise InvalidAmount(f"The amount must be at most {MAX_TOKENS} tokens.")
    return tokens


def _check_key(key: str | None) -> None:
    if key is not None and not (0 < len(key) <= MAX_KEY):
        raise InvalidAmount(f"Idempotency keys must be 1 to {MAX_KEY} characters.")


# --- accounts -----------------------------------------------------------------------


async def open_account(session: AsyncSession, user_id: int) -> None:
    """Create the user's account if it does not exist yet (idempotent)."""
    await repo.create_account(session, user_id, utcnow())


async def balance(session: Unit, user_id: int) -> Balance:
    row = await repo.get_account(session, user_id)
    if row is None:
        raise AccountNotFound()
    return Balance(**row)


async def history(
    session: AsyncSession, user_id: int, *, limit: int = 50, before: int | None = None
) -> Page:
    """Newest first, keyset-paginated on the transaction id."""
    rows = (await session.execute(repo.history_query(user_id, limit + 1, before))).all()
    items = [_entry(r) for r in rows[:limit]]
    next_before = items[-1].id if len(rows) > limit and items else None
    return Page(items=items, next_before=next_before)


# --- posting entries -----------------------------------------------------------------


async def _post(
    session: AsyncSession,
    user_id: int,
    amount: int,
    transaction_type: TransactionType,
    description: str,
    *,
    require_available: bool,
    idempotency_key: str | None = None,
    payment_intent_id: str | None = None,
    reservation_id: int | None = None,
    actor_user_id: int | None = None,
    reserved_delta: int = 0,
) -> Entry:
    """Change the balance and write the entry that explains it, atomically.

    The UPDATE comes first so that a refused spend writes nothing at all; the INSERT
    then either records the entry or, on a unique-key conflict (a replay), the UPDATE is
    reversed in the same transaction and the first entry is returned.
    """
    _check_key(idempotency_key)
    now = utcnow()
    needed = -amount if (require_available and amount < 0) else None
    new_balance = await repo.move_balance(
        session,
        user_id,
        balance_delta=amount,
        reserved_delta=reserved_delta,
        require_available=needed,
        now=now,
    )
    if new_balance is None:
        first = await _find_first(
            session, user_id, idempotency_key, payment_intent_id, transaction_type
        )
        if first is not None:
            return _same_request(first, amount, transaction_type)
        current = await balance(session, user_id)
        raise InsufficientTokens(balance=current.available, required=-amount)

    row = await repo.insert_transaction(
        session,
        {
            "user_id": user_id,
            "transaction_type": transaction_type,
            "amount": amount,
            "balance_after": new_balance,
            "description": description[:MAX_DESCRIPTION],
            "stripe_payment_intent_id": payment_intent_id,
            "idempotency_key": idempotency_key,
            "reservation_id": reservation_id,
            "actor_user_id": actor_user_id,
            "created_at": now,
        },
    )
    if row is not None:
        return _entry(row)
    await repo.move_balance(
        session,
        user_id,
        balance_delta=-amount,
        reserved_delta=-reserved_delta,
        require_available=None,
        now=now,
    )
    first = await _find_first(
        session, user_id, idempotency_key, payment_intent_id, transaction_type
    )
    if first is None:  # pragma: no cover - a unique index fired, so the row exists
        raise RuntimeError("ledger entry conflicted but cannot be found")
    return _same_request(first, amount, transaction_type)


async def _find_first(
    session: AsyncSession,
    user_id: int,
    idempotency_key: str | None,
    payment_intent_id: str | None,
    transaction_type: str,
) -> Entry | None:
    if idempotency_key is not None:
        row = await repo.find_transaction_by_key(session, user_id, idempotency_key)
        if row is not None:
            return _entry(row, replayed=True)
    if transaction_type == "purchase" and payment_intent_id is not None:
        row = await repo.find_purchase(session, payment_intent_id)
        if row is not None:
            return _entry(row, replayed=True)
    return None


def _same_request(first: Entry, amount: int, transaction_type: str) -> Entry:
    if first.amount != amount or first.transaction_type != transaction_type:
        raise IdempotencyKeyReused()
    return first


async def grant(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    description: str,
    *,
    idempotency_key: str | None = None,
    actor_user_id: int | None = None,
) -> Entry:
    """Give tokens (sign-up bonus, promotion, admin)."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        tokens,
        "grant",
        description,
        require_available=False,
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
    )


async def adjust(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    reason: str,
    *,
    actor_user_id: int | None = None,
    idempotency_key: str | None = None,
) -> Entry:
    """An admin correction, either sign; a negative one cannot overdraw (guarantee 4)."""
    check_amount(tokens, allow_negative=True)
    return await _post(
        session,
        user_id,
        tokens,
        "adjustment",
        reason,
        require_available=True,
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
    )


async def spend(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    description: str,
    *,
    idempotency_key: str,
) -> Entry:
    """Deduct tokens at once (no hold). Refused with 402 when not enough is available."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        -tokens,
        "deduction",
        description,
        require_available=True,
        idempotency_key=idempotency_key,
    )


async def refund_tokens(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    description: str,
    *,
    idempotency_key: str,
) -> Entry:
    """Give back tokens taken by a deduction (e.g. work that turned out unusable)."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        tokens,
        "refund",
        description,
        require_available=False,
        idempotency_key=idempotency_key,
    )


# --- purchases (called by payments' sync function) -------------------------------------


async def credit_purchase(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    payment_intent_id: str,
    description: str,
) -> Entry:
    """Credit a paid PaymentIntent; a second call for the same intent is a replay."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        tokens,
        "purchase",
        description,
        require_available=False,
        payment_intent_id=payment_intent_id,
        idempotency_key=f"purchase:{payment_intent_id}",
    )


async def reverse_purchase(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    payment_intent_id: str,
    description: str,
    *,
    idempotency_key: str,
) -> Entry:
    """Take back tokens of a refunded or disputed payment. May leave the balance negative."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        -tokens,
        "purchase_reversal",
        description,
        require_available=False,
        payment_intent_id=payment_intent_id,
        idempotency_key=idempotency_key,
    )


async def reinstate_purchase(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    payment_intent_id: str,
    description: str,
    *,
    idempotency_key: str,
) -> Entry:
    """Give back tokens when a dispute is won (or a reversal is undone)."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        tokens,
        "purchase_reinstatement",
        description,
        require_available=False,
        payment_intent_id=payment_intent_id,
        idempotency_key=idempotency_key,
    )


# --- reservations --------------------------------------------------------------------


async def reserve(
    session: Unit,
    user_id: int,
    tokens: int,
    *,
    idempotency_key: str,
    ttl_s: float,
    description: str = "",
    durable: bool = True,
) -> Reservation:
    """Hold tokens before work whose cost must be paid only if it succeeds.

    A replay with the same key returns the first reservation (whatever its status now).

    In a :class:`~tokenbank.db.DriverTransaction` (PostgreSQL's hot path) only a new hold
    is handled here; a replay or a refusal raises :class:`~tokenbank.db.TakeGeneralPath`
    and the caller's :meth:`~tokenbank.db.Database.fast_or_general` rolls the hold back and
    runs this function again in a session, which answers them.

    ``durable=False`` (PostgreSQL) lets the caller's transaction commit without waiting for
    the disk, saving a WAL flush per charged reply. Use it only for a transaction whose
    only write is this hold: the hold needs no durability of its own, since it matters only
    through the later ``commit``, whose synchronous commit flushes the WAL, hold included,
    first. A crash in between loses the hold and, with it, nothing but work that was never
    charged. Any other write in the same transaction would lose its durability too.
    """
    check_amount(tokens)
    _check_key(idempotency_key)
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_s)
    description = description[:MAX_DESCRIPTION]
    if repo.is_postgresql(session):
        statement = repo.PG_RESERVE if durable else repo.PG_RESERVE_RELAXED
        row = await repo.pg_fetchrow(
            session, statement, user_id, tokens, idempotency_key, description, now, expires_at
        )
        if row["id"] is not None:
            return _pg_reservation(row)
        session = _general(session)
        held = bool(row["held"])
    else:
        session = _general(session)
        held = await _hold(session, user_id, tokens, now)
        if held:
            created = await repo.insert_reservation(
                session,
                {
                    "user_id": user_id,
                    "amount": tokens,
                    "status": "pending",
                    "idempotency_key": idempotency_key,
                    "description": description,
                    "expires_at": expires_at,
                    "created_at": now,
                },
            )
            if created is not None:
                return _reservation(created)
    return await _reserve_refused_or_replayed(
        session, user_id, tokens, idempotency_key, held=held, now=now
    )


def _general(unit: Unit) -> AsyncSession:
    """The session the general path runs in; in a driver transaction, go and get one."""
    if isinstance(unit, DriverTransaction):
        raise TakeGeneralPath()
    return unit


async def _hold(session: AsyncSession, user_id: int, tokens: int, now: datetime) -> bool:
    held = await repo.move_balance(
        session,
        user_id,
        balance_delta=0,
        reserved_delta=tokens,
        require_available=tokens,
        now=now,
    )
    return held is not None


async def _reserve_refused_or_replayed(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    idempotency_key: str,
    *,
    held: bool,
    now: datetime,
) -> Reservation:
    """Off the hot path: the hold was refused, or the key was used before (a replay)."""
    if held:  # the key exists: give back the hold taken a moment ago in this transaction
        await repo.move_balance(
            session,
            user_id,
            balance_delta=0,
            reserved_delta=-tokens,
            require_available=None,
            now=now,
        )
    first = await repo.find_reservation_by_key(session, user_id, idempotency_key)
    if first is not None:
        return _same_reservation(first, tokens)
    if held:  # pragma: no cover - a unique index fired, so the row exists
        raise RuntimeError("reservation conflicted but cannot be found")
    current = await balance(session, user_id)
    raise InsufficientTokens(balance=current.available, required=tokens)


def _same_reservation(row: repo.AnyRow, tokens: int) -> Reservation:
    found = _reservation(row, replayed=True)
    if found.amount != tokens:
        raise IdempotencyKeyReused()
    return found


async def get_reservation(session: AsyncSession, reservation_id: int) -> Reservation:
    row = await repo.find_reservation(session, reservation_id)
    if row is None:
        raise ReservationNotFound()
    return _reservation(row)


async def commit(session: Unit, reservation_id: int, description: str) -> Entry:
    """Turn a pending hold into a ``deduction``. Committing again returns the same entry.

    In a driver transaction only the first commit of a pending hold is handled here;
    anything else raises :class:`~tokenbank.db.TakeGeneralPath` (see :func:`reserve`).
    """
    entry, _reserved = await _commit(session, reservation_id, description)
    return entry


@dataclass(frozen=True)
class Settled:
    """A committed hold, and the tokens its owner has left to spend right after it."""

    entry: Entry
    available: int


async def settle(session: Unit, reservation_id: int, description: str) -> Settled:
    """:func:`commit`, and the balance left to spend after it (what a reply reports).

    On PostgreSQL the commit statement returns the account's new ``reserved`` beside the
    entry's ``balance_after``, so a charged reply needs no separate balance read.
    """
    entry, reserved = await _commit(session, reservation_id, description)
    if reserved is None:
        return Settled(entry, (await balance(session, entry.user_id)).available)
    return Settled(entry, entry.balance_after - reserved)


async def _commit(session: Unit, reservation_id: int, description: str) -> tuple[Entry, int | None]:
    """The entry, and the account's ``reserved`` right after it when the statement said."""
    now = utcnow()
    if repo.is_postgresql(session):
        row = await repo.pg_fetchrow(
            session, repo.PG_COMMIT, reservation_id, now, description[:MAX_DESCRIPTION]
        )
        if row["id"] is not None:
            return _pg_entry(row), int(row["reserved_after"])
        session = _general(session)
        if row["resolved"]:
            raise _deduction_key_taken()
        return await _commit_refused(session, reservation_id), None
    session = _general(session)
    found = await repo.resolve_reservation(
        session, reservation_id, status="committed", now=now, unexpired_only=True
    )
    if found is None:
        return await _commit_refused(session, reservation_id), None
    held = _reservation(found)
    # Tokens were held already, so the hold moves to the balance without a fresh check.
    entry = await _post(
        session,
        held.user_id,
        -held.amount,
        "deduction",
        description,
        require_available=False,
        reservation_id=held.id,
        reserved_delta=-held.amount,
        idempotency_key=f"reservation:{held.id}",
    )
    if entry.replayed:
        raise _deduction_key_taken()
    return entry, None


def _deduction_key_taken() -> IdempotencyKeyReused:
    """The hold resolved but another entry already owns its deduction's key.

    Raising makes the caller's transaction roll back, so the hold stays pending (and
    ``reserved`` keeps matching it) instead of being marked committed without a charge.
    """
    return IdempotencyKeyReused()


async def _commit_refused(session: AsyncSession, reservation_id: int) -> Entry:
    """The hold was not pending: a replay of a commit, or too late, or released."""
    current = await get_reservation(session, reservation_id)
    if current.status == "committed":
        # By the deduction's key, which the (user_id, idempotency_key) index finds at once;
        # nothing indexes reservation_id.
        done = await repo.find_transaction_by_key(
            session, current.user_id, f"reservation:{reservation_id}"
        )
        assert done is not None and done.transaction_type == "deduction"
        return _entry(done, replayed=True)
    if current.status in ("pending", "expired"):
        raise ReservationExpired("expired")
    raise ReservationNotPending(current.status)


async def release(session: AsyncSession, reservation_id: int) -> bool:
    """Give a pending hold back. True if this call released it; False if already released."""
    now = utcnow()
    await repo.lock_account(session, (await get_reservation(session, reservation_id)).user_id)
    row = await repo.resolve_reservation(
        session, reservation_id, status="released", now=now, unexpired_only=False
    )
    if row is None:
        current = await get_reservation(session, reservation_id)
        if current.status in ("released", "expired"):
            return False
        raise ReservationNotPending(current.status)
    held = _reservation(row)
    await repo.move_balance(
        session,
        held.user_id,
        balance_delta=0,
        reserved_delta=-held.amount,
        require_available=None,
        now=now,
    )
    return True


async def expire_reservations(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 500
) -> int:
    """Release holds that outlived ``expires_at``; safe to run in many processes at once."""
    when = now or utcnow()
    expired = await repo.expire_due_reservations(session, when, limit)
    per_user: dict[int, int] = {}
    for row in expired:
        user_id, amount = int(row.user_id), int(row.amount)
        per_user[user_id] = per_user.get(user_id, 0) + amount
    for user_id in sorted(per_user):  # a fixed order avoids lock-order deadlocks
        await repo.move_balance(
            session,
            user_id,
            balance_delta=0,
            reserved_delta=-per_user[user_id],
            require_available=None,
            now=when,
        )
    return len(expired)


# --- verification --------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    user_id: int
    rule: str
    detail: str


async def check(session: AsyncSession) -> list[Violation]:
    """Every broken guarantee (1, 2, 4 and the balance_after chain); empty when sound."""
    found: list[Violation] = []
    for row in await repo.find_violations(session):
        user_id, bal, reserved = int(row.user_id), int(row.balance), int(row.reserved)
        total, held, last_after = int(row.ledger_total), int(row.held_total), row.last_balance_after
        if bal != total:
            found.append(
                Violation(
                    user_id, "balance_equals_sum", f"balance {bal} but transactions sum to {total}"
                )
            )
        if reserved != held:
            found.append(
                Violation(
                    user_id,
                    "reserved_equals_pending",
                    f"reserved {reserved} but pending holds sum to {held}",
                )
            )
        if last_after is not None and last_after != bal:
            found.append(
                Violation(
                    user_id,
                    "balance_after_chain",
                    f"latest balance_after {last_after} but balance {bal}",
                )
            )
    for user_id in await repo.orphan_transaction_users(session):
        found.append(Violation(user_id, "account_exists", "transactions without an account"))
    for user_id in await repo.negative_without_reversal(session):
        found.append(
            Violation(
                user_id, "negative_only_by_reversal", "negative balance without a purchase_reversal"
            )
        )
    return found
