"""Outbound webhooks: the operator's endpoints, one delivery per (event, endpoint), and
every attempt at a delivery."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, check_in, utcnow


class EventType(StrEnum):
    """Every event an endpoint can subscribe to (``"*"`` subscribes to all of them).

    A new kind of fact is a new member here; :func:`tokenbank.outbound.service.emit` takes
    only these."""

    PURCHASE_SUCCEEDED = "purchase.succeeded"
    """A pack's tokens were credited (the payment's sync, exactly once per purchase)."""
    PURCHASE_REFUNDED = "purchase.refunded"
    """Tokens of a purchase were taken back (a refund, or disputed funds withdrawn)."""
    BALANCE_LOW = "balance.low"
    TOPUP_SUCCEEDED = "topup.succeeded"
    TOPUP_FAILED = "topup.failed"
    SUBSCRIPTION_RENEWED = "subscription.renewed"


ALL_EVENTS = "*"


class DeliveryStatus(StrEnum):
    """Where a delivery stands; mirrors the inbound inbox (:class:`EventStatus`).

    ``pending`` and ``failed`` wait for the worker (``failed`` until its
    ``next_attempt_at``); ``processing`` is claimed until ``claimed_until`` (then another
    worker may take it: the first died). Final: ``delivered`` (the endpoint answered
    2xx), ``dead`` (``OUTBOUND_WEBHOOK_MAX_ATTEMPTS`` used up; an operator may retry it),
    ``canceled`` (its endpoint was removed or disabled before it went out)."""

    PENDING = "pending"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    CANCELED = "canceled"


WAITING_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
FINAL_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.DEAD, DeliveryStatus.CANCELED)


class WebhookEndpoint(Base):
    """A URL of the operator's that receives signed events. The secret is kept in clear
    (it signs every delivery) and shown to the operator once, when the endpoint is made
    or its secret rolled. A rolled secret (``previous_secret``) keeps signing beside the
    new one until ``previous_secret_expires_at``, so receivers can switch without a gap."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True
    )
    #: Comma-separated :class:`EventType` values, sorted, or ``*`` for every event.
    enabled_events: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Removed endpoints are kept (their delivery log with them) but receive nothing.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookDelivery(Base):
    """The outbox: one event for one endpoint, written in the transaction of the fact it
    reports, so it exists if and only if that fact committed. ``payload`` is the exact
    body sent (and signed) on every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("uq_webhook_deliveries_endpoint_event", "endpoint_id", "event_id", unique=True),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        check_in("status", DeliveryStatus),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookDeliveryAttempt(Base):
    """One POST of a delivery: what the endpoint answered (or why there was no answer)."""

    __tablename__ = "webhook_delivery_attempts"
    __table_args__ = (Index("ix_webhook_delivery_attempts_delivery_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
