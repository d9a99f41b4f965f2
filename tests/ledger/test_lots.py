"""Token lots: every credit makes one; spends, holds, commits, refunds and expiry take from
them in the documented order, and the ledger's lot rules hold (``ledger.check``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from ledger.lots_kit import (
    allot,
    buy,
    commit,
    race_charges_across_lots,
    release,
    reserve,
    spend,
)
from ledger.test_service import assert_ledger_clean, balance_of, new_account
from tokenbank.db import Database
from tokenbank.ledger import keys, lots
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InsufficientTokens
from tokenbank.ledger.models import Lot, Reservation
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio


class Clock:
    """The ledger's clock, moved by the test (no sleeping)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock()
    monkeypatch.setattr(ledger, "utcnow", c)
    yield c


async def lots_of(db: Database, user_id: int) -> dict[str, Lot]:
    """The account's lots by source (one each in these tests), oldest last."""
    async with db.transaction() as session:
        return {lot.source: lot for lot in reversed(await ledger.list_lots(session, user_id))}


def remaining(found: dict[str, Lot]) -> dict[str, int]:
    return {source: lot.remaining for source, lot in found.items()}


async def test_every_credit_makes_a_lot_with_its_defaults(db: Database, clock: Clock) -> None:
    user_id = await new_account(db, 10)  # a grant
    await buy(db, user_id, 100)
    await allot(db, user_id, 300, clock.now + timedelta(days=60))
    found = await lots_of(db, user_id)
    assert {s: (lot.amount, lot.remaining, lot.priority) for s, lot in found.items()} == {
        "grant": (10, 10, 20),
        "purchase": (100, 100, 50),
        "allotment": (300, 300, 10),
    }
    assert found["purchase"].expires_at is None and found["grant"].expires_at is None
    assert found["allotment"].expires_at == clock.now + timedelta(days=60)
    assert (await balance_of(db, user_id)).balance == 410
    await assert_ledger_clean(db)


async def test_a_spend_takes_the_allotment_first_then_the_grant_then_the_pack(
    db: Database, clock: Clock
) -> None:
    user_id = await new_account(db, 10)
    await buy(db, user_id, 100)
    await allot(db, user_id, 30, clock.now + timedelta(days=60))
    await spend(db, user_id, 35, "s1")
    assert remaining(await lots_of(db, user_id)) == {"grant": 5, "purchase": 100, "allotment": 0}
    await spend(db, user_id, 10, "s2")
    assert remaining(await lots_of(db, user_id)) == {"grant": 0, "purchase": 95, "allotment": 0}
    await assert_ledger_clean(db)


async def test_a_hold_takes_from_lots_in_order_and_its_commit_resolves_exactly_that(
    db: Database, clock: Clock
) -> None:
    user_id = await new_account(db, 10)
    await allot(db, user_id, 30, clock.now + timedelta(days=60))
    first = await reserve(db, user_id, 35, "h1")
    second = await reserve(db, user_id, 5, "h2")
    async with db.transaction() as session:
        held = {lot.source: lot.remaining for lot in await ledger.list_lots(session, user_id)}
        rows = await session.execute(text("SELECT source, held FROM token_lots ORDER BY id"))
        assert held == {"grant": 10, "allotment": 30}
    assert sorted(rows.all()) == [("allotment", 30), ("grant", 10)]
    await assert_ledger_clean(db)
    await commit(db, first.id, tokens=32)  # a partial commit: 30 allotment, 2 grant
    assert remaining(await lots_of(db, user_id)) == {"grant": 8, "allotment": 0}
    await release(db, second.id)
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (8, 0)
    await assert_ledger_clean(db)
    await spend(db, user_id, 8, "rest")  # everything is free again
    await assert_ledger_clean(db)


async def test_nothing_is_spent_or_held_from_an_expired_lot(db: Database, clock: Clock) -> None:
    user_id = await new_account(db)
    await buy(db, user_id, 5)
    await allot(db, user_id, 100, clock.now + timedelta(days=1))
    clock.advance(days=1)
    with pytest.raises(InsufficientTokens) as refused:
        await spend(db, user_id, 6, "late")
    assert (refused.value.balance, refused.value.required) == (5, 6)
    with pytest.raises(InsufficientTokens) as refused:
        await reserve(db, user_id, 6, "late-hold")
    assert refused.value.balance == 5
    await spend(db, user_id, 5, "pack")  # the pack is still good
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (100, 0)  # until the expiry job writes it off
    await assert_ledger_clean(db)


async def test_expiry_writes_one_entry_per_lot_exactly_once(db: Database, clock: Clock) -> None:
    user_id = await new_account(db)
    await buy(db, user_id, 50)
    await allot(db, user_id, 120, clock.now + timedelta(days=60))
    await spend(db, user_id, 20, "s")
    async with db.transaction() as session:  # not yet
        assert await ledger.expire_lots(session, now=clock.now + timedelta(days=59)) == 0
    later = clock.now + timedelta(days=61)
    results = []
    for _ in range(3):
        async with db.transaction() as session:
            results.append(await ledger.expire_lots(session, now=later))
    assert results == [1, 0, 0]
    async with db.transaction() as session:
        page = await ledger.history(session, user_id, limit=1)
    entry = page.items[0]
    assert (entry.transaction_type, entry.amount, entry.balance_after) == ("expiry", -100, 50)
    found = await lots_of(db, user_id)
    assert found["allotment"].remaining == 0
    assert found["allotment"].expired_transaction_id == entry.id
    await assert_ledger_clean(db)


async def test_concurrent_expiry_runs_write_each_lot_off_once(db: Database, clock: Clock) -> None:
    users = [await new_account(db) for _ in range(6)]
    for i, user_id in enumerate(users):
        await allot(db, user_id, 10 + i, clock.now + timedelta(days=1))
    later = clock.now + timedelta(days=2)

    async def run() -> int:
        async with db.transaction() as session:
            return await ledger.expire_lots(session, now=later)

    counts = await asyncio.gather(*(run() for _ in range(4)), return_exceptions=True)
    assert sum(c for c in counts if isinstance(c, int)) == 6
    async with db.transaction() as session:
        n = await session.execute(
            text("SELECT count(*) FROM token_transactions WHERE transaction_type = 'expiry'")
        )
        assert n.scalar_one() == 6
    for user_id in users:
        assert (await balance_of(db, user_id)).balance == 0
    await assert_ledger_clean(db)


async def test_a_lot_held_at_expiry_waits_for_its_hold(db: Database, clock: Clock) -> None:
    user_id = await new_account(db)
    await allot(db, user_id, 100, clock.now + timedelta(days=1))
    clock.advance(days=1, minutes=-1)
    hold = await reserve(db, user_id, 30, "before-expiry")  # for ten minutes
    clock.advance(minutes=2)
    async with db.transaction() as session:
        assert await ledger.expire_lots(session, now=clock.now) == 0  # a hold draws on it
    await commit(db, hold.id, tokens=20)  # set aside while live: it may still be charged
    async with db.transaction() as session:
        assert await ledger.expire_lots(session, now=clock.now) == 1
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (0, 0)
    await assert_ledger_clean(db)


async def test_a_refund_takes_its_own_lot_first(db: Database, clock: Clock) -> None:
    user_id = await new_account(db, 10)
    await buy(db, user_id, 100, "pi_a")
    await buy(db, user_id, 100, "pi_b")
    await spend(db, user_id, 30, "s")  # the grant (10), then pi_a (20): pi_a has 80 left
    async with db.transaction() as session:
        await ledger.reverse_purchase(
            session, user_id, 100, "pi_b", "refunded", idempotency_key="pi_b:rev"
        )
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT amount, remaining FROM token_lots WHERE user_id = :u ORDER BY id"),
            {"u": user_id},
        )
        assert rows.all() == [(10, 0), (100, 80), (100, 0)]
    # Refunding pi_a takes its 80 and 20 more: nothing is left, the balance is -20.
    async with db.transaction() as session:
        await ledger.reverse_purchase(
            session, user_id, 100, "pi_a", "refunded", idempotency_key="pi_a:rev"
        )
    assert (await balance_of(db, user_id)).balance == -20
    await assert_ledger_clean(db)
    await buy(db, user_id, 50, "pi_c")  # pays the 20 off: its lot starts with 30
    found = await lots_of(db, user_id)
    assert (found["purchase"].amount, found["purchase"].remaining) == (50, 30)
    await assert_ledger_clean(db)


async def test_a_refund_of_held_tokens_leaves_the_commit_to_take_the_rest(
    db: Database, clock: Clock
) -> None:
    user_id = await new_account(db)
    await buy(db, user_id, 100, "pi_a")
    hold = await reserve(db, user_id, 60, "h")
    await buy(db, user_id, 50, "pi_b")
    async with db.transaction() as session:
        await ledger.reverse_purchase(
            session, user_id, 80, "pi_a", "refunded", idempotency_key="pi_a:rev"
        )
    await assert_ledger_clean(db)  # pi_a: 40 free, then 40 of the hold's 60 taken
    await commit(db, hold.id)  # 20 from pi_a's lot, 40 from pi_b's
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (10, 0)
    assert remaining(await lots_of(db, user_id)) == {"purchase": 10}
    await assert_ledger_clean(db)


async def test_an_allotment_reversal_takes_that_allotment_first(db: Database, clock: Clock) -> None:
    user_id = await new_account(db)
    await buy(db, user_id, 100)
    await allot(db, user_id, 300, clock.now + timedelta(days=60), "in_1")
    await allot(db, user_id, 300, clock.now + timedelta(days=90), "in_2")
    async with db.transaction() as session:
        entry = await ledger.reverse_allotment(
            session,
            user_id,
            300,
            allotment_key=keys.allotment("in_2"),
            idempotency_key=keys.allotment_reversal("in_2", 1),
            description="invoice refunded",
        )
    assert (entry.transaction_type, entry.balance_after) == ("allotment_reversal", 400)
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT remaining FROM token_lots WHERE user_id = :u ORDER BY id"),
            {"u": user_id},
        )
        assert [r[0] for r in rows] == [100, 300, 0]
    await assert_ledger_clean(db)


async def test_grants_expire_when_configured(db: Database, clock: Clock) -> None:
    lots.configure(None, grant_expires_days=30)
    try:
        user_id = await new_account(db, 10)
    finally:
        lots.configure(None, None)
    found = await lots_of(db, user_id)
    assert found["grant"].expires_at is not None
    assert found["grant"].expires_at - clock.now == timedelta(days=30)


def test_lot_priorities_refuse_unknown_sources() -> None:
    assert lots.parse_priorities('{"grant": 5}')["grant"] == 5
    with pytest.raises(ValueError, match="unknown lot source"):
        lots.parse_priorities('{"gift": 5}')


async def test_concurrent_charges_across_many_lots_never_overdraw(postgres_url: str) -> None:
    """200 concurrent charges (holds then commits, and direct spends) on one account of
    many lots with different priorities and expiries: never overdrawn, and the lots
    always hold exactly the balance."""
    db = Database(postgres_url, pool_size=24)
    try:

        async def hold(user_id: int, tokens: int, key: str) -> Reservation:
            return await reserve(db, user_id, tokens, key)

        await race_charges_across_lots(db, await new_account(db, 7), hold)
    finally:
        await db.dispose()
