"""Replies cancelled at random moments inside the process, on both databases.

Over HTTP a client that leaves cancels only the stream's body (the hold is taken before
it starts, the settle and the release are tasks of their own). A request can still be
cancelled anywhere — a server shutting down, a deadline above the route — so here the
reply flow itself (``generate``, and ``start_reply`` + ``stream_reply`` as the stream
route runs them) is cancelled at random awaits, the hold's unit of work included.
Afterwards the database answers at once (no connection handed back mid-transaction, no
SQLite lock left behind), every hold is resolved at once — settled if and only if its
reply was saved, released otherwise, none left for the sweeper (the hold's unit finishes
on its own and gives the hold back when its caller was cancelled) — and the ledger is
whole.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from collections import Counter
from contextlib import aclosing
from typing import Any

import pytest
from sqlalchemy import select, text

from chat.fake_openai import FakeOpenAI
from chat.harness import Api
from tokenbank.chat import flows, service
from tokenbank.chat.models import Message
from tokenbank.chat.providers import OpenAICompatProvider
from tokenbank.db import Database
from tokenbank.ledger.models import TokenReservation

from conftest import make_settings

pytestmark = pytest.mark.anyio

REPLIES = 204
AT_ONCE = 12
USERS = 10
START_TOKENS = 100
CANCEL_WITHIN_S = 0.3


@pytest.fixture
def api(db: Database, fake: FakeOpenAI) -> Api:
    return Api(client=None, db=db, fake=fake)  # type: ignore[arg-type]


async def test_replies_cancelled_at_random_moments_leave_the_database_whole(
    api: Api, db_url: str
) -> None:
    rng = random.Random(7)
    settings = make_settings(db_url, ai_timeout_s=30, reservation_ttl_s=600)
    provider = OpenAICompatProvider(
        api_key="test-key", model="gpt-test", base_url=api.fake.base_url, timeout_s=30
    )
    api.fake.set(text="A reply in four parts.", chunks=4, delay_s=0.02)
    users = [await api.user(START_TOKENS) for _ in range(USERS)]
    chats = {}
    for user in users:
        async with api.db.transaction() as session:
            chats[user["id"]] = (await service.create_chat(session, user["id"], None)).id

    async def reply(user: dict[str, Any], key: str, stream: bool) -> str:
        common: dict[str, Any] = {
            "user_id": user["id"], "chat_id": chats[user["id"]], "content": key,
            "idempotency_key": key,
        }
        if not stream:
            await flows.generate(api.db, provider, settings, **common)
            return "done"
        started = await flows.start_reply(api.db, provider, settings, **common)
        assert isinstance(started, service.PendingReply)
        async with aclosing(flows.stream_reply(api.db, provider, started)) as events:
            async for _ in events:
                pass
        return "done"

    outcomes: Counter[str] = Counter()
    keys: list[str] = []
    for _ in range(REPLIES // AT_ONCE):
        tasks = []
        for _ in range(AT_ONCE):
            key = f"cancel-{uuid.uuid4().hex[:10]}"
            keys.append(key)
            task = asyncio.create_task(reply(rng.choice(users), key, rng.random() < 0.5))
            tasks.append((task, rng.uniform(0, CANCEL_WITHIN_S)))
        started = time.monotonic()
        for task, at in sorted(tasks, key=lambda t: t[1]):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            task.cancel()
        for task, _ in tasks:
            try:
                outcomes[await task] += 1
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
    assert await flows.wait_for_settles(30) == 0
    await provider.aclose()

    # The database answers at once: every pooled connection is usable (as many at once as
    # the pool keeps: the test's database pool holds 24), nothing is locked.
    async def ping() -> int:
        async with api.db.transaction() as session:
            return int((await session.execute(text("SELECT 1"))).scalar_one())

    assert await asyncio.wait_for(asyncio.gather(*(ping() for _ in range(24))), 10) == [1] * 24
    if db_url.startswith("sqlite"):
        other = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=2)
        other.execute("BEGIN IMMEDIATE")  # "database is locked" if a cut unit kept the lock
        other.rollback()
        other.close()
    else:
        async with api.db.transaction() as session:
            stuck = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND state LIKE 'idle in transaction%'"
                    )
                )
            ).scalar_one()
        assert stuck == 0

    async with api.db.transaction() as session:
        holds = dict(
            (
                await session.execute(
                    select(TokenReservation.idempotency_key, TokenReservation.status)
                )
            ).all()
        )
        saved = Counter(
            (
                await session.execute(
                    select(Message.idempotency_key).where(Message.role == "assistant")
                )
            ).scalars()
        )
    by_key = {k.rsplit(":", 1)[1]: status for k, status in holds.items()}
    for key in keys:
        # Settled if and only if saved; never left pending.
        assert by_key.get(key) in (None, "committed", "released"), (key, by_key.get(key))
        assert (by_key.get(key) == "committed") == (saved[key] == 1), key
    assert await api.violations() == []
    for user in users:
        account = await api.account(user)
        assert account.reserved == 0
    print(f"cancelled at random: {dict(outcomes)}, holds: {dict(Counter(by_key.values()))}")
