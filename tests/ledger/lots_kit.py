"""Token lot helpers: credits, spends and holds each in its own transaction, and the
ledger's 200-charge race over many lots, shared by the tests that take a hold in different
ways (import as ``from ledger.lots_kit import ...``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import text

from ledger.test_service import assert_ledger_clean, balance_of
from tokenbank.db import Database, Unit
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InsufficientTokens
from tokenbank.ledger.models import Reservation
from tokenbank.types import utcnow


async def allot(
    db: Database, user_id: int, tokens: int, expires_at: datetime | None, invoice: str = "in_1"
) -> None:
    async with db.transaction() as session:
        await ledger.credit_allotment(
            session,
            user_id,
            tokens,
            idempotency_key=keys.allotment(invoice),
            expires_at=expires_at,
            description="Pro plan, monthly tokens",
            reference=invoice,
        )


async def buy(db: Database, user_id: int, tokens: int, pi: str = "pi_1") -> None:
    async with db.transaction() as session:
        await ledger.credit_purchase(session, user_id, tokens, pi, "pack")


async def spend(db: Database, user_id: int, tokens: int, key: str) -> None:
    async with db.transaction() as session:
        await ledger.spend(session, user_id, tokens, "reply", idempotency_key=key)


async def reserve(db: Database, user_id: int, tokens: int, key: str) -> Reservation:
    async def work(unit: Unit) -> Reservation:
        return await ledger.reserve(unit, user_id, tokens, idempotency_key=key, ttl_s=600)

    return await db.run(work)


async def commit(db: Database, reservation_id: int, tokens: int | None = None) -> None:
    async def work(unit: Unit) -> None:
        await ledger.commit(unit, reservation_id, "reply", tokens=tokens)

    await db.run(work)


async def release(db: Database, reservation_id: int) -> None:
    async def work(unit: Unit) -> None:
        await ledger.release(unit, reservation_id)

    await db.run(work)


#: How a charge takes its hold: (user id, tokens, idempotency key) -> the hold.
Hold = Callable[[int, int, str], Awaitable[Reservation]]


async def race_charges_across_lots(db: Database, user_id: int, hold: Hold) -> None:
    """200 concurrent charges (holds taken by ``hold`` then committed or released, and
    direct spends) on ``user_id``'s account, given 24 lots of different priorities and
    expiries: never overdrawn, no hold allocated from tokens a concurrent charge took (the
    CHECK would refuse it), the lots hold exactly the balance, the ledger checks clean."""
    now = utcnow()
    for i in range(12):
        await allot(db, user_id, 9 + i, now + timedelta(days=1 + i), f"in_{uuid.uuid4().hex}")
        await buy(db, user_id, 5 + i, f"pi_{uuid.uuid4().hex}")
    total = (await balance_of(db, user_id)).balance
    outcomes: list[int] = []

    async def charge(i: int) -> None:
        try:
            if i % 3 == 0:
                await spend(db, user_id, 1 + i % 4, f"spend-{i}")
            else:
                size = 1 + i % 5
                held = await hold(user_id, size, f"hold-{i}")
                if i % 7 == 0:
                    await release(db, held.id)
                    outcomes.append(0)
                    return
                await commit(db, held.id, tokens=max(size - 1, 1) if i % 2 else None)
            outcomes.append(1)
        except InsufficientTokens:
            outcomes.append(-1)

    # Every charge ends before the test looks (or fails): none is left running.
    errors = [
        e
        for e in await asyncio.gather(*(charge(i) for i in range(200)), return_exceptions=True)
        if e is not None
    ]
    assert errors == []
    b = await balance_of(db, user_id)
    assert b.balance >= 0 and b.reserved == 0
    assert -1 in outcomes and 1 in outcomes  # it ran out, and some were served
    async with db.transaction() as session:
        left = await session.execute(
            text("SELECT sum(remaining), sum(held) FROM token_lots WHERE user_id = :u"),
            {"u": user_id},
        )
        assert tuple(left.one()) == (b.balance, 0)
    assert b.balance < total
    await assert_ledger_clean(db)
