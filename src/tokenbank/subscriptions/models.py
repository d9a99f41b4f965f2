"""Our mirror of Stripe's subscriptions and of their invoices (one allotment per paid
invoice), and the statuses they speak of."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, check_in, utcnow


class SubscriptionStatus(StrEnum):
    """Stripe's ``Subscription.status``, in full."""

    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    PAUSED = "paused"

    @property
    def is_ended(self) -> bool:
        return self in (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)


class InvoiceStatus(StrEnum):
    """Stripe's ``Invoice.status``, in full."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


class Problem(StrEnum):
    """Why a subscription needs the person (``Subscription.problem`` in the API)."""

    PAYMENT_FAILED = "payment_failed"
    REQUIRES_ACTION = "requires_action"


class Subscription(Base):
    """A Stripe subscription of one of our users, as Stripe last said it was.

    ``plan`` is the plan the current period was paid for; ``scheduled_plan`` the plan
    the next period will be billed at (a downgrade waits for the period end).
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        check_in("status", SubscriptionStatus),
        check_in("problem", Problem, nullable=True),
        Index("ix_subscriptions_user_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("users.id", ondelete="CASCADE")
    )
    customer_id: Mapped[str] = mapped_column(String(255))
    plan: Mapped[str] = mapped_column(String(64))
    scheduled_plan: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    problem: Mapped[str | None] = mapped_column(String(32), nullable=True)
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    latest_invoice_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: When the Stripe state last applied began to be read (an older read changes nothing).
    stripe_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscriptionInvoice(Base):
    """One invoice of a subscription: what it allots, and whether it was granted.

    ``tokens`` is the allotment the invoice pays for (a month of its plan; for an
    upgrade's prorated invoice the difference between the plans); ``tokens_granted`` is
    0 until the invoice is paid, then ``tokens`` — written once, under the row's lock, with
    the ledger key ``allotment:<invoice id>``. ``reversed_tokens`` follows the money
    returned on its charge (refunds, disputes), as a purchase's does.
    """

    __tablename__ = "subscription_invoices"
    __table_args__ = (
        check_in("status", InvoiceStatus),
        Index("ix_subscription_invoices_subscription_id", "subscription_id"),
        Index("ix_subscription_invoices_payment_intent_id", "payment_intent_id"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("users.id", ondelete="CASCADE"))
    billing_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    plan: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    amount_due: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_granted: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: When the Stripe state last applied began to be read (an older read moves no money).
    stripe_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
