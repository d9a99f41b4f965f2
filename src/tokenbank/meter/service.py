"""Metering a signed-in user's use of the host app's features, on the ledger.

Every function takes a session or a unit (:data:`tokenbank.db.Unit`) and never commits
(``meter.flows`` runs the holds as driver units; a charge runs in the request's unit). A
metered call is a ledger call, so the ledger's guarantees hold unchanged:

- the price is the server's (:func:`tokenbank.meter.prices.feature_price`), per unit;
  the caller says only how many units;
- a hold or a charge carries the caller's idempotency key into the ledger's unique key
  (``meter-hold:<feature>:<key>``, ``meter-charge:<feature>:<key>``): a retry returns the
  first result; the same key for another quantity is 409 ``idempotency_key_reused``;
- a hold resolves once (committed, released, or expired by the sweeper); a commit
  charges at most the hold, at the price per unit of the moment it was held, and gives
  the rest back at once; committing again returns the first deduction;
- spending never takes ``balance - reserved`` below zero (402), whatever the concurrency;
- a hold is reachable only by its owner and through its own feature: anyone else's, or
  an unknown id, is 404 ``reservation_not_found``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import Unit
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InvalidAmount, ReservationNotFound
from tokenbank.meter import repository as repo


@dataclass(frozen=True)
class MeterHoldView:
    id: int
    feature: str
    quantity: int
    unit_tokens: int
    amount: int
    status: str
    expires_at: datetime
    replayed: bool = False


@dataclass(frozen=True)
class MeterCommitted:
    reservation_id: int
    transaction_id: int
    amount: int
    released: int
    balance: int
    replayed: bool


@dataclass(frozen=True)
class MeterCharged:
    transaction_id: int
    amount: int
    balance: int
    replayed: bool


def _amount(unit_tokens: int, quantity: int) -> int:
    """The tokens for ``quantity`` units, refused (422) when it is not a sane amount."""
    ledger.check_amount(quantity)
    return ledger.check_amount(unit_tokens * quantity)


def _description(feature: str, quantity: int) -> str:
    return f"{feature} × {quantity}"


async def reserve(
    unit: Unit,
    *,
    user_id: int,
    feature: str,
    unit_tokens: int,
    quantity: int,
    idempotency_key: str,
    ttl_s: float,
) -> MeterHoldView:
    """Hold the price of ``quantity`` units (402 when not available); the same key again
    returns the first hold in its current status."""
    amount = _amount(unit_tokens, quantity)
    held = await ledger.reserve(
        unit,
        user_id,
        amount,
        idempotency_key=keys.meter_hold(feature, idempotency_key),
        ttl_s=ttl_s,
        description=_description(feature, quantity),
    )
    if held.replayed:
        return await get_hold(unit, user_id=user_id, feature=feature, reservation_id=held.id)
    await repo.insert_hold(
        unit,
        reservation_id=held.id,
        user_id=user_id,
        feature=feature,
        quantity=quantity,
        unit_tokens=unit_tokens,
        created_at=held.created_at,
    )
    return MeterHoldView(
        id=held.id,
        feature=feature,
        quantity=quantity,
        unit_tokens=unit_tokens,
        amount=held.amount,
        status=held.status,
        expires_at=held.expires_at,
    )


async def get_hold(
    unit: Unit, *, user_id: int, feature: str, reservation_id: int, replayed: bool = True
) -> MeterHoldView:
    row = await repo.owned_hold(
        unit, reservation_id=reservation_id, user_id=user_id, feature=feature
    )
    if row is None:
        raise ReservationNotFound()
    return MeterHoldView(
        id=int(row["reservation_id"]),
        feature=feature,
        quantity=int(row["quantity"]),
        unit_tokens=int(row["unit_tokens"]),
        amount=int(row["amount"]),
        status=str(row["status"]),
        expires_at=row["expires_at"],
        replayed=replayed,
    )


async def commit_hold(
    unit: Unit, *, user_id: int, feature: str, reservation_id: int, quantity: int | None
) -> MeterCommitted:
    """Charge the hold, or ``quantity`` of its units at the price they were held at."""
    hold = await get_hold(
        unit, user_id=user_id, feature=feature, reservation_id=reservation_id, replayed=False
    )
    tokens: int | None = None
    if quantity is not None:
        ledger.check_amount(quantity)
        if quantity > hold.quantity:
            raise InvalidAmount(f"The hold is for {hold.quantity} unit(s); {quantity} is more.")
        tokens = quantity * hold.unit_tokens
    settled = await ledger.settle_once(
        unit, reservation_id, _description(feature, quantity or hold.quantity), tokens=tokens
    )
    charged = -settled.entry.amount
    return MeterCommitted(
        reservation_id=reservation_id,
        transaction_id=settled.entry.id,
        amount=charged,
        released=hold.amount - charged,
        balance=settled.available,
        replayed=settled.entry.replayed,
    )


async def release_hold(unit: Unit, *, user_id: int, feature: str, reservation_id: int) -> bool:
    """Give the hold back: True if this call did; False if it was released or expired
    already; 409 once committed."""
    await get_hold(unit, user_id=user_id, feature=feature, reservation_id=reservation_id)
    return await ledger.release(unit, reservation_id)


async def charge(
    session: AsyncSession,
    *,
    user_id: int,
    feature: str,
    unit_tokens: int,
    quantity: int,
    idempotency_key: str,
) -> MeterCharged:
    """A one-shot deduction of ``quantity`` units (402 when not available), once per key."""
    entry = await ledger.spend(
        session,
        user_id,
        _amount(unit_tokens, quantity),
        _description(feature, quantity),
        idempotency_key=keys.meter_charge(feature, idempotency_key),
    )
    available = (await ledger.balance(session, user_id)).available
    return MeterCharged(
        transaction_id=entry.id, amount=-entry.amount, balance=available, replayed=entry.replayed
    )
