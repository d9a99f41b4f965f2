"""Payment tables (our record of each PaymentIntent, the webhook inbox, the reconcile
checkpoint) and every status they speak of, as enums.

Stripe's status sets are copied in full from its API reference (and the SDK's types), so
that code comparing a status names a member, never a string typed twice. A status Stripe
adds later is not one of ours: the sync judges it by its money (refunds and dispute
balance transactions), never by guessing what the word means.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, check_in, utcnow


class PaymentIntentStatus(StrEnum):
    """Stripe's ``PaymentIntent.status``."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    """No usable payment method yet, or the last attempt failed (then it has an error)."""
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    """The customer must act (3D Secure, a redirect)."""
    PROCESSING = "processing"
    """Asynchronous methods (bank debits): the result comes later, by webhook."""
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


class RefundStatus(StrEnum):
    """Stripe's ``Refund.status``."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """The money never reached the customer (it can follow ``succeeded`` days later)."""
    CANCELED = "canceled"

    @property
    def returns_money(self) -> bool:
        """Whether this refund's amount counts as money given back (see ``refund_counts``)."""
        return self not in (RefundStatus.FAILED, RefundStatus.CANCELED)


class DisputeStatus(StrEnum):
    """Stripe's ``Dispute.status``."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    """An inquiry: the issuer asks questions; no money moves."""
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    """An inquiry that ended without becoming a chargeback."""
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    APPEAL_NEEDS_RESPONSE = "appeal_needs_response"
    APPEAL_UNDER_REVIEW = "appeal_under_review"
    WON = "won"
    LOST = "lost"
    PREVENTED = "prevented"

    @property
    def is_inquiry(self) -> bool:
        return self.value.startswith("warning_")


class PaymentStatus(StrEnum):
    """``payments.status``: Stripe's PaymentIntent status, plus two words of our own."""

    CREATED = "created"
    """Our row exists; Stripe has not given us its PaymentIntent yet."""
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """The last attempt was declined (the intent takes another payment method)."""

    @property
    def is_final(self) -> bool:
        return self in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED)


class PaymentDisputeState(StrEnum):
    """``payments.dispute_status``: where the disputes on the payment's charge stand, in
    our words. With several disputes, the one that matters most is shown (an active one
    before a decided one); the tokens follow the sum of their money either way."""

    INQUIRY = "inquiry"
    """An inquiry is open (``warning_needs_response``/``warning_under_review``)."""
    OPEN = "open"
    """A chargeback is open and no money has been withdrawn (yet)."""
    FUNDS_WITHDRAWN = "funds_withdrawn"
    """Stripe took the money back and has not returned it (open, or appealed)."""
    WON = "won"
    LOST = "lost"
    CLOSED = "closed"
    """An inquiry closed, or a dispute prevented, without a chargeback: nothing moved."""
    UNKNOWN = "unknown"
    """Stripe reports a status we do not know; its money still decides the tokens."""


class MoneyMismatch(StrEnum):
    """``payments.stripe_mismatch``: why Stripe's intent is not the purchase we recorded."""

    AMOUNT = "amount_mismatch"
    CURRENCY = "currency_mismatch"
    METADATA = "metadata_mismatch"


def _check_in(column: str, enum: type[StrEnum], *, nullable: bool = False) -> CheckConstraint:
    values = ", ".join(f"'{m.value}'" for m in enum)
    condition = f"{column} IN ({values})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return CheckConstraint(condition, name=f"{column}_known")


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index("uq_payments_user_idempotency", "user_id", "idempotency_key", unique=True),
        Index("ix_payments_user_id_id", "user_id", "id"),
        Index("ix_payments_status", "status"),
        _check_in("status", PaymentStatus),
        _check_in("dispute_status", PaymentDisputeState, nullable=True),
        _check_in("stripe_mismatch", MoneyMismatch, nullable=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    tier: Mapped[str] = mapped_column(String(64))
    tokens: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(
        String(255), unique=True, nullable=True
    )
    status: Mapped[str] = mapped_column(String(32), default=PaymentStatus.CREATED)
    tokens_credited: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Money given back so far: refunds that are not failed or canceled, plus disputed
    #: funds withdrawn and not reinstated (capped at the amount paid).
    amount_refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    dispute_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Stripe's intent disagrees with our row (e.g. its metadata was edited): shown to
    #: operators. It blocks crediting; it never blocks a reversal once credited.
    stripe_mismatch: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: When the Stripe state last applied to this row began to be read: an older read
    #: (a slow sync racing a newer one) never moves the money back.
    stripe_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventStatus(StrEnum):
    """Where an event stands in the inbox.

    ``received`` and ``failed`` wait for the worker (``failed`` only after its
    ``next_attempt_at``); ``processing`` is claimed by a worker until ``claimed_until``
    (after which another worker may take it: its first worker died). The rest are final:
    ``handled`` (its effect is committed), ``ignored`` (nothing for us in it),
    ``unprocessable`` (it can never be applied: an id Stripe refuses, an object that does not
    exist) and ``dead`` (it failed ``WEBHOOK_MAX_ATTEMPTS`` times; an operator may
    process it again).
    """

    RECEIVED = "received"
    PROCESSING = "processing"
    HANDLED = "handled"
    IGNORED = "ignored"
    FAILED = "failed"
    UNPROCESSABLE = "unprocessable"
    DEAD = "dead"


class AckStatus(StrEnum):
    """What the webhook request answers about an event it was sent (``WebhookAck.status``):
    the inbox status it was recorded in, or ``duplicate``."""

    RECEIVED = EventStatus.RECEIVED.value
    """Recorded, to be applied by the webhook worker."""
    DUPLICATE = "duplicate"
    """This event id was recorded before; nothing changed."""
    IGNORED = EventStatus.IGNORED.value
    """Nothing in it for us."""
    UNPROCESSABLE = EventStatus.UNPROCESSABLE.value
    """It can never be applied (recorded as such, never retried)."""
    HANDLED = EventStatus.HANDLED.value
    """No longer sent (the request no longer applies events); kept for older clients."""


#: Statuses the worker picks up (``processing`` too, once its claim has run out).
PENDING_EVENT_STATUSES = (EventStatus.RECEIVED, EventStatus.FAILED)
FINAL_EVENT_STATUSES = (
    EventStatus.HANDLED,
    EventStatus.IGNORED,
    EventStatus.UNPROCESSABLE,
    EventStatus.DEAD,
)


def _in(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in enum)})"


class WebhookEvent(Base):
    """The inbox: one row per Stripe event id, whatever the number of deliveries.

    The whole event is kept (``payload``), so the worker applies it without asking
    Stripe for it again; the PaymentIntent (or, for a dispute that does not name it, the
    charge) it is about is computed once, when it is recorded.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_status_received_at", "status", "received_at"),
        Index("ix_webhook_events_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint(_in("status", EventStatus), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReconcileCheckpoint(Base):
    """How far reconcile has read a Stripe list (its events), so a restart resumes there."""

    __tablename__ = "reconcile_checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Unix seconds (Stripe's ``created``) up to which every object has been read.
    created_s: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StripeCustomer(Base):
    """The Stripe Customer of one of our users: subscriptions and saved cards hang off it.

    Created on first need (a subscription, a saved card), once per user: the Stripe call
    carries the idempotency key ``customer:<user_id>`` and the row's primary key is the
    user, so two racing requests end with one Customer and one row.
    """

    __tablename__ = "stripe_customers"

    user_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    #: Development only (``SUBSCRIPTION_TEST_CLOCKS``): the Stripe test clock the Customer
    #: lives on, so a test or a developer can move its subscriptions through time.
    test_clock_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AutoTopupState(StrEnum):
    """``auto_topup_settings.state``: whether a charge below the threshold buys a pack."""

    OFF = "off"
    ACTIVE = "active"
    PAUSED = "paused"
    """A top-up needed the person (3D Secure) or was declined: nothing is tried until
    they finish it on the payment page or turn auto top-up on again."""


class AutoTopupAttemptState(StrEnum):
    """``auto_topups.state``. ``pending`` is in flight: at most one per user (a partial
    unique index)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ACTION_REQUIRED = "action_required"


#: The attempt states that count as "in flight" (the partial unique index's condition).
IN_FLIGHT_TOPUP = "state = 'pending'"


class AutoTopupSettings(Base):
    """One person's auto top-up: buy ``tier`` off-session with their saved card when a
    charge leaves ``available`` below ``threshold``, within monthly caps."""

    __tablename__ = "auto_topup_settings"
    __table_args__ = (
        check_in("state", AutoTopupState),
        CheckConstraint("threshold >= 0", name="threshold_non_negative"),
        CheckConstraint("monthly_max_count >= 0", name="max_count_non_negative"),
        CheckConstraint("monthly_max_amount >= 0", name="max_amount_non_negative"),
    )

    user_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default=AutoTopupState.OFF)
    paused_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    threshold: Mapped[int] = mapped_column(BigInteger, default=0)
    tier: Mapped[str] = mapped_column(String(64))
    monthly_max_count: Mapped[int] = mapped_column(Integer, default=0)
    monthly_max_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_method_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    #: The payment page's link to finish the intent that paused it (3D Secure, a new card).
    action_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AutoTopup(Base):
    """One auto top-up attempt: a purchase (``payment_id``) made off-session. Its outcome
    is learnt from the PaymentIntent by the one sync, exactly once (a conditional update
    out of ``pending``)."""

    __tablename__ = "auto_topups"
    __table_args__ = (
        check_in("state", AutoTopupAttemptState),
        Index(
            "uq_auto_topups_one_in_flight",
            "user_id",
            unique=True,
            postgresql_where=text(IN_FLIGHT_TOPUP),
            sqlite_where=text(IN_FLIGHT_TOPUP),
        ),
        Index("ix_auto_topups_user_id_created_at", "user_id", "created_at"),
        Index("uq_auto_topups_payment_id", "payment_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(16), default=AutoTopupAttemptState.PENDING)
    tier: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    payment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("payments.id"), nullable=True
    )
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
