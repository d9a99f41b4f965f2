from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import UTCDateTime


class RateLimitBucket(Base):
    """Per-window counters shared by every app process through the database (the sliding
    window weighs the previous window's count in, see ``service``)."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
