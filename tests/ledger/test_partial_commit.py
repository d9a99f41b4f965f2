"""A commit of less than the hold: the rest is released in the same step (both databases,
in a session and, on PostgreSQL, on the driver)."""

from __future__ import annotations

import pytest

from ledger.test_service import assert_ledger_clean, balance_of, ledger_reserve, new_account
from tokenbank.db import Database, Unit
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InvalidAmount

pytestmark = pytest.mark.anyio


async def test_a_smaller_commit_charges_it_and_releases_the_rest(db: Database) -> None:
    user_id = await new_account(db, 10)
    held = await ledger_reserve(db, user_id, 8, "partial-1")
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (10, 8, 2)

    async def commit(unit: Unit) -> ledger.Settled:
        return await ledger.settle(unit, held.id, "reply", tokens=3)

    settled = await db.run(commit)
    assert settled.entry.amount == -3 and settled.entry.balance_after == 7
    assert settled.available == 7
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (7, 0, 7)
    again = await db.run(commit)  # committing again is a replay: nothing more is taken
    assert again.entry.id == settled.entry.id and again.entry.replayed
    assert (await balance_of(db, user_id)).balance == 7
    async with db.transaction() as session:
        assert (await ledger.get_reservation(session, held.id)).status == "committed"
    await assert_ledger_clean(db)


async def test_a_commit_of_more_than_the_hold_is_refused_and_the_hold_stays(db: Database) -> None:
    user_id = await new_account(db, 10)
    held = await ledger_reserve(db, user_id, 4, "partial-2")
    for too_much in (5, 0, -1):
        with pytest.raises(InvalidAmount):
            async with db.transaction() as session:
                await ledger.commit(session, held.id, "reply", tokens=too_much)
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved) == (10, 4)
    async with db.transaction() as session:
        entry = await ledger.commit(session, held.id, "reply", tokens=4)
    assert entry.amount == -4
    b = await balance_of(db, user_id)
    assert (b.balance, b.reserved, b.available) == (6, 0, 6)
    await assert_ledger_clean(db)
