"""The payments table speaks exactly the enums' words (its CHECKs come from migrations,
frozen there; the enums are the code's one source): every member is accepted, anything
else refused."""

from __future__ import annotations

from enum import StrEnum

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from tokenbank.auth.models import User
from tokenbank.db import Database
from tokenbank.payments import repository as repo
from tokenbank.payments.models import MoneyMismatch, Payment, PaymentDisputeState, PaymentStatus
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio

COLUMNS: tuple[tuple[str, type[StrEnum]], ...] = (
    ("status", PaymentStatus),
    ("dispute_status", PaymentDisputeState),
    ("stripe_mismatch", MoneyMismatch),
)


async def _payment(db: Database) -> int:
    async with db.transaction() as session:
        user = User(username="schema", email="schema@example.com", password_hash="-")
        session.add(user)
        await session.flush()
        payment_id = await repo.insert_payment(
            session, user_id=user.id, tier="starter", tokens=100, amount_cents=500,
            currency="USD", now=utcnow(),
        )
    assert payment_id is not None
    return payment_id


async def test_every_word_of_the_enums_is_accepted_and_nothing_else(db: Database) -> None:
    payment_id = await _payment(db)
    for column, enum in COLUMNS:
        for member in enum:
            async with db.transaction() as session:
                await session.execute(
                    update(Payment).where(Payment.id == payment_id).values({column: member})
                )
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await session.execute(
                    update(Payment).where(Payment.id == payment_id).values({column: "done"})
                )


async def test_a_new_row_is_created_with_nothing_credited(db: Database) -> None:
    payment_id = await _payment(db)
    async with db.transaction() as session:
        row = await repo.get_payment(session, payment_id)
        assert row is not None
        assert (row.status, row.currency, row.tokens_credited, row.reversed_tokens) == (
            PaymentStatus.CREATED, "usd", 0, 0)
        assert row.amount_refunded_cents == 0 and row.version == 0
