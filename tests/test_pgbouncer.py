"""The app behind PgBouncer in transaction pooling mode (``DATABASE_PGBOUNCER=true``).

PgBouncer (Debian's 1.18, started by the test in front of the test database) hands each
transaction whichever server connection is free and cannot route named prepared
statements. Through it: charged replies over real HTTP — held, committed, released on a
provider failure, replayed by key, refused when out of tokens — many concurrent spends
stay exact, the hot path's driver units and the sessions both work, and ``tokenbank
ledger check`` finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from chat.fake_openai import FakeOpenAI
from chat.harness import Api, serve_app, served_fake_openai
from ledger.test_service import new_account
from tokenbank.app import create_app
from tokenbank.db import Database, Unit
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InsufficientTokens

from conftest import _truncate_postgres, make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_ai() -> Iterator[FakeOpenAI]:
    with served_fake_openai() as fake:
        yield fake


@pytest.fixture
def emptied(postgres_url: str) -> None:
    _truncate_postgres(postgres_url)


@pytest.fixture
async def bounced(pgbouncer_url: str, emptied: None) -> AsyncIterator[Database]:
    """The test database through PgBouncer, emptied first."""
    db = Database(pgbouncer_url, pool_size=24, pgbouncer=True)
    yield db
    await db.dispose()


@pytest.fixture
async def api(pgbouncer_url: str, bounced: Database, fake_ai: FakeOpenAI) -> AsyncIterator[Api]:
    fake_ai.reset()
    settings = make_settings(
        pgbouncer_url,
        database_pgbouncer=True,
        ai_provider="openai",
        openai_base_url=fake_ai.base_url,
        openai_api_key="test-key",
        openai_model="gpt-test",
        ai_timeout_s=5.0,  # generous: a loaded machine must not turn a reply into a 502
    )
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve_app(create_app(settings)))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
        yield Api(client=client, db=bounced, fake=fake_ai)


async def test_charged_replies_through_pgbouncer(api: Api, pgbouncer_url: str) -> None:
    user = await api.user(tokens=3)
    chat_id = await api.chat(user)

    first = await api.generate(user, chat_id, "Capital of France?", key="k-1")
    assert first.status_code == 200, first.text
    assert first.json()["balance"] == 2
    again = await api.generate(user, chat_id, "Capital of France?", key="k-1")
    assert again.status_code == 200 and again.json()["ai_message"] == first.json()["ai_message"]

    api.fake.set(mode="error")
    failed = await api.generate(user, chat_id, "And of Spain?")
    assert failed.status_code == 502, failed.text  # held, then released: nothing charged
    api.fake.reset()

    for question in ("And of Italy?", "And of Peru?"):
        assert (await api.generate(user, chat_id, question)).status_code == 200
    refused = await api.generate(user, chat_id, "And of Chile?")
    assert refused.status_code == 402, refused.text
    assert (refused.json()["error"]["balance"], refused.json()["error"]["required"]) == (0, 1)

    account = await api.account(user)
    assert (account.balance, account.reserved) == (0, 0)
    assert await api.deductions(user) == 3
    assert await api.violations() == []
    assert _ledger_check(pgbouncer_url).returncode == 0


async def test_forty_concurrent_replies_with_ten_tokens_charge_exactly_ten(api: Api) -> None:
    user = await api.user(tokens=10)
    chat_id = await api.chat(user)
    api.fake.set(delay_s=0.05)
    responses = await asyncio.gather(
        *(api.generate(user, chat_id, f"question {i}") for i in range(40))
    )
    statuses = [r.status_code for r in responses]
    assert (statuses.count(200), statuses.count(402)) == (10, 30), statuses
    account = await api.account(user)
    assert (account.balance, account.reserved) == (0, 0)
    assert await api.deductions(user) == 10
    assert await api.violations() == []


async def test_concurrent_spends_on_driver_units_stay_exact(bounced: Database) -> None:
    """200 holds and commits from 32 tasks over 24 pooled connections, PgBouncer's pool
    of 10 server connections between them: every statement unnamed, none lost."""
    user_id = await new_account(bounced, 150)
    outcomes: list[str] = []

    async def charge(i: int) -> None:
        async def hold(unit: Unit) -> ledger.Reservation:
            return await ledger.reserve(
                unit, user_id, 1, idempotency_key=f"c{i}", ttl_s=60, durable=False
            )

        try:
            held = await bounced.run(hold)
        except InsufficientTokens:
            outcomes.append("refused")
            return

        async def settle(unit: Unit) -> ledger.Settled:
            return await ledger.settle(unit, held.id, "spend")

        await bounced.run(settle)
        outcomes.append("charged")

    queue = list(range(200))

    async def worker() -> None:
        while queue:
            await charge(queue.pop())

    await asyncio.gather(*(worker() for _ in range(32)))
    assert (outcomes.count("charged"), outcomes.count("refused")) == (150, 50)
    async with bounced.transaction() as session:
        b = await ledger.balance(session, user_id)
        assert (b.balance, b.reserved) == (0, 0)
        assert await ledger.check(session) == []


def _ledger_check(url: str) -> subprocess.CompletedProcess[str]:
    """``tokenbank ledger check`` as an operator runs it, through PgBouncer too."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "tokenbank"), "ledger", "check"],
        env={**os.environ, "DATABASE_URL": url, "DATABASE_PGBOUNCER": "true"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
