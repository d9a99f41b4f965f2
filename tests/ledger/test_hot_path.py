"""The charge path (reserve, commit) belongs to the caller's transaction on every backend.

On PostgreSQL each step is one statement sent straight through the session's asyncpg
connection; these tests show it still lives and dies with the caller's unit of work.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.test_service import assert_ledger_clean, balance_of, new_account
from tokenbank.db import Database, Unit
from tokenbank.errors import is_connection_error
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import IdempotencyKeyReused

from support import terminate_backend, wait_for

pytestmark = pytest.mark.anyio


class Abandon(Exception):
    """Raised inside a transaction to make it roll back."""


async def test_a_hold_taken_first_in_a_transaction_rolls_back_with_it(db: Database) -> None:
    user_id = await new_account(db, 5)
    with pytest.raises(Abandon):
        async with db.transaction() as session:
            await ledger.reserve(session, user_id, 2, idempotency_key="gone", ttl_s=60)
            raise Abandon()
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (5, 0)
    async with db.transaction() as session:
        count = await session.execute(text("SELECT count(*) FROM token_reservations"))
        assert count.scalar_one() == 0
    await assert_ledger_clean(db)


async def test_a_charge_after_other_work_rolls_back_with_that_work(db: Database) -> None:
    user_id = await new_account(db, 5)
    with pytest.raises(Abandon):
        async with db.transaction() as session:
            await ledger.grant(session, user_id, 10, "promo")
            held = await ledger.reserve(session, user_id, 3, idempotency_key="k", ttl_s=60)
            entry = await ledger.commit(session, held.id, "reply")
            assert entry.balance_after == 12
            raise Abandon()
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (5, 0)
    await assert_ledger_clean(db)


async def test_a_committed_charge_reads_back_as_written(db: Database) -> None:
    user_id = await new_account(db, 5)
    async with db.transaction() as session:
        held = await ledger.reserve(
            session, user_id, 2, idempotency_key="gen-9", ttl_s=60, description="a reply"
        )
    async with db.transaction() as session:
        entry = await ledger.commit(session, held.id, "AI reply")
    assert (held.status, held.amount, held.user_id, held.replayed) == ("pending", 2, user_id, False)
    assert held.expires_at > held.created_at and held.resolved_at is None
    async with db.transaction() as session:
        page = await ledger.history(session, user_id, limit=1)
    assert page.items[0] == entry
    assert (entry.transaction_type, entry.amount, entry.balance_after) == ("deduction", -2, 3)
    assert (entry.reservation_id, entry.idempotency_key) == (held.id, keys.committed_hold(held.id))


async def test_commit_refuses_when_its_deduction_key_is_taken_and_keeps_the_hold(
    db: Database,
) -> None:
    user_id = await new_account(db, 10)
    async with db.transaction() as session:
        held = await ledger.reserve(session, user_id, 2, idempotency_key="h", ttl_s=60)
    async with db.transaction() as session:
        await ledger.spend(
            session, user_id, 2, "squatter", idempotency_key=keys.committed_hold(held.id)
        )
    with pytest.raises(IdempotencyKeyReused):
        async with db.transaction() as session:
            await ledger.commit(session, held.id, "reply")
    async with db.transaction() as session:
        assert (await ledger.get_reservation(session, held.id)).status == "pending"
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (8, 2)
    await assert_ledger_clean(db)


async def test_a_connection_lost_mid_charge_is_a_database_error_and_is_replaced(
    postgres_url: str,
) -> None:
    """The hot path speaks SQLAlchemy's errors, so the app answers 503 and heals."""
    db = Database(postgres_url, pool_size=1)
    try:
        user_id = await new_account(db, 5)
        with pytest.raises(DBAPIError) as lost:
            async with db.transaction() as session:
                pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                raw = await (await session.connection()).get_raw_connection()
                await terminate_backend(postgres_url, pid)

                async def closed() -> bool:
                    return bool(raw.driver_connection.is_closed())

                await wait_for(closed, timeout_s=10, what="the client to see the socket close")
                await ledger.reserve(session, user_id, 1, idempotency_key="k", ttl_s=60)
        assert lost.value.connection_invalidated
        assert is_connection_error(lost.value)
        async with db.transaction() as session:
            held = await ledger.reserve(session, user_id, 1, idempotency_key="k", ttl_s=60)
        assert not held.replayed
        assert (await balance_of(db, user_id)).reserved == 1
    finally:
        await db.dispose()


async def test_a_hold_may_skip_the_wait_for_the_disk_for_its_own_transaction_only(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, pool_size=1)
    try:
        user_id = await new_account(db, 5)
        async with db.transaction() as session:
            held = await ledger.reserve(
                session, user_id, 2, idempotency_key="fast", ttl_s=60, durable=False
            )
            setting = await session.execute(text("SHOW synchronous_commit"))
            assert setting.scalar_one() == "off"
        async with db.transaction() as session:
            setting = await session.execute(text("SHOW synchronous_commit"))
            assert setting.scalar_one() == "on"
            entry = await ledger.commit(session, held.id, "reply")
        assert (entry.amount, entry.balance_after) == (-2, 3)
        assert (await balance_of(db, user_id)).reserved == 0
        await assert_ledger_clean(db)
    finally:
        await db.dispose()


async def test_settling_a_hold_reports_what_is_left_beside_other_pending_holds(
    db: Database,
) -> None:
    """The number a reply shows: balance after the charge, minus holds still pending."""
    user_id = await new_account(db, 10)
    async with db.transaction() as session:
        other = await ledger.reserve(session, user_id, 3, idempotency_key="other", ttl_s=60)
        held = await ledger.reserve(session, user_id, 2, idempotency_key="this", ttl_s=60)

    async def settle(unit: Unit) -> ledger.Settled:
        return await ledger.settle(unit, held.id, "reply")

    settled = await db.run(settle)
    assert (settled.entry.amount, settled.entry.balance_after) == (-2, 8)
    assert settled.available == 8 - 3
    again = await db.run(settle)  # a replay reads the balance instead
    assert again.entry.replayed and again.available == 5
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (8, other.amount)
    await assert_ledger_clean(db)


async def test_the_balance_watch_hears_of_committed_spends_only(db: Database) -> None:
    """Every spend, in any kind of unit, reaches the balance watch once its unit commits
    (with the settled balance it left: holds in flight do not count); a spend that rolls
    back, a replay or a credit does not."""
    from tokenbank import balance_watch

    heard: list[tuple[int, int]] = []

    class Ear(balance_watch.BalanceWatch):
        def charged(self, user_id: int, available: int) -> None:
            heard.append((user_id, available))

    async def never(_u: int, _a: int, _h: int) -> balance_watch.Thresholds:
        raise AssertionError("not started")

    balance_watch.install(Ear(never))
    try:
        user_id = await new_account(db, 20)
        async with db.transaction() as session:
            held = await ledger.reserve(session, user_id, 3, idempotency_key="h", ttl_s=60)
        assert heard == []  # credits and holds are not spends
        with pytest.raises(Abandon):
            async with db.transaction() as session:
                await ledger.spend(session, user_id, 4, "x", idempotency_key="gone")
                assert heard == []  # not before the commit
                raise Abandon()
        assert heard == []
        async with db.transaction() as session:
            await ledger.spend(session, user_id, 4, "x", idempotency_key="c")
        assert heard == [(user_id, 20 - 4)]  # the pending hold of 3 is not subtracted

        async def settle(unit: Unit) -> ledger.Settled:
            return await ledger.settle(unit, held.id, "reply", tokens=2)

        await db.run(settle)  # a driver unit (or SQLite's own connection)
        assert heard[1:] == [(user_id, 20 - 4 - 2)]
        await db.run(settle)  # a replay: spent before
        async with db.transaction() as session:
            await ledger.spend(session, user_id, 4, "x", idempotency_key="c")  # replay
        assert len(heard) == 2
    finally:
        balance_watch.install(None)
    await assert_ledger_clean(db)
