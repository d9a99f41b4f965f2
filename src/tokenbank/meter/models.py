from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import UTCDateTime, utcnow


class MeterHold(Base):
    """What a metered feature's hold was for: the feature, how many units, and the price
    per unit when it was held (a partial commit charges at that price, whatever the price
    book says by then). One row per ledger hold, written in the hold's transaction."""

    __tablename__ = "meter_holds"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_tokens > 0", name="unit_tokens_positive"),
    )

    reservation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("token_reservations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    feature: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    unit_tokens: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
