"""The charge path's contract: every outcome of reserve, commit and release, in order of
precedence, as one table (the way TigerBeetle lists a request's results).

Each row sets up its case so that the conditions of the rows BELOW it hold too wherever
they can (a replayed key on an account that could not pay for a new hold, a released
hold past its expiry, ...): the row's outcome still wins, which is what "in order of
precedence" means. Each row runs on SQLite and PostgreSQL, and on PostgreSQL in both
kinds of unit (the hot path's driver transaction and a session), and checks that an
outcome which writes nothing left the account exactly as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ledger.test_service import assert_ledger_clean, balance_of, new_account
from tokenbank.db import Database, Unit
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import (
    AccountNotFound,
    IdempotencyKeyReused,
    InsufficientTokens,
    ReservationExpired,
    ReservationNotFound,
    ReservationNotPending,
)
from tokenbank.ledger.models import Entry, Reservation

pytestmark = pytest.mark.anyio

Work = Callable[[Unit], Awaitable[Any]]


@dataclass(frozen=True)
class Case:
    step: str
    outcome: str
    #: Builds the case on a fresh account; returns the call under test, as a unit's work.
    arrange: Callable[[Database, int], Awaitable[Work]]
    #: An exception type the call must raise, or a check of what it returned.
    expect: type[Exception] | Callable[[Any], bool]
    writes: bool = False


async def _unit(db: Database, work: Work) -> Any:
    return await db.run(work)


async def _reserve(db: Database, user_id: int, tokens: int, key: str, ttl_s: float = 60) -> int:
    async def work(unit: Unit) -> Reservation:
        return await ledger.reserve(unit, user_id, tokens, idempotency_key=key, ttl_s=ttl_s)

    return (await _unit(db, work)).id


async def _commit(db: Database, reservation_id: int) -> None:
    async def work(unit: Unit) -> Entry:
        return await ledger.commit(unit, reservation_id, "reply")

    await _unit(db, work)


async def _release(db: Database, reservation_id: int) -> None:
    async def work(unit: Unit) -> bool:
        return await ledger.release(unit, reservation_id)

    await _unit(db, work)


async def _spend_all(db: Database, user_id: int) -> None:
    available = (await balance_of(db, user_id)).available
    async with db.transaction() as session:
        await ledger.spend(session, user_id, available, "drain", idempotency_key="drain")


def reserve(tokens: int, key: str = "k") -> Work:
    async def work(unit: Unit) -> Reservation:
        return await ledger.reserve(unit, _USER[0], tokens, idempotency_key=key, ttl_s=60)

    return work


def commit(reservation_id: int) -> Work:
    async def work(unit: Unit) -> Entry:
        return await ledger.commit(unit, reservation_id, "reply")

    return work


def release(reservation_id: int) -> Work:
    async def work(unit: Unit) -> bool:
        return await ledger.release(unit, reservation_id)

    return work


#: The user a case's work acts on (set per test before the work runs).
_USER: list[int] = [0]


# --- reserve ---------------------------------------------------------------------------


async def reserve_key_reused(db: Database, user_id: int) -> Work:
    await _reserve(db, user_id, 2, "k")
    await _spend_all(db, user_id)  # a new hold would be refused too
    return reserve(3)


async def reserve_replayed(db: Database, user_id: int) -> Work:
    await _commit(db, await _reserve(db, user_id, 2, "k"))
    await _spend_all(db, user_id)  # a new hold would be refused too
    return reserve(2)


async def reserve_no_account(db: Database, user_id: int) -> Work:
    _USER[0] = user_id + 1_000_000
    return reserve(2)


async def reserve_refused(db: Database, user_id: int) -> Work:
    await _reserve(db, user_id, 9, "other")  # 10 - 9 available
    return reserve(2)


async def reserve_held(db: Database, user_id: int) -> Work:
    return reserve(2)


# --- commit ----------------------------------------------------------------------------


async def commit_not_found(db: Database, user_id: int) -> Work:
    return commit(987_654_321)


async def commit_replayed(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k")
    await _commit(db, held)
    return commit(held)


async def commit_released(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k", ttl_s=-1)  # past its expiry as well
    await _release(db, held)
    return commit(held)


async def commit_expired(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k", ttl_s=-1)
    await _take_deduction_key(db, user_id, held)  # its deduction's key is taken as well
    return commit(held)


async def commit_expired_by_sweeper(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k", ttl_s=-1)
    async with db.transaction() as session:
        assert await ledger.expire_reservations(session) >= 1
    return commit(held)


async def commit_key_taken(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k")
    await _take_deduction_key(db, user_id, held)
    return commit(held)


async def commit_committed(db: Database, user_id: int) -> Work:
    return commit(await _reserve(db, user_id, 2, "k"))


async def _take_deduction_key(db: Database, user_id: int, reservation_id: int) -> None:
    async with db.transaction() as session:
        await ledger.spend(
            session, user_id, 1, "squatter", idempotency_key=keys.committed_hold(reservation_id)
        )


# --- release ---------------------------------------------------------------------------


async def release_not_found(db: Database, user_id: int) -> Work:
    return release(987_654_321)


async def release_committed(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k")
    await _commit(db, held)
    return release(held)


async def release_released(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k")
    await _release(db, held)
    return release(held)


async def release_expired(db: Database, user_id: int) -> Work:
    held = await _reserve(db, user_id, 2, "k", ttl_s=-1)
    async with db.transaction() as session:
        assert await ledger.expire_reservations(session) >= 1
    return release(held)


async def release_released_now(db: Database, user_id: int) -> Work:
    return release(await _reserve(db, user_id, 2, "k", ttl_s=-1))  # expired holds release too


def _replayed_in(status: str) -> Callable[[Any], bool]:
    return lambda r: r.replayed and r.status == status and r.amount == 2


#: Every outcome, each step's in order of precedence (first that applies wins).
CONTRACT = [
    Case("reserve", "1 key held for another amount", reserve_key_reused, IdempotencyKeyReused),
    Case("reserve", "2 key exists: replayed", reserve_replayed, _replayed_in("committed")),
    Case("reserve", "3 no account", reserve_no_account, AccountNotFound),
    Case("reserve", "4 not enough available", reserve_refused, InsufficientTokens),
    Case(
        "reserve",
        "5 held",
        reserve_held,
        lambda r: not r.replayed and r.status == "pending" and r.amount == 2,
        writes=True,
    ),
    Case("commit", "1 no such hold", commit_not_found, ReservationNotFound),
    Case(
        "commit",
        "2 committed before: its deduction",
        commit_replayed,
        lambda e: e.replayed and e.amount == -2,
    ),
    Case("commit", "3 released", commit_released, ReservationNotPending),
    Case("commit", "4 expired (past expires_at)", commit_expired, ReservationExpired),
    Case("commit", "4 expired (by the sweeper)", commit_expired_by_sweeper, ReservationExpired),
    Case("commit", "5 deduction key taken", commit_key_taken, IdempotencyKeyReused),
    Case(
        "commit",
        "6 committed",
        commit_committed,
        lambda e: not e.replayed and e.amount == -2 and e.transaction_type == "deduction",
        writes=True,
    ),
    Case("release", "1 no such hold", release_not_found, ReservationNotFound),
    Case("release", "2 committed already", release_committed, ReservationNotPending),
    Case("release", "2 released already", release_released, lambda done: done is False),
    Case("release", "2 expired already", release_expired, lambda done: done is False),
    Case("release", "3 released", release_released_now, lambda done: done is True, writes=True),
]


@pytest.mark.parametrize("case", CONTRACT, ids=[f"{c.step}-{c.outcome}" for c in CONTRACT])
async def test_every_outcome_in_order_of_precedence(db: Database, case: Case) -> None:
    # ``run``: the hot path's unit (the driver on PostgreSQL); ``session``: an ORM session
    # (on SQLite, ``run`` is a session already).
    for unit_kind in ["run"] if db.is_sqlite else ["run", "session"]:
        await _check(db, unit_kind, case)


async def _check(db: Database, unit_kind: str, case: Case) -> None:
    user_id = await new_account(db, 10)
    _USER[0] = user_id
    work = await case.arrange(db, user_id)
    before = await balance_of(db, user_id)
    outcome: Any = None
    if isinstance(case.expect, type):
        with pytest.raises(case.expect):
            await _run(db, unit_kind, work)
    else:
        outcome = await _run(db, unit_kind, work)
        assert case.expect(outcome), (unit_kind, outcome)
    after = await balance_of(db, user_id)
    if not case.writes:
        assert (after.balance, after.reserved) == (before.balance, before.reserved), unit_kind
    await assert_ledger_clean(db)


async def _run(db: Database, unit_kind: str, work: Work) -> Any:
    if unit_kind == "run":
        return await db.run(work)
    async with db.transaction() as session:
        return await work(session)


async def test_a_refusal_reports_what_is_available_and_what_was_asked(db: Database) -> None:
    user_id = await new_account(db, 10)
    _USER[0] = user_id
    await _reserve(db, user_id, 9, "other")
    with pytest.raises(InsufficientTokens) as refused:
        await db.run(reserve(2))
    assert (refused.value.balance, refused.value.required) == (1, 2)
