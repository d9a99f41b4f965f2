"""The ledger's guarantees, each shown on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tokenbank.auth.models import User
from tokenbank.db import Database, Unit
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import (
    IdempotencyKeyReused,
    InsufficientTokens,
    InvalidAmount,
    ReservationExpired,
    ReservationNotPending,
)
from tokenbank.ledger.models import Balance, Entry, Reservation
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio


async def new_account(db: Database, tokens: int = 0) -> int:
    async with db.transaction() as session:
        user = User(
            username=f"u{uuid.uuid4().hex[:12]}",
            email=f"{uuid.uuid4().hex}@x.test",
            password_hash="-",
        )
        session.add(user)
        await session.flush()
        await ledger.open_account(session, user.id)
        if tokens:
            await ledger.grant(session, user.id, tokens, "test funds")
        return user.id


async def balance_of(db: Database, user_id: int) -> Balance:
    async with db.transaction() as session:
        return await ledger.balance(session, user_id)


async def ledger_reserve(db: Database, user_id: int, tokens: int, key: str) -> Reservation:
    """A one-minute hold of ``tokens``, taken in a unit of work of its own."""

    async def work(unit: Unit) -> Reservation:
        return await ledger.reserve(unit, user_id, tokens, idempotency_key=key, ttl_s=60)

    return await db.run(work)


async def assert_ledger_clean(db: Database) -> None:
    async with db.transaction() as session:
        assert await ledger.check(session) == []


async def test_concurrent_spends_never_overdraw(db: Database) -> None:
    """200 one-token spends against 50 tokens from 20 workers, each on its own connection."""
    user_id = await new_account(db, 50)
    outcomes: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(200):
        queue.put_nowait(i)

    async def worker() -> None:
        async with db.engine.connect() as _own_connection_proof:
            pass
        while not queue.empty():
            i = queue.get_nowait()
            try:
                async with db.transaction() as session:
                    await ledger.spend(session, user_id, 1, "reply", idempotency_key=f"s{i}")
                outcomes.append("ok")
            except InsufficientTokens:
                outcomes.append("refused")

    await asyncio.gather(*(worker() for _ in range(20)))
    assert outcomes.count("ok") == 50
    assert outcomes.count("refused") == 150
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (0, 0, 0)
    await assert_ledger_clean(db)


async def test_concurrent_reservations_never_overdraw(db: Database) -> None:
    user_id = await new_account(db, 10)
    results: list[object] = []

    async def one(i: int) -> None:
        try:
            async with db.transaction() as session:
                results.append(
                    await ledger.reserve(session, user_id, 1, idempotency_key=f"r{i}", ttl_s=60)
                )
        except InsufficientTokens as exc:
            results.append(exc)

    await asyncio.gather(*(one(i) for i in range(40)))
    held = [r for r in results if isinstance(r, Reservation)]
    assert len(held) == 10
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (10, 10, 0)
    await assert_ledger_clean(db)


async def test_replayed_spend_charges_once_and_returns_first_result(db: Database) -> None:
    user_id = await new_account(db, 5)
    async with db.transaction() as session:
        first = await ledger.spend(session, user_id, 2, "reply", idempotency_key="k1")
    async with db.transaction() as session:
        again = await ledger.spend(session, user_id, 2, "reply", idempotency_key="k1")
    assert again.id == first.id and again.replayed and not first.replayed
    assert (await balance_of(db, user_id)).balance == 3
    with pytest.raises(IdempotencyKeyReused):
        async with db.transaction() as session:
            await ledger.spend(session, user_id, 1, "reply", idempotency_key="k1")
    await assert_ledger_clean(db)


async def test_concurrent_replays_of_one_key_charge_once(db: Database) -> None:
    user_id = await new_account(db, 5)

    async def one() -> int:
        async with db.transaction() as session:
            return (await ledger.spend(session, user_id, 1, "reply", idempotency_key="same")).id

    ids = await asyncio.gather(*(one() for _ in range(12)))
    assert len(set(ids)) == 1
    assert (await balance_of(db, user_id)).balance == 4
    await assert_ledger_clean(db)


async def test_replay_is_recognised_even_when_balance_is_exhausted(db: Database) -> None:
    user_id = await new_account(db, 1)
    async with db.transaction() as session:
        first = await ledger.spend(session, user_id, 1, "reply", idempotency_key="last")
    async with db.transaction() as session:
        again = await ledger.spend(session, user_id, 1, "reply", idempotency_key="last")
    assert again.id == first.id
    assert (await balance_of(db, user_id)).balance == 0


async def test_reservation_commits_once(db: Database) -> None:
    user_id = await new_account(db, 5)
    async with db.transaction() as session:
        r = await ledger.reserve(session, user_id, 2, idempotency_key="gen-1", ttl_s=60)
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (5, 2, 3)
    async with db.transaction() as session:
        entry = await ledger.commit(session, r.id, "AI reply")
    async with db.transaction() as session:
        again = await ledger.commit(session, r.id, "AI reply")
    assert again.id == entry.id and again.replayed
    assert entry.transaction_type == "deduction" and entry.amount == -2
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (3, 0, 3)
    with pytest.raises(ReservationNotPending):
        async with db.transaction() as session:
            await ledger.release(session, r.id)
    await assert_ledger_clean(db)


async def test_concurrent_commit_and_release_resolve_once(db: Database) -> None:
    user_id = await new_account(db, 5)
    async with db.transaction() as session:
        r = await ledger.reserve(session, user_id, 1, idempotency_key="race", ttl_s=60)

    async def commit() -> str:
        try:
            async with db.transaction() as session:
                await ledger.commit(session, r.id, "reply")
            return "committed"
        except ReservationNotPending:
            return "refused"

    async def release() -> str:
        try:
            async with db.transaction() as session:
                return "released" if await ledger.release(session, r.id) else "noop"
        except ReservationNotPending:
            return "refused"

    outcomes = await asyncio.gather(*(commit() if i % 2 else release() for i in range(10)))
    assert sum(o in ("committed", "released") for o in outcomes) >= 1
    b = await balance_of(db, user_id)
    async with db.transaction() as session:
        final = await ledger.get_reservation(session, r.id)
    assert final.status in ("committed", "released")
    assert b.reserved == 0
    assert b.balance == (4 if final.status == "committed" else 5)
    await assert_ledger_clean(db)


async def test_commit_after_release_is_refused(db: Database) -> None:
    user_id = await new_account(db, 5)
    async with db.transaction() as session:
        r = await ledger.reserve(session, user_id, 3, idempotency_key="x", ttl_s=60)
    async with db.transaction() as session:
        assert await ledger.release(session, r.id) is True
    async with db.transaction() as session:
        assert await ledger.release(session, r.id) is False
    with pytest.raises(ReservationNotPending):
        async with db.transaction() as session:
            await ledger.commit(session, r.id, "late")
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (5, 0)
    await assert_ledger_clean(db)


async def test_expired_reservations_are_released_and_tokens_return(db: Database) -> None:
    user_id = await new_account(db, 3)
    async with db.transaction() as session:
        r = await ledger.reserve(session, user_id, 3, idempotency_key="slow", ttl_s=30)
    assert (await balance_of(db, user_id)).available == 0
    async with db.transaction() as session:
        assert await ledger.expire_reservations(session, now=utcnow() + timedelta(seconds=5)) == 0
    async with db.transaction() as session:
        n = await ledger.expire_reservations(session, now=utcnow() + timedelta(seconds=31))
    assert n == 1
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (3, 0, 3)
    with pytest.raises(ReservationExpired):
        async with db.transaction() as session:
            await ledger.commit(session, r.id, "too late")
    async with db.transaction() as session:
        assert (await ledger.get_reservation(session, r.id)).status == "expired"
    await assert_ledger_clean(db)


async def test_concurrent_sweepers_expire_each_hold_once(db: Database) -> None:
    user_id = await new_account(db, 20)
    async with db.transaction() as session:
        for i in range(20):
            await ledger.reserve(session, user_id, 1, idempotency_key=f"h{i}", ttl_s=1)
    later = utcnow() + timedelta(seconds=5)

    async def sweep() -> int:
        async with db.transaction() as session:
            return await ledger.expire_reservations(session, now=later, limit=7)

    counts = await asyncio.gather(*(sweep() for _ in range(6)))
    while True:
        extra = await sweep()
        counts.append(extra)
        if extra == 0:
            break
    assert sum(counts) == 20
    b = await balance_of(db, user_id)
    assert (b.reserved, b.available) == (0, 20)
    await assert_ledger_clean(db)


@pytest.mark.parametrize("amount", [0, -1, 1.5, "3", True, None, 10**12])
async def test_bad_amounts_are_refused(db: Database, amount: object) -> None:
    user_id = await new_account(db, 5)
    for call in (
        lambda s: ledger.grant(s, user_id, amount, "x"),  # type: ignore[arg-type]
        lambda s: ledger.spend(s, user_id, amount, "x", idempotency_key="k"),  # type: ignore[arg-type]
        lambda s: ledger.reserve(s, user_id, amount, idempotency_key="k", ttl_s=5),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidAmount):
            async with db.transaction() as session:
                await call(session)
    assert (await balance_of(db, user_id)).balance == 5
    await assert_ledger_clean(db)


async def test_only_a_purchase_reversal_makes_a_balance_negative(db: Database) -> None:
    user_id = await new_account(db)
    async with db.transaction() as session:
        await ledger.credit_purchase(session, user_id, 100, "pi_1", "Starter pack")
        await ledger.spend(session, user_id, 80, "replies", idempotency_key="use")
    with pytest.raises(InsufficientTokens):
        async with db.transaction() as session:
            await ledger.adjust(session, user_id, -50, "correction")
    async with db.transaction() as session:
        await ledger.reverse_purchase(
            session, user_id, 100, "pi_1", "refunded", idempotency_key="pi_1:rev:1"
        )
    b = await balance_of(db, user_id)
    assert b.balance == -80
    with pytest.raises(InsufficientTokens) as refused:
        async with db.transaction() as session:
            await ledger.spend(session, user_id, 1, "reply", idempotency_key="blocked")
    assert refused.value.balance == -80 and refused.value.required == 1
    with pytest.raises(InsufficientTokens):
        async with db.transaction() as session:
            await ledger.reserve(session, user_id, 1, idempotency_key="blocked", ttl_s=5)
    async with db.transaction() as session:
        await ledger.credit_purchase(session, user_id, 100, "pi_2", "top-up")
        await ledger.spend(session, user_id, 1, "reply", idempotency_key="ok-now")
    assert (await balance_of(db, user_id)).balance == 19
    await assert_ledger_clean(db)


async def test_a_payment_intent_credits_once_whatever_the_path(db: Database) -> None:
    user_id = await new_account(db)

    async def credit() -> Entry:
        async with db.transaction() as session:
            return await ledger.credit_purchase(session, user_id, 100, "pi_same", "pack")

    entries = await asyncio.gather(*(credit() for _ in range(8)))
    assert len({e.id for e in entries}) == 1
    assert sum(not e.replayed for e in entries) == 1
    assert (await balance_of(db, user_id)).balance == 100
    await assert_ledger_clean(db)


async def test_transactions_are_append_only(db: Database) -> None:
    user_id = await new_account(db, 5)
    for sql in ("UPDATE token_transactions SET amount = 500", "DELETE FROM token_transactions"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction() as session:
                await session.execute(text(sql))
    assert (await balance_of(db, user_id)).balance == 5


async def test_check_reports_a_tampered_balance(db: Database) -> None:
    user_id = await new_account(db, 5)
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE token_accounts SET balance = 7, reserved = 1 WHERE user_id = :u"),
            {"u": user_id},
        )
    async with db.transaction() as session:
        rules = {v.rule for v in await ledger.check(session)}
    assert rules == {
        "balance_equals_sum",
        "reserved_equals_pending",
        "balance_after_chain",
        "lots_hold_balance",
    }


async def test_history_pages_newest_first(db: Database) -> None:
    user_id = await new_account(db)
    async with db.transaction() as session:
        for i in range(1, 6):
            await ledger.grant(session, user_id, i, f"g{i}")
    async with db.transaction() as session:
        first = await ledger.history(session, user_id, limit=2)
        second = await ledger.history(session, user_id, limit=2, before=first.next_before)
        last = await ledger.history(session, user_id, limit=2, before=second.next_before)
    assert [e.amount for e in first.items] == [5, 4]
    assert [e.amount for e in second.items] == [3, 2]
    assert [e.amount for e in last.items] == [1] and last.next_before is None
    assert [e.balance_after for e in first.items] == [15, 10]
