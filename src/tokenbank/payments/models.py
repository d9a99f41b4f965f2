"""Payment tables: our record of each PaymentIntent and the webhook inbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, utcnow


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index("uq_payments_user_idempotency", "user_id", "idempotency_key", unique=True),
        Index("ix_payments_user_id_id", "user_id", "id"),
        Index("ix_payments_status", "status"),
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
    status: Mapped[str] = mapped_column(String(32), default="created")
    tokens_credited: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    dispute_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
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
