from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import UTCDateTime, utcnow


class PriceVersion(Base):
    """One version of the price book; the newest is in force. Versions are never changed:
    every charge records the version it used."""

    __tablename__ = "price_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    book: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The admin who wrote it; None for a version seeded from configuration.
    created_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
