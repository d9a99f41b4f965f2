"""Ledger tables, the words their rows may hold, and the records the ledger reads from them.

See :mod:`tokenbank.ledger.service` for the guarantees they carry. Each fact is stated
once here: the enums are the only spelling of a type or status (the tables' CHECK
constraints are built from them), and each record's fields are the only list of the
columns the ledger reads (:mod:`tokenbank.ledger.repository` builds its column lists and
SQL text from them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tokenbank.db import Base
from tokenbank.types import BigIntPK, UTCDateTime, check_in, utcnow

R = TypeVar("R")

#: Far above any real pack, far below 64-bit overflow.
MAX_TOKENS = 1_000_000_000
#: The longest description an entry or a hold keeps (longer ones are cut).
MAX_DESCRIPTION = 500
#: The longest idempotency key (see :mod:`tokenbank.ledger.keys`).
MAX_KEY = 255


class TransactionType(StrEnum):
    """``token_transactions.transaction_type``: why a balance moved."""

    PURCHASE = "purchase"
    """Tokens of a paid PaymentIntent; one per intent (guarantee 5)."""
    DEDUCTION = "deduction"
    """Tokens spent: a committed hold, or a direct spend."""
    GRANT = "grant"
    """Tokens given: the sign-up bonus, an admin's grant."""
    ADJUSTMENT = "adjustment"
    """An admin's correction, either sign; a negative one never overdraws."""
    PURCHASE_REVERSAL = "purchase_reversal"
    """Tokens taken back when a payment's money went back (refund, lost dispute); the only
    entry that may leave a balance negative (guarantee 4)."""
    PURCHASE_REINSTATEMENT = "purchase_reinstatement"
    """Tokens given back when the money returned (a dispute won, a refund that failed)."""
    REFUND = "refund"
    """Tokens given back for a charged AI reply its owner asked to refund (one per reply,
    keyed by the message: :func:`tokenbank.ledger.keys.reply_refund`)."""
    ALLOTMENT = "allotment"
    """A subscription invoice's monthly tokens (one per invoice; its lot expires per plan)."""
    ALLOTMENT_REVERSAL = "allotment_reversal"
    """Tokens of an allotment taken back (its invoice refunded or disputed); like a
    ``purchase_reversal``, it may leave a balance negative (guarantee 4)."""
    EXPIRY = "expiry"
    """A lot's unspent, unheld remainder, written off when it expired; one per lot, by the
    expiry job (:func:`tokenbank.ledger.service.expire_lots`)."""


class LotSource(StrEnum):
    """``token_lots.source``: which kind of credit made a lot."""

    PURCHASE = "purchase"
    """A paid pack (never expires by default)."""
    ALLOTMENT = "allotment"
    """A subscription's monthly tokens (expire per plan)."""
    GRANT = "grant"
    """A sign-up bonus, promotion or an admin's grant (``GRANT_EXPIRES_DAYS``)."""
    ADJUSTMENT = "adjustment"
    """An admin's positive correction; also the one lot per account the lots migration
    made from each balance that existed before lots."""
    REINSTATEMENT = "reinstatement"
    """Tokens given back when a reversed payment's money returned."""


class ReservationStatus(StrEnum):
    """``token_reservations.status``: a hold resolves once, from pending (guarantee 6)."""

    PENDING = "pending"
    """Holding ``amount`` tokens: they count in the account's ``reserved``."""
    COMMITTED = "committed"
    """Became a ``deduction`` (its key: :func:`tokenbank.ledger.keys.committed_hold`)."""
    RELEASED = "released"
    """Given back by the caller; nothing was spent."""
    EXPIRED = "expired"
    """Given back by the sweeper after ``expires_at``; nothing was spent."""


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
            sqlite_where=text(f"transaction_type = '{TransactionType.PURCHASE}'"),
            postgresql_where=text(f"transaction_type = '{TransactionType.PURCHASE}'"),
        ),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        check_in("transaction_type", TransactionType),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    transaction_type: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION), default="")
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(MAX_KEY), nullable=True)
    reservation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenReservation(Base):
    __tablename__ = "token_reservations"
    __table_args__ = (
        Index("uq_token_reservations_user_idempotency", "user_id", "idempotency_key", unique=True),
        Index("ix_token_reservations_status_expires_at", "status", "expires_at"),
        CheckConstraint("amount > 0", name="amount_positive"),
        check_in("status", ReservationStatus),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=ReservationStatus.PENDING)
    idempotency_key: Mapped[str] = mapped_column(String(MAX_KEY))
    description: Mapped[str] = mapped_column(String(MAX_DESCRIPTION), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TokenLot(Base):
    """One credit's tokens, spent in the order of :data:`SPEND_ORDER`.

    ``remaining`` is what is left of ``amount`` (every take is a :class:`TokenLotMove`);
    ``held`` is the part of it pending holds set aside (their allocations are
    :class:`TokenReservationLot` rows). A refund that needs held tokens takes them and
    shrinks those holds' allocations, so ``held <= remaining`` always; such a hold's
    commit takes the rest from other lots (:func:`tokenbank.ledger.lots.take`)."""

    __tablename__ = "token_lots"
    __table_args__ = (
        Index("ix_token_lots_user_id_id", "user_id", "id"),
        Index("ix_token_lots_expires_at", "expires_at"),
        Index("ix_token_lots_transaction_id", "transaction_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_amount"),
        CheckConstraint("held >= 0 AND held <= remaining", name="held_in_remaining"),
        check_in("source", LotSource),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    priority: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The credit that made the lot (None for the lots the lots migration made).
    transaction_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Its ``expiry`` entry, once the expiry job wrote it.
    expired_transaction_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TokenLotMove(Base):
    """Tokens taken from a lot (``amount`` < 0): by a spend, a refund, an expiry, or a
    credit paying off a negative balance. Append-only, like the entries."""

    __tablename__ = "token_lot_moves"
    __table_args__ = (
        Index("ix_token_lot_moves_lot_id", "lot_id"),
        CheckConstraint("amount < 0", name="amount_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    lot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("token_lots.id"))
    transaction_id: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenReservationLot(Base):
    """A pending hold's tokens in one lot (its allocation, made at reserve time)."""

    __tablename__ = "token_reservation_lots"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_non_negative"),)

    reservation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("token_reservations.id"), primary_key=True
    )
    lot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("token_lots.id"), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class Lot:
    """A ``token_lots`` row, as the ledger returns it."""

    id: int
    user_id: int
    source: str
    amount: int
    remaining: int
    held: int
    priority: int
    expires_at: datetime | None
    created_at: datetime
    transaction_id: int | None
    expired_transaction_id: int | None


# --- what the ledger reads: plain records (no validation on the charge path) ----------


@dataclass(frozen=True)
class Balance:
    """A ``token_accounts`` row."""

    user_id: int
    balance: int
    reserved: int
    created_at: datetime
    updated_at: datetime

    @property
    def available(self) -> int:
        return self.balance - self.reserved


@dataclass(frozen=True)
class Entry:
    """A ``token_transactions`` row, as every ledger path returns it.

    Its fields (but ``replayed``) are :data:`ENTRY_FIELDS`, the one list of the columns
    an entry is read with, in SQL and in Python.
    """

    id: int
    user_id: int
    transaction_type: str
    amount: int
    balance_after: int
    description: str
    stripe_payment_intent_id: str | None
    idempotency_key: str | None
    reservation_id: int | None
    actor_user_id: int | None
    created_at: datetime
    #: True when this call found the entry already written (an idempotent replay).
    replayed: bool = False

    @classmethod
    def of(cls, row: Mapping[Any, Any], *, replayed: bool = False) -> Entry:
        """From a row of either dialect, columns by name (extra columns are ignored)."""
        return _build(cls, _entry_values(row), replayed)


@dataclass(frozen=True)
class Reservation:
    """A ``token_reservations`` row (its fields but ``replayed``: :data:`RESERVATION_FIELDS`)."""

    id: int
    user_id: int
    amount: int
    status: str
    idempotency_key: str
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    #: True when this call found the hold already made (an idempotent replay).
    replayed: bool = False

    @classmethod
    def of(cls, row: Mapping[Any, Any], *, replayed: bool = False) -> Reservation:
        """From a row of either dialect, columns by name (extra columns are ignored)."""
        return _build(cls, _reservation_values(row), replayed)


def _build(record: Callable[..., R], values: tuple[Any, ...], replayed: bool) -> R:
    return record(*values, replayed)


def _columns_of(record: type[Entry] | type[Reservation]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record) if f.name != "replayed")


#: The columns an entry is read with, in :class:`Entry`'s order.
ENTRY_FIELDS = _columns_of(Entry)
#: The columns a hold is read with, in :class:`Reservation`'s order.
RESERVATION_FIELDS = _columns_of(Reservation)
_entry_values = itemgetter(*ENTRY_FIELDS)
_reservation_values = itemgetter(*RESERVATION_FIELDS)
