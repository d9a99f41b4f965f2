"""The hold's account lock rides on the reply's history read (one statement less per
charged reply): it must lock exactly when the ledger's own lock statement would, and the
hold that follows must be as safe as with that statement (the stale-lot race stays closed).
"""

from __future__ import annotations

import asyncpg
import pytest

from ledger.lots_kit import race_charges_across_lots
from ledger.test_service import new_account
from tokenbank.chat import repository as chat_repo
from tokenbank.db import Database, Unit
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import Reservation
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio


async def new_chat(db: Database, user_id: int) -> int:
    async with db.transaction() as session:
        row = await chat_repo.insert_chat(session, user_id, "chat", utcnow())
        return int(row.id)


async def hold_via_history(
    db: Database, user_id: int, chat_id: int, tokens: int, key: str
) -> Reservation:
    """A hold as a reply takes it: the history read locks the account, the reserve skips
    the ledger's own lock statement."""

    async def work(unit: Unit) -> Reservation:
        found = await chat_repo.history(
            unit, user_id, chat_id, 100, 8000, hold_key=key, lock_account=True
        )
        assert found is not None
        return await ledger.reserve(
            unit,
            user_id,
            tokens,
            idempotency_key=key,
            ttl_s=600,
            account_locked=found.account_locked,
        )

    return await db.run(work)


async def test_history_read_locks_the_account_unless_told_not_to_or_replaying(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, pool_size=4)
    other = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        user_id = await new_account(db, 10)
        chat_id = await new_chat(db, user_id)
        await hold_via_history(db, user_id, chat_id, 1, "held-before")

        async def locked_while_read(lock: bool, key: str) -> tuple[bool, bool]:
            """(what the read says, whether another connection finds the row locked)."""

            async def work(unit: Unit) -> tuple[bool, bool]:
                found = await chat_repo.history(
                    unit, user_id, chat_id, 100, 8000, hold_key=key, lock_account=lock
                )
                assert found is not None
                try:
                    async with other.transaction():
                        await other.fetchrow(
                            "SELECT 1 FROM token_accounts WHERE user_id = $1 FOR UPDATE NOWAIT",
                            user_id,
                        )
                    blocked = False
                except asyncpg.LockNotAvailableError:
                    blocked = True
                return found.account_locked, blocked

            return await db.run(work)

        assert await locked_while_read(True, "new-key") == (True, True)
        assert await locked_while_read(False, "new-key") == (False, False)
        # A key that has a hold is a replay: no lock (it must not wait on a sweeper).
        assert await locked_while_read(True, "held-before") == (False, False)
    finally:
        await other.close()
        await db.dispose()


async def test_history_read_of_someone_elses_chat_is_none(db: Database) -> None:
    owner = await new_account(db, 10)
    stranger = await new_account(db, 10)
    chat_id = await new_chat(db, owner)

    async def work(unit: Unit) -> object:
        return await chat_repo.history(
            unit, stranger, chat_id, 100, 8000, hold_key="k", lock_account=True
        )

    assert await db.run(work) is None


@pytest.mark.parametrize("run", range(3))
async def test_concurrent_holds_through_the_history_lock_never_overdraw(
    postgres_url: str, run: int
) -> None:
    """The lots test's 200 concurrent charges, with every hold locked by the history read
    instead of the ledger's lock statement: never overdrawn, no hold allocated from tokens
    a concurrent charge took (the CHECK would refuse it), the lots hold the balance."""
    db = Database(postgres_url, pool_size=24)
    try:
        user_id = await new_account(db, 7)
        chat_id = await new_chat(db, user_id)

        async def hold(user_id: int, tokens: int, key: str) -> Reservation:
            return await hold_via_history(db, user_id, chat_id, tokens, key)

        await race_charges_across_lots(db, user_id, hold)
    finally:
        await db.dispose()
