from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, check_in, utcnow

#: The longest note a person can leave with a refund request.
MAX_REFUND_NOTE = 500

class FinishReason(StrEnum):
    """Why a charged reply ended (the make-good policy charges by it, see ``chat.flows``)."""

    STOP = "stop"  # the model finished
    LENGTH = "length"  # the output limit (the cap's max tokens) stopped it
    CONTENT_FILTER = "content_filter"  # the provider withheld the rest
    ERROR = "error"  # the provider failed after some text was sent
    CUT = "cut"  # the client left after some text was sent


class Chat(Base):
    __tablename__ = "chats"
    __table_args__ = (
        Index("ix_chats_user_id_id", "user_id", "id"),
        CheckConstraint("cost_cap IS NULL OR cost_cap >= 1", name="cost_cap_positive"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    #: A reply's end (see :class:`FinishReason`); None for the person's messages.
    finish_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: The price book version a reply was charged at; None for the person's messages.
    price_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The model this chat's replies use; None: the default model.
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: The most tokens one reply may cost in this chat; None: no cap of the person's own.
    cost_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_chat_id_id", "chat_id", "id"),
        # A reply is stored once per generate idempotency key.
        Index(
            "uq_messages_chat_role_idempotency", "chat_id", "role", "idempotency_key", unique=True
        ),
        check_in("finish_reason", FinishReason, nullable=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    tokens_charged: Mapped[int] = mapped_column(Integer, default=0)
    reply_to_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: A reply cut short after some of its text was sent: saved (and charged) as far as it got.
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: A reply's end (see :class:`FinishReason`); None for the person's messages.
    finish_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: The price book version a reply was charged at; None for the person's messages.
    price_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefundReason(StrEnum):
    """``reply_refunds.reason``: why a person asked for a reply's tokens back."""

    WRONG = "wrong"
    """The answer was wrong."""
    INCOMPLETE = "incomplete"
    """The answer stopped short or missed the question."""
    HARMFUL = "harmful"
    """The answer was harmful or offensive."""
    OTHER = "other"
    """Anything else (the note says what)."""


class ReplyRefund(Base):
    """A charged AI reply whose tokens went back to its owner: at most one per message
    (the unique ``message_id``, and the ledger's key ``refund:<message id>``)."""

    __tablename__ = "reply_refunds"
    __table_args__ = (
        Index("ix_reply_refunds_user_id_created_at", "user_id", "created_at"),
        Index("ix_reply_refunds_created_at", "created_at"),
        CheckConstraint("tokens > 0", name="tokens_positive"),
        check_in("reason", RefundReason),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    transaction_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("token_transactions.id"))
    reason: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(MAX_REFUND_NOTE), nullable=True)
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tokens: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
