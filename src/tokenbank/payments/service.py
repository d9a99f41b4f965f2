"""Buying tokens: create a PaymentIntent, confirm it, show payments.

Calls to Stripe never run inside a database transaction (a slow Stripe must not hold
locks), so these functions open their own short transactions around them, as the
charged AI reply does; everything that moves tokens goes through :mod:`sync`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import Balance
from tokenbank.payments import repository as repo
from tokenbank.payments.catalog import find_tier
from tokenbank.payments.errors import PaymentIdempotencyKeyReused, PaymentNotFound
from tokenbank.payments.models import PaymentStatus
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.payments.sync import PaymentView, SyncOutcome, sync_payment, view_of
from tokenbank.types import utcnow


@dataclass(frozen=True)
class CheckoutStarted:
    payment: PaymentView
    payment_intent_id: str
    client_secret: str
    publishable_key: str | None


def stripe_idempotency_key(user_id: int, client_key: str | None) -> str:
    """Derived from the client's key, so a retried request gets the same intent back.

    Hashed: the client's key may be long or odd, Stripe's keys are at most 255 characters.
    Without a client key every request is a new purchase.
    """
    if client_key is None:
        return f"tokenbank-pi-{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{user_id}\x00{client_key}".encode()).hexdigest()
    return f"tokenbank-pi-{digest[:48]}"


async def create_payment_intent(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    *,
    user_id: int,
    tier_id: str,
    client_key: str | None,
) -> CheckoutStarted:
    """Record the purchase, then have Stripe create its intent (amount from config only).

    The same ``client_key`` returns the same row and the same intent, even when the
    first attempt died between the two steps (Stripe replays the idempotent create).
    """
    tier = find_tier(settings, tier_id)
    gateway.require_configured()  # 503 before writing anything when Stripe is unset
    payment = await _payment_row(
        db, user_id, tier_id, tier.tokens, tier.price, tier.currency, client_key
    )
    if payment.payment_intent_id is not None:
        snap = await gateway.retrieve_intent(payment.payment_intent_id)
        secret, pi_id = snap.client_secret or "", snap.id
    else:
        intent = await gateway.create_intent(
            amount=payment.amount_cents,
            currency=payment.currency,
            metadata={
                "user_id": str(user_id),
                "tier": payment.tier,
                "tokens": str(payment.tokens),
                "type": "token_purchase",
                "payment_id": str(payment.id),
            },
            description=f"tokenbank {payment.tier} pack: {payment.tokens} tokens",
            idempotency_key=stripe_idempotency_key(user_id, client_key),
        )
        async with db.transaction() as session:
            await repo.attach_intent(session, payment.id, intent.id, intent.status, utcnow())
            row = await repo.get_payment(session, payment.id)
            assert row is not None
            payment = view_of(row)
        secret, pi_id = intent.client_secret, intent.id
    return CheckoutStarted(payment, pi_id, secret, settings.stripe_publishable_key)


async def _payment_row(
    db: Database,
    user_id: int,
    tier_id: str,
    tokens: int,
    amount_cents: int,
    currency: str,
    client_key: str | None,
) -> PaymentView:
    """Insert the purchase, or find the one this client key already made."""
    now = utcnow()
    async with db.transaction() as session:
        new_id = await repo.insert_payment(
            session,
            {
                "user_id": user_id,
                "tier": tier_id,
                "tokens": tokens,
                "amount_cents": amount_cents,
                "currency": currency.lower(),
                "status": PaymentStatus.CREATED,
                "tokens_credited": 0,
                "reversed_tokens": 0,
                "amount_refunded_cents": 0,
                "idempotency_key": client_key,
                "version": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        if new_id is not None:
            row = await repo.get_payment(session, new_id)
        else:
            assert client_key is not None  # only the idempotency key can conflict here
            row = await repo.find_by_user_key(session, user_id, client_key)
        assert row is not None
        found = view_of(row)
    if found.tier != tier_id:
        raise PaymentIdempotencyKeyReused()
    return found


def is_final(payment: PaymentView) -> bool:
    """Nothing a confirm-payment could find at Stripe would change this payment."""
    credited = payment.status == "succeeded" and payment.tokens_credited > 0
    return credited or payment.status == "canceled"


async def owned_intent(db: Database, user_id: int, payment_intent_id: str) -> PaymentView:
    """The caller's payment for this intent; anyone else's is indistinguishable from none."""
    async with db.transaction() as session:
        row = await repo.find_by_intent(session, payment_intent_id)
        if row is None or row.user_id != user_id:
            raise PaymentNotFound()
        return view_of(row)


@dataclass(frozen=True)
class Confirmation:
    outcome: SyncOutcome
    payment: PaymentView
    balance: Balance


async def confirm_payment(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    *,
    user_id: int,
    payment_intent_id: str,
) -> Confirmation:
    """Check with Stripe (never with the browser) and credit if paid.

    A payment already final in our books (succeeded and credited, or canceled) has nothing
    left for this call to find: it answers from our row without asking Stripe, so repeated
    calls cannot spend the merchant's Stripe request quota. Later refunds and disputes
    still arrive by webhook and reconciliation.
    """
    ours = await owned_intent(db, user_id, payment_intent_id)
    if is_final(ours):
        outcome = SyncOutcome(payment_intent_id, payment=ours, status_before=ours.status)
    else:
        outcome = await sync_payment(db, gateway, settings, payment_intent_id)
    payment = outcome.payment
    assert payment is not None  # the row exists, so the sync cannot ignore the intent
    async with db.transaction() as session:
        balance = await ledger.balance(session, user_id)
    return Confirmation(outcome, payment, balance)


async def list_payments(
    db: Database, user_id: int, *, limit: int, before: int | None
) -> tuple[list[PaymentView], int | None]:
    """Newest first, keyset-paginated on the row id."""
    async with db.transaction() as session:
        rows = await repo.list_for_user(session, user_id, limit=limit + 1, before=before)
        items = [view_of(r) for r in rows[:limit]]
    return items, (items[-1].id if len(rows) > limit and items else None)
