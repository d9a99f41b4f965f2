"""Buying tokens, the parts that run inside one unit of work (a session; they never commit).

The steps that ask Stripe — and so own their short transactions around each call — are
in :mod:`tokenbank.payments.flows`; everything that moves tokens goes through
:func:`tokenbank.payments.sync.apply_snapshot`.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Tier
from tokenbank.errors import IdempotencyKeyReused
from tokenbank.payments import repository as repo
from tokenbank.payments.errors import PaymentNotFound
from tokenbank.payments.models import PaymentStatus
from tokenbank.payments.stripe_client import CreatedIntent
from tokenbank.payments.sync import PaymentView, view_of
from tokenbank.types import utcnow


def stripe_idempotency_key(user_id: int, client_key: str | None) -> str:
    """Derived from the client's key, so a retried request gets the same intent back.

    Hashed: the client's key may be long or odd, Stripe's keys are at most 255 characters.
    Without a client key every request is a new purchase.
    """
    if client_key is None:
        return f"tokenbank-pi-{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{user_id}\x00{client_key}".encode()).hexdigest()
    return f"tokenbank-pi-{digest[:48]}"


async def start_payment(
    session: AsyncSession, *, user_id: int, tier_id: str, tier: Tier, client_key: str | None
) -> PaymentView:
    """Insert the purchase, or find the one this client key already made (a key reused
    for another tier is refused)."""
    new_id = await repo.insert_payment(
        session,
        user_id=user_id,
        tier=tier_id,
        tokens=tier.tokens,
        amount_cents=tier.price,
        currency=tier.currency,
        idempotency_key=client_key,
        now=utcnow(),
    )
    if new_id is not None:
        row = await repo.get_payment(session, new_id)
    else:
        assert client_key is not None  # only the idempotency key can conflict here
        row = await repo.find_by_user_key(session, user_id, client_key)
    assert row is not None
    found = view_of(row)
    if found.tier != tier_id:
        raise IdempotencyKeyReused()
    return found


async def record_intent(
    session: AsyncSession, payment_id: int, intent: CreatedIntent
) -> PaymentView:
    """Our row, now knowing the intent Stripe made for it."""
    await repo.attach_intent(session, payment_id, intent.id, intent.status, utcnow())
    row = await repo.get_payment(session, payment_id)
    assert row is not None
    return view_of(row)


def is_final(payment: PaymentView) -> bool:
    """Nothing a confirm-payment could find at Stripe would change this payment."""
    credited = payment.status == PaymentStatus.SUCCEEDED and payment.tokens_credited > 0
    return credited or payment.status == PaymentStatus.CANCELED


async def owned_intent(session: AsyncSession, user_id: int, payment_intent_id: str) -> PaymentView:
    """The caller's payment for this intent; anyone else's is indistinguishable from none."""
    row = await repo.find_by_intent(session, payment_intent_id)
    if row is None or row.user_id != user_id:
        raise PaymentNotFound()
    return view_of(row)


async def list_payments(
    session: AsyncSession, user_id: int, *, limit: int, before: int | None
) -> tuple[list[PaymentView], int | None]:
    """Newest first, keyset-paginated on the row id."""
    rows = await repo.list_for_user(session, user_id, limit=limit + 1, before=before)
    items = [view_of(r) for r in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit and items else None)


async def customer_details(session: AsyncSession, user_id: int) -> repo.Person:
    """Who a new Stripe Customer is for (its email and name at Stripe)."""
    person = await repo.find_person(session, user_id)
    if person is None:
        raise PaymentNotFound()
    return person
