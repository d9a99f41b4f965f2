from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, utcnow


class ApiKeyScope(StrEnum):
    """What a key may do; a route needs one of these and answers 403 without it."""

    READ = "read"
    """Balances and transactions of any of the app's customers."""
    CHARGE = "charge"
    """Holds, commits, releases and one-shot charges (and creating customers)."""
    GRANT = "grant"
    """Free tokens (promotions, plans the host bills itself)."""
    CHECKOUT = "checkout"
    """Start purchases paid by card through Stripe."""


class ApiKey(Base):
    """One service-API key. Only the SHA-256 of its secret is stored, so a copy of the
    database calls nothing; the secret is shown once, when the key is created or rotated."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("length(scopes) > 0", name="scopes_present"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The first characters of the secret (``tbk_`` and 8 more), to recognise a key.
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Comma-separated :class:`ApiKeyScope` values, sorted.
    scopes: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The key this one replaced (rotation).
    rotated_from_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )
    created_by_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
