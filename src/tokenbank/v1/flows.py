"""Service API flows that own their units of work (they take ``Database``).

- Holds (create, commit, release): each one unit through ``Database.run`` — on the
  driver (asyncpg, or SQLite's own connection), the ledger's statements between one
  ``BEGIN`` and ``COMMIT``, as a chat reply's hold and commit run — rather than a request
  session: the hot path of every host app's metered call.
- Purchases and checkout call Stripe: no transaction is open while Stripe answers.
  Everything that moves tokens goes through payments' one sync function, as for
  tokenbank's own purchases."""

from __future__ import annotations

from dataclasses import dataclass

from tokenbank.config import Settings
from tokenbank.db import Database, Unit
from tokenbank.payments import flows as payments
from tokenbank.payments import service as payment_service
from tokenbank.payments.errors import PaymentNotFound
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.payments.sync import PaymentView
from tokenbank.v1 import checkout
from tokenbank.v1 import service as v1
from tokenbank.v1.checkout import CheckoutClaims
from tokenbank.v1.errors import CheckoutTokenInvalid


async def hold(
    db: Database,
    external_id: str,
    amount: int,
    *,
    idempotency_key: str,
    ttl_s: int,
    description: str = "",
) -> v1.HoldView:
    """:func:`v1.hold` as one unit: the customer's user id and the hold in one transaction."""

    async def work(unit: Unit) -> v1.HoldView:
        return await v1.hold(
            unit,
            external_id,
            amount,
            idempotency_key=idempotency_key,
            ttl_s=ttl_s,
            description=description,
        )

    return await db.run(work)


async def commit_hold(
    db: Database,
    hold_id: int,
    *,
    amount: int | None,
    description: str | None,
    found: v1.HoldView | None = None,
) -> v1.Committed:
    """:func:`v1.commit_hold` as one unit."""

    async def work(unit: Unit) -> v1.Committed:
        return await v1.commit_hold(
            unit, hold_id, amount=amount, description=description, found=found
        )

    return await db.run(work)


async def release_hold(db: Database, hold_id: int) -> tuple[v1.HoldView, bool]:
    """:func:`v1.release` as one unit."""

    async def work(unit: Unit) -> tuple[v1.HoldView, bool]:
        return await v1.release(unit, hold_id)

    return await db.run(work)


@dataclass(frozen=True)
class Purchase:
    started: payments.CheckoutStarted
    hosted_url: str | None


async def _user_of(db: Database, external_id: str) -> int:
    async with db.transaction() as session:
        return (await v1.get_customer(session, external_id)).user_id


async def start_purchase(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    *,
    external_id: str,
    tier: str,
    idempotency_key: str,
    return_url: str | None,
    base_origin: str,
) -> Purchase:
    """A payment row and its PaymentIntent for the customer (price from the server's
    tiers only), and with a ``return_url`` a signed link to the hosted payment page.

    The same idempotency key returns the same row and intent (Stripe's idempotent create
    is keyed by it too); a different tier under the same key is 409.
    """
    if return_url is not None:
        checkout.check_return_url(settings, return_url)
    user_id = await _user_of(db, external_id)
    started = await payments.create_payment_intent(
        db,
        gateway,
        settings,
        user_id=user_id,
        tier_id=tier,
        client_key=v1.PURCHASE_KEY.format(idempotency_key),
    )
    url = None
    if return_url is not None:
        token = checkout.sign_link(
            settings, CheckoutClaims(user_id, started.payment_intent_id, return_url)
        )
        url = checkout.hosted_url(base_origin, token)
    return Purchase(started, url)


@dataclass(frozen=True)
class HostedCheckout:
    payment: PaymentView
    client_secret: str
    return_url: str


async def open_checkout(
    db: Database, gateway: StripeGateway, settings: Settings, token: str
) -> HostedCheckout:
    """What the hosted payment page needs to take the card for a signed link."""
    claims = checkout.read_link(settings, token)
    payment = await _linked_payment(db, claims)
    snapshot = await gateway.retrieve_intent(claims.payment_intent_id)
    return HostedCheckout(payment, snapshot.client_secret or "", claims.return_url)


async def confirm_checkout(
    db: Database, gateway: StripeGateway, settings: Settings, token: str
) -> tuple[payments.Confirmation, str]:
    """Check with Stripe (never the browser) and credit if paid, as confirm-payment does."""
    claims = checkout.read_link(settings, token)
    await _linked_payment(db, claims)
    done = await payments.confirm_payment(
        db,
        gateway,
        settings,
        user_id=claims.user_id,
        payment_intent_id=claims.payment_intent_id,
    )
    return done, claims.return_url


async def _linked_payment(db: Database, claims: CheckoutClaims) -> PaymentView:
    """The link's payment, which must still be its customer's (a link outlives nothing)."""
    try:
        async with db.transaction() as session:
            return await payment_service.owned_intent(
                session, claims.user_id, claims.payment_intent_id
            )
    except PaymentNotFound:
        raise CheckoutTokenInvalid() from None


async def confirm_for_customer(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    *,
    external_id: str,
    payment_intent_id: str,
) -> payments.Confirmation:
    """A widget's confirm: the customer's own payment only (anyone else's is 404)."""
    user_id = await _user_of(db, external_id)
    return await payments.confirm_payment(
        db, gateway, settings, user_id=user_id, payment_intent_id=payment_intent_id
    )
