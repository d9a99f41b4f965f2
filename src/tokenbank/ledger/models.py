"""Ledger tables. See :mod:`tokenbank.ledger.service` for the guarantees they carry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, utcnow


class TokenAccount(Base):
    __tablename__ = "token_accounts"
    __table_args__ = (CheckConstraint("reserved >= 0", name="reserved_non_negative"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenTransaction(Base):
    """Append-only: rows are never updated or deleted."""

    __tablename__ = "token_transactions"
    __table_args__ = (
        Index("ix_token_transactions_user_id_id", "user_id", "id"),
        Index(
            "uq_token_transactions_user_idempotency",
            "user_id",
            "idempotency_key",
            unique=True,
        ),
        # Guarantee 5: one PaymentIntent credits tokens at most once.
        Index(
            "uq_token_transactions_purchase_pi",
            "stripe_payment_intent_id",
            unique=True,
            sqlite_where=text("transaction_type = 'purchase'"),
            postgresql_where=text("transaction_type = 'purchase'"),
        ),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    transaction_type: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(500), default="")
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reservation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenReservation(Base):
    __tablename__ = "token_reservations"
    __table_args__ = (
        Index("uq_token_reservations_user_idempotency", "user_id", "idempotency_key", unique=True),
        Index("ix_token_reservations_status_expires_at", "status", "expires_at"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    idempotency_key: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(500), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
