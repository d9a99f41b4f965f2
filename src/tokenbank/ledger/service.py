"""The token ledger: every token that enters, moves or leaves an account.

Guarantees (each is tested in ``tests/ledger``; :func:`check` lists those it verifies on a
live database):

1. ``balance == SUM(amount)`` of the account's transactions, always.
2. ``reserved == SUM(amount)`` of its pending reservations, always.
3. A deduction or reservation never takes ``balance - reserved`` below zero, whatever the
   concurrency: the check and the change are ONE conditional ``UPDATE ... WHERE
   balance - reserved >= :n`` (:func:`repository.move_balance`; on PostgreSQL a hold's
   UPDATE is a step of :data:`repository.PG_RESERVE`, after the key look-up), never
   read-then-write.
4. Only a reversal (``purchase_reversal``, ``allotment_reversal``) can make a balance
   negative (tokens already spent, then the money was refunded); a negative balance
   blocks spending until topped up.
5. One PaymentIntent credits tokens at most once, enforced by a unique index on purchase
   entries, whichever path (webhook, confirm-payment, reconcile) gets there first.
6. The same idempotency key never charges twice; a reservation resolves once
   (pending → committed | released | expired, by a ``WHERE status = 'pending'`` update;
   :class:`~tokenbank.ledger.models.ReservationStatus`).
7. Transactions are never updated or deleted (database triggers refuse it); mistakes are
   fixed by new entries.
8. Tokens are integers; every amount is checked to be a whole number within limits.
9. Every positive credit makes a lot in the same unit (:mod:`tokenbank.ledger.lots`); the
   sum of an account's lots' ``remaining`` is its balance while that is >= 0 (0 while it
   is negative: the negative part has no lot).
10. A lot's ``remaining`` is its ``amount`` less what was taken from it (its moves); its
    ``held`` is what pending holds were allocated from it, never more than ``remaining``.
    Spends, holds and commits take from lots in the spend order (priority, soonest
    expiry, oldest); a commit or release resolves exactly its hold's allocation.
11. Nothing is held or spent from a lot at or after its ``expires_at``; the expiry job
    writes what is left of it off as ONE ``expiry`` entry.

Every function here runs inside the caller's transaction and never commits: the request,
CLI command or background job that calls it owns the unit of work. When a unique key
reveals a replay, the balance change made a moment earlier in the same transaction is
undone before returning the first result, so a replay writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import Unit, note_spent
from tokenbank.ledger import keys, lots
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
from tokenbank.ledger.models import (
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_TOKENS,
    Balance,
    Entry,
    Lot,
    LotSource,
    Reservation,
    ReservationStatus,
    TransactionType,
)
from tokenbank.types import utcnow


@dataclass(frozen=True)
class Page:
    items: list[Entry]
    next_before: int | None


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
    items = [Entry.of(r._mapping) for r in rows[:limit]]
    next_before = items[-1].id if len(rows) > limit and items else None
    return Page(items=items, next_before=next_before)


# --- posting entries -----------------------------------------------------------------


@dataclass(frozen=True)
class _Credit:
    """A positive entry makes a lot."""

    source: LotSource
    expires_at: datetime | None = None
    priority: int | None = None


@dataclass(frozen=True)
class _Spend:
    """A spend takes free tokens of live lots in the spend order, or is refused."""


@dataclass(frozen=True)
class _TakeBack:
    """A refund takes from ``first_lot_id`` first, then the other lots (lots.take_back)."""

    first_lot_id: int | None = None


@dataclass(frozen=True)
class _Expire:
    """An expiry takes what is left of its lot and marks the lot expired."""

    lot_id: int


_LotAction = _Credit | _Spend | _TakeBack | _Expire


async def _post(
    session: Unit,
    user_id: int,
    amount: int,
    transaction_type: TransactionType,
    description: str,
    *,
    lot: _LotAction,
    idempotency_key: str | None = None,
    payment_intent_id: str | None = None,
    reservation_id: int | None = None,
    actor_user_id: int | None = None,
    reserved_delta: int = 0,
) -> Entry:
    """Change the balance, write the entry that explains it and do its lot work
    (``lot``), atomically. Only a spend (``lot`` a :class:`_Spend`) must be covered by the
    available tokens; a take-back or an expiry may leave the balance negative.

    The UPDATE comes first so that a refused spend writes nothing at all (it also locks
    the account, before any of its lots); a spend the live lots cannot pay (tokens of
    an expired lot the expiry job has not written off yet) is refused the same way. The
    INSERT then either records the entry or, on a unique-key conflict (a replay), the
    UPDATE is reversed in the same transaction and the first entry is returned.
    """
    _check_key(idempotency_key)
    now = utcnow()
    needed = -amount if (isinstance(lot, _Spend) and amount < 0) else None
    moved = await repo.move_balance(
        session,
        user_id,
        balance_delta=amount,
        reserved_delta=reserved_delta,
        require_available=needed,
        now=now,
    )
    new_balance = None if moved is None else moved[0]
    plan: lots.Plan | None = None
    if new_balance is not None and isinstance(lot, _Spend):
        plan = await lots.plan_spend(session, user_id, -amount, now)
        if plan.total < -amount:
            await _undo_move(session, user_id, amount, reserved_delta, now)
            new_balance = None
    if new_balance is None:
        first = await _find_first(
            session, user_id, idempotency_key, payment_intent_id, transaction_type
        )
        if first is not None:
            return _same_request(first, amount, transaction_type)
        raise InsufficientTokens(balance=await _spendable(session, user_id, now), required=-amount)

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
        entry = Entry.of(row)
        await _lot_work(session, entry, lot, plan, now)
        if needed is not None and moved is not None:  # a spend: watched once committed
            note_spent(session, user_id, moved[0])
        return entry
    await _undo_move(session, user_id, amount, reserved_delta, now)
    first = await _find_first(
        session, user_id, idempotency_key, payment_intent_id, transaction_type
    )
    if first is None:  # pragma: no cover - a unique index fired, so the row exists
        raise RuntimeError("ledger entry conflicted but cannot be found")
    return _same_request(first, amount, transaction_type)


async def _undo_move(
    session: Unit, user_id: int, amount: int, reserved_delta: int, now: datetime
) -> None:
    await repo.move_balance(
        session,
        user_id,
        balance_delta=-amount,
        reserved_delta=-reserved_delta,
        require_available=None,
        now=now,
    )


async def _spendable(session: Unit, user_id: int, now: datetime) -> int:
    """What a spend could take now: the account's available tokens, at most the free
    tokens of its live lots."""
    current = await balance(session, user_id)
    plan = await lots.plan_spend(session, user_id, max(current.available, 0), now, lock=False)
    return min(current.available, plan.total)


async def _lot_work(
    session: Unit, entry: Entry, lot: _LotAction, plan: lots.Plan | None, now: datetime
) -> None:
    match lot:
        case _Credit(source, expires_at, priority):
            await lots.add_lot(
                session,
                user_id=entry.user_id,
                source=source,
                amount=entry.amount,
                transaction_id=entry.id,
                balance_after=entry.balance_after,
                now=now,
                expires_at=expires_at,
                priority=priority,
            )
        case _Spend():
            assert plan is not None
            await lots.apply(session, plan, entry.id, now)
        case _TakeBack(first_lot_id):
            await lots.take_back(
                session, entry.user_id, -entry.amount, entry.id, now, first_lot_id=first_lot_id
            )
        case _Expire(lot_id):
            await lots.expire(session, lot_id, -entry.amount, entry.id, now)


async def _find_first(
    session: Unit,
    user_id: int,
    idempotency_key: str | None,
    payment_intent_id: str | None,
    transaction_type: TransactionType,
) -> Entry | None:
    if idempotency_key is not None:
        row = await repo.find_transaction_by_key(session, user_id, idempotency_key)
        if row is not None:
            return Entry.of(row, replayed=True)
    if transaction_type == TransactionType.PURCHASE and payment_intent_id is not None:
        row = await repo.find_purchase(session, payment_intent_id)
        if row is not None:
            return Entry.of(row, replayed=True)
    return None


def _same_request(first: Entry, amount: int, transaction_type: TransactionType) -> Entry:
    if first.amount != amount or first.transaction_type != transaction_type:
        raise IdempotencyKeyReused()
    return first


async def _take_back_from(session: Unit, credit: Mapping[str, Any] | None) -> _TakeBack:
    """A reversal's lot work: from the lot that the entry ``credit`` made first (none when
    that entry is not found), then from the other lots."""
    own = None if credit is None else await lots.lot_of_credit(session, int(credit["id"]))
    return _TakeBack(own)


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
        TransactionType.GRANT,
        description,
        lot=_Credit(LotSource.GRANT, lots.policy().expires_at(LotSource.GRANT, utcnow())),
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
        TransactionType.ADJUSTMENT,
        reason,
        lot=_Credit(LotSource.ADJUSTMENT) if tokens > 0 else _Spend(),
        idempotency_key=idempotency_key,
        actor_user_id=actor_user_id,
    )


async def refund(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    description: str,
    *,
    idempotency_key: str,
) -> Entry:
    """Give back what a charge took (a ``refund`` entry); once per key: a second call is a
    replay (``replayed``) and gives nothing more. The tokens come back as a lot of their
    own that never expires (source ``reinstatement``), whatever lots the charge took."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        tokens,
        TransactionType.REFUND,
        description,
        lot=_Credit(LotSource.REINSTATEMENT),
        idempotency_key=idempotency_key,
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
        TransactionType.DEDUCTION,
        description,
        lot=_Spend(),
        idempotency_key=idempotency_key,
    )


# --- purchases (called by payments' sync function) -------------------------------------


async def credit_purchase(
    session: Unit,
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
        TransactionType.PURCHASE,
        description,
        lot=_Credit(LotSource.PURCHASE),
        payment_intent_id=payment_intent_id,
        idempotency_key=keys.purchase(payment_intent_id),
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
    """Take back tokens of a refunded or disputed payment. May leave the balance negative.

    They come from the purchase's own lot first, then from the other lots (free tokens
    before held ones: :func:`tokenbank.ledger.lots.plan_take_back`); what the lots cannot
    give is the negative balance, which has no lot."""
    check_amount(tokens)
    purchase = await repo.find_purchase(session, payment_intent_id)
    return await _post(
        session,
        user_id,
        -tokens,
        TransactionType.PURCHASE_REVERSAL,
        description,
        lot=await _take_back_from(session, purchase),
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
        TransactionType.PURCHASE_REINSTATEMENT,
        description,
        lot=_Credit(LotSource.REINSTATEMENT),
        payment_intent_id=payment_intent_id,
        idempotency_key=idempotency_key,
    )


# --- subscriptions' allotments (called by the subscriptions domain) --------------------


async def credit_allotment(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    *,
    idempotency_key: str,
    expires_at: datetime | None,
    description: str,
    reference: str | None = None,
    priority: int | None = None,
) -> Entry:
    """Credit a subscription's allotment: an ``allotment`` entry and its lot (source
    ``allotment``, expiring at ``expires_at``), in one unit. ``idempotency_key`` (e.g.
    :func:`keys.allotment` of the invoice) makes a second call a replay; ``reference``
    (the invoice's PaymentIntent or the invoice id) is kept on the entry."""
    check_amount(tokens)
    return await _post(
        session,
        user_id,
        tokens,
        TransactionType.ALLOTMENT,
        description,
        lot=_Credit(LotSource.ALLOTMENT, expires_at, priority),
        idempotency_key=idempotency_key,
        payment_intent_id=reference,
    )


async def reverse_allotment(
    session: AsyncSession,
    user_id: int,
    tokens: int,
    *,
    allotment_key: str,
    idempotency_key: str,
    description: str,
) -> Entry:
    """Take back tokens of an allotment (its invoice refunded or disputed): from that
    allotment's own lot first (found by ``allotment_key``, the key it was credited
    with), then from the other lots, as :func:`reverse_purchase`. May leave the balance
    negative."""
    check_amount(tokens)
    credit = await repo.find_transaction_by_key(session, user_id, allotment_key)
    return await _post(
        session,
        user_id,
        -tokens,
        TransactionType.ALLOTMENT_REVERSAL,
        description,
        lot=await _take_back_from(session, credit),
        idempotency_key=idempotency_key,
    )


# --- lots ------------------------------------------------------------------------------


async def list_lots(
    session: AsyncSession, user_id: int, *, active: bool = False, limit: int = 200
) -> list[Lot]:
    """The account's lots, newest first (``active``: with tokens left, not expired)."""
    rows = await session.execute(lots.list_query(user_id, active=active, now=utcnow(), limit=limit))
    return [Lot(**row._mapping) for row in rows]


async def expire_lots(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 200
) -> int:
    """Write one ``expiry`` entry per expired lot for what is left of it; returns how
    many. A lot some pending hold still draws on waits (its held tokens are the hold's:
    a commit may still charge them); once its holds resolve, the next run writes off
    what they left. Exactly once per lot: the entry's key is :func:`keys.lot_expiry`,
    and the lot is re-read under its account's lock."""
    when = now or utcnow()
    written = 0
    for due in await lots.DUE_LOTS.all(session, now=when, limit=limit):
        user_id, lot_id = int(due["user_id"]), int(due["id"])
        await lots.LOCK_ACCOUNT.first(session, user_id=user_id)
        lot = await lots.LOT_FOR_UPDATE.first(session, lot_id=lot_id)
        if (
            lot is None
            or lot["expired_transaction_id"] is not None
            or int(lot["remaining"]) <= 0
            or int(lot["held"]) > 0
        ):
            continue
        entry = await _post(
            session,
            user_id,
            -int(lot["remaining"]),
            TransactionType.EXPIRY,
            f"{lot['remaining']} {lot['source']} token(s) expired",
            lot=_Expire(lot_id),
            idempotency_key=keys.lot_expiry(lot_id),
        )
        written += 0 if entry.replayed else 1
    return written


# --- reservations --------------------------------------------------------------------
#
# reserve, commit and release each call ONE repository function for the unit's dialect,
# which returns a typed outcome (``repository.ReserveOutcome`` and the rest, listed there
# in order of precedence); each function below decides once from it.


async def reserve(
    session: Unit,
    user_id: int,
    tokens: int,
    *,
    idempotency_key: str,
    ttl_s: float,
    description: str = "",
    durable: bool = True,
    account_locked: bool = False,
) -> Reservation:
    """Hold tokens before work whose cost must be paid only if it succeeds.

    Outcomes, in order of precedence:

    ========================  =============================================
    the key holds another     :class:`IdempotencyKeyReused` (409)
    amount
    the key exists            the first reservation, ``replayed``, in its
                              current status (pending, committed, ...)
    no account                :class:`AccountNotFound`
    not enough available      :class:`InsufficientTokens` (402) with the
                              balance available and the amount required
    otherwise                 a new pending reservation
    ========================  =============================================

    Only the last writes anything. On PostgreSQL each is one statement after the one that
    locks the account (a refusal too: one transaction, two round trips); on SQLite a few,
    in one transaction.

    ``durable=False`` (PostgreSQL) lets the caller's transaction commit without waiting for
    the disk, saving a WAL flush per charged reply. Use it only for a transaction whose
    only write is this hold: the hold needs no durability of its own, since it matters only
    through the later ``commit``, whose synchronous commit flushes the WAL, hold included,
    first. A crash in between loses the hold and, with it, nothing but work that was never
    charged. Any other write in the same transaction would lose its durability too.

    ``account_locked`` (PostgreSQL): an earlier statement of this unit locked the account
    row as :func:`tokenbank.ledger.repository.account_lock` does (and said so), so the
    lock's own statement is skipped; the hold then takes its snapshot after that lock, as
    with the lock's own statement. Anything else must leave it False.
    """
    check_amount(tokens)
    _check_key(idempotency_key)
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_s)
    description = description[:MAX_DESCRIPTION]
    if repo.is_postgresql(session):
        outcome = await repo.reserve_pg(
            session,
            user_id,
            tokens,
            idempotency_key,
            description,
            now,
            expires_at,
            durable=durable,
            account_locked=account_locked,
        )
    else:
        outcome = await repo.reserve_sqlite(
            session, user_id, tokens, idempotency_key, description, now, expires_at
        )
    match outcome:
        case repo.Held(row):
            return Reservation.of(row)
        case repo.Replayed(row):
            return Reservation.of(row, replayed=True)
        case repo.Refused(available, required):
            raise InsufficientTokens(balance=available, required=required)
        case repo.NoAccount():
            raise AccountNotFound()
        case repo.KeyReused():
            raise IdempotencyKeyReused()
    raise AssertionError(outcome)  # pragma: no cover - every outcome is matched above


async def get_reservation(session: AsyncSession, reservation_id: int) -> Reservation:
    row = await repo.find_reservation(session, reservation_id)
    if row is None:
        raise ReservationNotFound()
    return Reservation.of(row._mapping)


async def commit(
    session: Unit, reservation_id: int, description: str, *, tokens: int | None = None
) -> Entry:
    """Turn a pending hold into a ``deduction``. Committing again returns the same entry.

    ``tokens`` charges less than the hold (a partial commit): the deduction takes
    ``tokens`` and the rest of the hold is available again, in the same statement. More
    than the hold is :class:`InvalidAmount`; None charges the whole hold.

    Outcomes, in order of precedence:

    ========================  =============================================
    no such reservation       :class:`ReservationNotFound` (404)
    committed before          its deduction, ``replayed``
    released                  :class:`ReservationNotPending` (409)
    expired (or past its      :class:`ReservationExpired` (409)
    ``expires_at``)
    another entry owns the    :class:`IdempotencyKeyReused`; the caller's
    deduction's key           unit rolls back, so the hold stays pending
    otherwise                 the new deduction
    ========================  =============================================
    """
    entry, reserved = await _commit(session, reservation_id, description, tokens)
    if reserved is not None:
        note_spent(session, entry.user_id, entry.balance_after)
    return entry


@dataclass(frozen=True)
class Settled:
    """A committed hold, and the tokens its owner has left to spend right after it."""

    entry: Entry
    available: int


async def settle(
    session: Unit,
    reservation_id: int,
    description: str,
    *,
    tokens: int | None = None,
    held: int | None = None,
) -> Settled:
    """:func:`commit`, and the balance left to spend after it (what a reply reports).

    ``held``: the hold's amount, when the caller knows it (it took the hold), so a
    partial commit is checked against it without reading the reservation first.

    The commit's statement returns the account's new ``reserved`` beside the entry's
    ``balance_after``, so a charged reply needs no separate balance read (a replay reads
    it).
    """
    entry, reserved = await _commit(session, reservation_id, description, tokens, held)
    return await _settled(session, entry, reserved)


async def settle_riding(
    session: Unit,
    reservation_id: int,
    description: str,
    *,
    tokens: int | None = None,
    held: int | None = None,
    statement: Callable[[tuple[Any, ...]], Awaitable[Mapping[str, Any] | None]],
) -> Settled | None:
    """:func:`settle` on PostgreSQL by the caller's own statement, which carries the
    commit's steps (:func:`repository.commit_steps`) beside its own work: one round trip
    for both. ``statement`` gets the steps' ``$1``..``$4`` and returns its row (the
    columns :data:`repository.COMMIT_RESULT` names and the entry's), or None when its
    gate kept the hold from resolving (nothing committed: then this returns None). The
    outcomes and errors are :func:`settle`'s."""
    now, description = await _commit_terms(session, reservation_id, description, tokens, held)
    row = await statement((reservation_id, now, description, tokens))
    if row is None:
        return None
    outcome = await repo.commit_outcome_pg(session, reservation_id, row)
    entry, reserved = await _committed(session, outcome, now)
    return await _settled(session, entry, reserved)


async def _settled(session: Unit, entry: Entry, reserved: int | None) -> Settled:
    if reserved is None:  # a replay: spent before, and watched then
        return Settled(entry, (await balance(session, entry.user_id)).available)
    available = entry.balance_after - reserved
    note_spent(session, entry.user_id, entry.balance_after)  # watched once committed
    return Settled(entry, available)


async def settle_once(
    session: Unit, reservation_id: int, description: str, *, tokens: int | None
) -> Settled:
    """:func:`settle` for a caller's commit request (the service API's, the meter's): the
    same commit again returns the first deduction; again for a different ``tokens`` is
    :class:`IdempotencyKeyReused` (409), since a hold resolves once."""
    settled = await settle(session, reservation_id, description, tokens=tokens)
    charged = -settled.entry.amount
    if settled.entry.replayed and tokens is not None and tokens != charged:
        raise IdempotencyKeyReused(
            f"This hold was committed for {charged} tokens; it cannot be committed for {tokens}."
        )
    return settled


async def _commit_terms(
    session: Unit, reservation_id: int, description: str, tokens: int | None, held: int | None
) -> tuple[datetime, str]:
    """What every commit starts from: its time, its description cut to length, and a
    partial ``tokens`` checked against the hold."""
    if tokens is not None:
        await _check_partial(session, reservation_id, tokens, held)
    return utcnow(), description[:MAX_DESCRIPTION]


async def _commit(
    session: Unit,
    reservation_id: int,
    description: str,
    tokens: int | None = None,
    held: int | None = None,
) -> tuple[Entry, int | None]:
    """The entry, and the account's ``reserved`` right after it (None for a replay)."""
    now, description = await _commit_terms(session, reservation_id, description, tokens, held)
    if repo.is_postgresql(session):
        outcome = await repo.commit_pg(session, reservation_id, description, now, tokens)
    else:
        outcome = await repo.commit_sqlite(session, reservation_id, description, now, tokens)
    return await _committed(session, outcome, now)


async def _committed(
    session: Unit, outcome: repo.CommitOutcome, now: datetime
) -> tuple[Entry, int | None]:
    """A commit's outcome as its entry and ``reserved`` after it, or the ledger's error."""
    match outcome:
        case repo.Committed(row, reserved_after, short):
            entry = Entry.of(row)
            if short > 0:
                # A refund took some of this hold's allocation: the rest of the charge
                # comes from the other lots (or is the negative balance).
                await lots.take_back(session, entry.user_id, short, entry.id, now)
            return entry, reserved_after
        case repo.Replayed(row):
            return Entry.of(row, replayed=True), None
        case repo.NotFound():
            raise ReservationNotFound()
        case repo.AlreadyResolved(status):
            raise ReservationNotPending(status)
        case repo.Expired():
            raise ReservationExpired(ReservationStatus.EXPIRED)
        case repo.KeyTaken():
            raise IdempotencyKeyReused()
    raise AssertionError(outcome)  # pragma: no cover - every outcome is matched above


async def _check_partial(
    session: Unit, reservation_id: int, tokens: int, held: int | None = None
) -> None:
    """A partial commit charges a whole number of tokens, at most the hold's amount (which
    never changes, so reading it first races nothing; a caller that knows it skips the
    read)."""
    check_amount(tokens)
    if held is None:
        held = await repo.reservation_amount(session, reservation_id)
    if held is None:
        raise ReservationNotFound()
    if tokens > held:
        raise InvalidAmount(f"The hold is for {held} tokens; {tokens} is more.")


async def release(session: Unit, reservation_id: int) -> bool:
    """Give a pending hold back. True if this call released it; False if it was released
    or expired already.

    Outcomes, in order of precedence:

    ========================  =============================================
    no such reservation       :class:`ReservationNotFound` (404)
    committed already         :class:`ReservationNotPending` (409)
    released or expired       False
    already
    otherwise                 True: released, its tokens available again
    ========================  =============================================
    """
    now = utcnow()
    if repo.is_postgresql(session):
        outcome = await repo.release_pg(session, reservation_id, now)
    else:
        outcome = await repo.release_sqlite(session, reservation_id, now)
    match outcome:
        case repo.Released():
            return True
        case repo.NotFound():
            raise ReservationNotFound()
        case repo.AlreadyResolved(ReservationStatus.COMMITTED):
            raise ReservationNotPending(ReservationStatus.COMMITTED)
        case repo.AlreadyResolved():
            return False
    raise AssertionError(outcome)  # pragma: no cover - every outcome is matched above


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
    # Their allocations go back to their lots (each account is locked by now).
    await lots.unhold(session, sorted(int(row.id) for row in expired))
    return len(expired)


# --- verification --------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    user_id: int
    rule: str
    detail: str


async def check(session: AsyncSession) -> list[Violation]:
    """Every violation of the rules below, on the live data; empty when the ledger is sound.

    This is what ``tokenbank ledger check`` verifies (the README, the CLI's help and
    ``docs/`` point here). Each :class:`Violation` names its rule:

    - ``balance_equals_sum``: an account's ``balance`` is the sum of its entries (guarantee 1);
    - ``reserved_equals_pending``: its ``reserved`` is the sum of its pending holds
      (guarantee 2);
    - ``balance_after_chain``: its newest entry's ``balance_after`` is its ``balance``;
    - ``account_exists``: every entry belongs to an account;
    - ``negative_only_by_reversal``: a negative balance has a ``purchase_reversal`` or an
      ``allotment_reversal`` (guarantee 4);
    - ``lots_hold_balance``: the sum of its lots' ``remaining`` is its balance while that
      is >= 0, and 0 while it is negative (guarantee 9);
    - ``lot_remaining_equals_amount_less_taken``: a lot's ``remaining`` is its ``amount``
      less what its moves took (guarantee 10);
    - ``lot_held_equals_allocations``: a lot's ``held`` is what pending holds were
      allocated from it (guarantee 10);
    - ``nothing_spent_after_expiry``: no spend took tokens of a lot at or after its
      ``expires_at`` (guarantee 11).

    The other guarantees are kept by the schema (3, 5, 6, 7: conditional updates, unique
    indexes, triggers) and by :func:`check_amount` (8), and are tested, not re-checked.
    """
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
            Violation(user_id, "negative_only_by_reversal", "negative balance without a reversal")
        )
    for user_id, bal, remaining in await lots.balance_mismatches(session):
        found.append(
            Violation(
                user_id, "lots_hold_balance", f"balance {bal} but lots have {remaining} remaining"
            )
        )
    for user_id, lot_id, remaining, expected in await lots.remaining_mismatches(session):
        found.append(
            Violation(
                user_id,
                "lot_remaining_equals_amount_less_taken",
                f"lot {lot_id} has {remaining} remaining but amount less taken is {expected}",
            )
        )
    for user_id, lot_id, held, allocated in await lots.held_mismatches(session):
        found.append(
            Violation(
                user_id,
                "lot_held_equals_allocations",
                f"lot {lot_id} holds {held} but pending holds were allocated {allocated}",
            )
        )
    for user_id, lot_id, entry_id in await lots.spent_after_expiry(session):
        found.append(
            Violation(
                user_id,
                "nothing_spent_after_expiry",
                f"entry {entry_id} spent from lot {lot_id} after it expired",
            )
        )
    return found
