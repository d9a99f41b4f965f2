"""Notifications: what the app tells a person (in the app's list, and by email once)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, check_in, utcnow


class NotificationKind(StrEnum):
    BALANCE_LOW = "balance_low"
    TOPUP_SUCCEEDED = "topup_succeeded"
    TOPUP_FAILED = "topup_failed"
    TOPUP_PAUSED = "topup_paused"
    TOPUP_DISABLED = "topup_disabled"
    LOTS_EXPIRING = "lots_expiring"
    RENEWAL_FAILED = "renewal_failed"
    SUBSCRIPTION_RENEWED = "subscription_renewed"


class EmailState(StrEnum):
    """``notifications.email_state``: its email, sent once by live processes; at least
    once across a crash (``notifications.flows``)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    """Email alerts are off, or the address is unknown."""
    FAILED = "failed"


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        check_in("kind", NotificationKind),
        check_in("email_state", EmailState),
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_email_state", "email_state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    email_state: Mapped[str] = mapped_column(String(16), default=EmailState.PENDING)
    #: When the email was claimed (while ``sending``: the claim's stamp, see
    #: ``NOTIFICATION_MAIL_CLAIM_LEASE_S``), then when it was sent (or failed).
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NotificationSettings(Base):
    """A person's alert settings, and which low-balance thresholds have fired (re-armed
    when the balance is seen at or above them again)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    low_balance_thresholds: Mapped[list[int]] = mapped_column(JSON, default=list)
    email_alerts: Mapped[bool] = mapped_column(Boolean, default=True)
    fired_thresholds: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LotExpiryAlert(Base):
    """A lot whose coming expiry the person was told about: once per lot."""

    __tablename__ = "lot_expiry_alerts"

    lot_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("token_lots.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    notification_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
