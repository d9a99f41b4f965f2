from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import UTCDateTime, utcnow


class Customer(Base):
    """A host app's user, known by the host's own id (``external_id``).

    Every customer is a ``users`` row (the ledger keeps accounts per user); tokenbank's own
    sign-ups are customers without a row here. A host's customer has no password and a
    username no sign-up can take (it starts with ``~``), so it never signs in here.
    """

    __tablename__ = "customers"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
