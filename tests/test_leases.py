"""The shared leased claim (``tokenbank.leases``) that the webhook inbox and the outbound
outbox are worked through: no row is claimed twice while its lease lives, a lease that ran
out is taken over, and every claim counts an attempt. Exercised on the inbox's table."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tokenbank.db import Database
from tokenbank.payments import repository as repo
from tokenbank.payments.models import EventStatus
from tokenbank.payments.repository import INBOX, inbox
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio

RETURNING = (inbox.c.id, inbox.c.attempts)


async def _record(db: Database, n: int, now: datetime, *, step: timedelta) -> list[str]:
    """``n`` waiting events, due one ``step`` apart (the first at ``now``), recorded in a
    shuffled order so that only the claim's ordering can put them back."""
    ids = [f"evt_{i:02d}" for i in range(n)]
    async with db.transaction() as session:
        for i in [*range(1, n, 2), *range(0, n, 2)]:
            await repo.record_event(
                session, event_id=ids[i], event_type="payment_intent.succeeded",
                payment_intent_id=f"pi_{i}", charge_id=None, payload={"id": ids[i]},
                status=EventStatus.RECEIVED, now=now + i * step,
            )
    return ids


async def _claim(
    db: Database, now: datetime, *, lease: timedelta = timedelta(minutes=5), limit: int = 1,
    key: str | None = None,
) -> tuple[str, list[tuple[str, int]]]:
    token = str(uuid.uuid4())
    async with db.transaction() as session:
        rows = await INBOX.claim(
            session, now=now, lease_until=now + lease, token=token, limit=limit, key=key,
            returning=RETURNING,
        )
    return token, [(str(r.id), int(r.attempts)) for r in rows]


async def _state(db: Database, event_id: str) -> tuple[str, int, str | None]:
    async with db.transaction() as session:
        row = (await session.execute(
            select(inbox.c.status, inbox.c.attempts, inbox.c.claim_token)
            .where(inbox.c.id == event_id)
        )).one()
    return str(row.status), int(row.attempts), row.claim_token


async def test_claimers_at_once_never_get_the_same_row(db: Database) -> None:
    now = utcnow()
    ids = await _record(db, 12, now - timedelta(minutes=1), step=timedelta(seconds=1))
    results = await asyncio.gather(*(_claim(db, now, limit=2) for _ in range(8)))
    claimed = [event_id for _, rows in results for event_id, _ in rows]
    assert sorted(claimed) == ids  # each row once, every row claimed
    assert all(attempts == 1 for _, rows in results for _, attempts in rows)


# PostgreSQL only: SQLite has one writer, so there a second claim waits its turn instead.
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_row_claimed_in_an_open_transaction_is_skipped_not_waited_on(
    db: Database,
) -> None:
    now = utcnow()
    ids = await _record(db, 3, now - timedelta(minutes=1), step=timedelta(seconds=1))
    async with db.transaction() as first:
        mine = await INBOX.claim(
            first, now=now, lease_until=now + timedelta(minutes=5), token="a", limit=1,
            returning=RETURNING,
        )
        # Not committed yet: the second claimer skips the locked row at once.
        _, other = await asyncio.wait_for(_claim(db, now, limit=3), timeout=10)
    assert [str(r.id) for r in mine] == ids[:1]
    assert sorted(event_id for event_id, _ in other) == ids[1:]


async def test_earliest_due_first_and_only_what_is_due(db: Database) -> None:
    now = utcnow()
    ids = await _record(db, 5, now - timedelta(seconds=2), step=timedelta(seconds=1))
    _, first = await _claim(db, now, limit=2)
    assert sorted(event_id for event_id, _ in first) == ids[:2]  # chosen by due time
    _, rest = await _claim(db, now, limit=10)
    assert sorted(event_id for event_id, _ in rest) == ids[2:3]  # the other two are not due yet


async def test_a_lease_that_ran_out_is_taken_over_and_counts_another_attempt(
    db: Database,
) -> None:
    now = utcnow()
    (event_id,) = await _record(db, 1, now, step=timedelta(0))
    old_token, first = await _claim(db, now, lease=timedelta(seconds=30))
    assert first == [(event_id, 1)]
    _, live = await _claim(db, now + timedelta(seconds=29))
    assert live == []  # its lease still lives
    later = now + timedelta(seconds=31)
    new_token, second = await _claim(db, later, lease=timedelta(seconds=30))
    assert second == [(event_id, 2)]
    assert await _state(db, event_id) == ("processing", 2, new_token)
    # The worker whose lease ran out can no longer end the claim; the new holder can.
    async with db.transaction() as session:
        assert not await INBOX.end_claim(session, event_id, old_token, {"status": "handled"})
        assert await INBOX.end_claim(session, event_id, new_token, {"status": "failed"})
    assert await _state(db, event_id) == ("failed", 2, None)


async def test_a_claim_by_key_takes_any_status_but_not_a_live_lease(db: Database) -> None:
    now = utcnow()
    (event_id,) = await _record(db, 1, now + timedelta(hours=1), step=timedelta(0))
    # Not due, yet claimable by its id (an operator's "process again").
    token, rows = await _claim(db, now, key=event_id, lease=timedelta(seconds=30))
    assert rows == [(event_id, 1)]
    _, again = await _claim(db, now, key=event_id)
    assert again == []  # a live worker holds it
    _, taken = await _claim(db, now + timedelta(seconds=31), key=event_id)
    assert taken == [(event_id, 2)]
    async with db.transaction() as session:
        assert not await INBOX.end_claim(session, event_id, token, {"status": "handled"})
