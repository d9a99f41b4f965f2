"""A race the crash scenario found: a retried hold meeting the sweeper over its first try.

A process dies holding a reply's tokens; the client retries with the same
Idempotency-Key (so the same hold key) just as another process's sweeper expires the
orphaned hold. ``reserve`` locks the account row, then inserts the hold key; the sweeper
has already rewritten the hold row (same key) and then updates the account row. Each
waits for the other: PostgreSQL aborts one of them with ``deadlock detected``, which the
API answers as 500 ``internal_error``. No token is lost (the loser rolls back whole), but
a retry-safe request must not be a 500. Fixed: every ledger path now locks the account
row first, then the hold; and a hold whose key exists takes no lock at all.
"""

from __future__ import annotations

import asyncio
import uuid

from tokenbank.auth.models import User
from tokenbank.db import Database
from tokenbank.ledger import keys, lots
from tokenbank.ledger import repository as repo
from tokenbank.ledger import service as ledger
from tokenbank.types import utcnow

from conftest import _truncate_postgres
from support import wait_for


async def _user_with(db: Database, tokens: int) -> int:
    name = f"race{uuid.uuid4().hex[:10]}"
    async with db.transaction() as s:
        user = User(username=name, email=f"{name}@example.com", password_hash="unused")
        s.add(user)
        await s.flush()
        await ledger.open_account(s, user.id)
        await ledger.grant(s, user.id, tokens, "race test")
        return user.id


def test_a_retry_racing_the_sweeper_over_its_orphaned_hold_is_not_a_deadlock(
    postgres_url: str,
) -> None:
    _truncate_postgres(postgres_url)
    asyncio.run(_race(postgres_url))


async def _race(url: str) -> None:
    db = Database(url, pool_size=4)
    try:
        user_id = await _user_with(db, 10)
        key = keys.generation(1, 1, "the-clients-key")
        async with db.transaction() as s:  # the first try, on a process that then died
            first = await ledger.reserve(s, user_id, 1, idempotency_key=key, ttl_s=0.05)

        async def overdue() -> bool:
            return utcnow() > first.expires_at

        await wait_for(overdue, timeout_s=5, what="the orphaned hold to be overdue")

        async def retry() -> ledger.Reservation:
            async with db.transaction() as s:
                return await ledger.reserve(s, user_id, 1, idempotency_key=key, ttl_s=60)

        sweeper = db.sessionmaker()
        try:
            # The sweeper's first statement (expire_reservations) marks the hold expired...
            expired = await repo.expire_due_reservations(sweeper, utcnow(), 500)
            assert [row.id for row in expired] == [first.id]
            # ...the retry arrives: its key exists, so it takes no lock at all (the key is
            # looked up before the account is touched) and cannot wait on the sweeper;
            # it replays the first hold as it stood before the sweeper commits...
            during = await asyncio.wait_for(retry(), timeout=10)
            assert (during.id, during.status, during.replayed) == (first.id, "pending", True)
            # ...and the sweeper's next statements give the tokens back: to the account,
            # then the hold's allocation to its lots.
            await repo.move_balance(sweeper, user_id, balance_delta=0, reserved_delta=-1,
                                    require_available=None, now=utcnow())
            await lots.unhold(sweeper, [first.id])
            await sweeper.commit()
        finally:
            await sweeper.close()
        again = await retry()

        # Both finish: the retry sees its key's first hold, expired, and holds nothing.
        assert (again.id, again.status, again.replayed) == (first.id, "expired", True)
        async with db.transaction() as s:
            after = await ledger.balance(s, user_id)
            assert (after.balance, after.reserved) == (10, 0)
            assert await ledger.check(s) == []
    finally:
        await db.dispose()
