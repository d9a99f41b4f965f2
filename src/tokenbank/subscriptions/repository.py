"""SQL for subscriptions and their invoices (takes the caller's session, never commits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.db import Query, insert_or_skip
from tokenbank.payments.models import Payment, StripeCustomer, WebhookEvent
from tokenbank.subscriptions.models import Subscription, SubscriptionInvoice, SubscriptionStatus

ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)


async def lock_subscription(session: AsyncSession, sub_id: str) -> Subscription | None:
    """The row, locked (``FOR UPDATE``; SQLite's BEGIN IMMEDIATE already serialises) and
    read afresh even when the session holds it already."""
    return await session.get(Subscription, sub_id, with_for_update=True, populate_existing=True)


async def insert_subscription(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert_or_skip(session, Subscription).values(**values))


async def lock_invoice(session: AsyncSession, invoice_id: str) -> SubscriptionInvoice | None:
    """As :func:`lock_subscription`."""
    return await session.get(
        SubscriptionInvoice, invoice_id, with_for_update=True, populate_existing=True
    )


async def insert_invoice(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert_or_skip(session, SubscriptionInvoice).values(**values))


async def current_for_user(session: AsyncSession, user_id: int) -> Subscription | None:
    """The user's subscription that has not ended (else their latest one)."""
    rows = (
        await session.execute(
            select(Subscription)
            .where(Subscription.user_id == user_id)
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
        )
    ).scalars().all()
    live = [r for r in rows if r.status not in ENDED]
    if live:
        return live[0]
    return rows[0] if rows else None


async def live_for_user(session: AsyncSession, user_id: int) -> list[Subscription]:
    rows = (
        await session.execute(
            select(Subscription).where(
                Subscription.user_id == user_id, Subscription.status.not_in(ENDED)
            )
        )
    ).scalars().all()
    return list(rows)


async def count_for_user(session: AsyncSession, user_id: int) -> int:
    rows = await session.execute(select(Subscription.id).where(Subscription.user_id == user_id))
    return len(rows.all())


async def invoice_by_intent(
    session: AsyncSession, payment_intent_id: str
) -> SubscriptionInvoice | None:
    stmt = select(SubscriptionInvoice).where(
        SubscriptionInvoice.payment_intent_id == payment_intent_id
    )
    return (await session.execute(stmt)).scalars().first()


async def invoices_of(session: AsyncSession, sub_id: str) -> Sequence[SubscriptionInvoice]:
    stmt = (
        select(SubscriptionInvoice)
        .where(SubscriptionInvoice.subscription_id == sub_id)
        .order_by(SubscriptionInvoice.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


async def user_of_customer(session: AsyncSession, customer_id: str) -> int | None:
    stmt = select(StripeCustomer.user_id).where(StripeCustomer.customer_id == customer_id)
    found = (await session.execute(stmt)).scalar_one_or_none()
    return None if found is None else int(found)


async def customer_of_user(session: AsyncSession, user_id: int) -> StripeCustomer | None:
    return await session.get(StripeCustomer, user_id)


async def all_customers(session: AsyncSession) -> list[tuple[int, str]]:
    rows = await session.execute(select(StripeCustomer.user_id, StripeCustomer.customer_id))
    return [(int(r.user_id), str(r.customer_id)) for r in rows]


async def event_payload(session: AsyncSession, event_id: str) -> dict[str, Any] | None:
    found = (
        await session.execute(select(WebhookEvent.payload).where(WebhookEvent.id == event_id))
    ).scalar_one_or_none()
    return found if isinstance(found, dict) else None


_invoices = cast(Table, SubscriptionInvoice.__table__)
_payments = cast(Table, Payment.__table__)


_ONE = select(literal_column("1").label("one")).subquery("one")

#: Whose an intent is, in one read-only statement: the invoice it pays (and that
#: invoice's subscription; NULLs when none), and whether it is a token purchase of ours.
INTENT_OWNER = Query.of(
    select(
        _invoices.c.subscription_id,
        _invoices.c.id.label("invoice_id"),
        exists()
        .where(_payments.c.stripe_payment_intent_id == bindparam("payment_intent_id"))
        .label("purchase"),
    ).select_from(
        _ONE.outerjoin(
            _invoices, _invoices.c.payment_intent_id == bindparam("payment_intent_id")
        )
    )
)


async def is_purchase(session: AsyncSession, payment_intent_id: str) -> bool:
    """Whether the intent is a token purchase of ours (payments applies its events)."""
    stmt = select(Payment.id).where(Payment.stripe_payment_intent_id == payment_intent_id)
    return (await session.execute(stmt)).first() is not None
