"""The charging flow's edges that HTTP alone cannot reach: expiry, cancellation, start-up."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from chat.fake_openai import FakeOpenAI
from chat.harness import Api
from tokenbank.app import create_app
from tokenbank.chat import flows, service
from tokenbank.chat.errors import AIUnavailable, HoldShorterThanAITimeout
from tokenbank.chat.providers import OfflineProvider, OpenAICompatProvider
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenAccount
from tokenbank.observability import AI_FAILURES
from tokenbank.types import utcnow

from conftest import make_settings
from support import wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def api(db: Database, fake: FakeOpenAI) -> Api:
    """No app: these tests call the service with the test's own database."""
    return Api(client=None, db=db, fake=fake)  # type: ignore[arg-type]


async def _chat(api: Api, user: dict[str, Any]) -> int:
    async with api.db.transaction() as session:
        return (await service.create_chat(session, user["id"], None)).id


async def _held_reply(api: Api, db_url: str) -> tuple[dict[str, Any], service.PendingReply]:
    """A user with a chat whose reply is held, waiting for the AI."""
    user = await api.user()
    chat_id = await _chat(api, user)
    pending = await flows.start_reply(
        api.db, OfflineProvider(), make_settings(db_url),
        user_id=user["id"], chat_id=chat_id, content="hello", idempotency_key=None,
    )
    assert isinstance(pending, service.PendingReply)
    return user, pending


async def test_a_reply_whose_hold_expired_is_neither_charged_nor_saved(
    api: Api, db_url: str
) -> None:
    user, pending = await _held_reply(api, db_url)
    async with api.db.transaction() as session:  # the sweeper runs while the AI is slow
        assert await ledger.expire_reservations(session, now=utcnow() + timedelta(hours=1)) == 1

    with pytest.raises(AIUnavailable) as failure:
        await flows.save_reply(api.db, pending, "a late reply")

    assert failure.value.reason == "hold_expired"
    account = await api.account(user)
    assert (account.balance, account.reserved) == (10, 0)
    assert await api.stored_messages() == 0
    assert await api.violations() == []


async def test_a_reply_whose_hold_is_gone_is_neither_charged_nor_saved(
    api: Api, db_url: str
) -> None:
    """A hold lost with a database crash (its transaction did not wait for the disk)."""
    user, pending = await _held_reply(api, db_url)
    lost = dataclasses.replace(pending, reservation_id=(pending.reservation_id or 0) + 1000)

    counted = AI_FAILURES.labels("hold_expired")._value.get()
    with pytest.raises(AIUnavailable) as failure:
        await flows.save_reply(api.db, lost, "a reply after the crash")
    assert AI_FAILURES.labels("hold_expired")._value.get() == counted + 1

    assert (failure.value.reason, failure.value.status_code) == ("hold_expired", 502)
    assert await api.stored_messages() == 0
    account = await api.account(user)
    assert (account.balance, account.reserved) == (10, 1)  # the real hold, until swept
    assert await api.violations() == []


async def test_a_cancelled_request_releases_its_hold_at_once(api: Api, db_url: str) -> None:
    settings = make_settings(db_url, ai_timeout_s=30)
    provider = OpenAICompatProvider(
        api_key="test-key", model="gpt-test", base_url=api.fake.base_url, timeout_s=30
    )
    user = await api.user()
    chat_id = await _chat(api, user)
    api.fake.set(mode="hang")
    task = asyncio.create_task(
        flows.generate(
            api.db, provider, settings,
            user_id=user["id"], chat_id=chat_id, content="hello", idempotency_key="c-1",
        )
    )

    async def waiting_on_the_ai() -> bool:
        return len(api.fake.requests) == 1

    await wait_for(waiting_on_the_ai, timeout_s=5, what="the provider call")
    assert (await api.account(user)).reserved == 1
    task.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await task

    async def released() -> bool:
        return (await api.account(user)).reserved == 0

    await wait_for(released, timeout_s=5, what="the hold to be released")
    assert (await api.account(user)).balance == 10
    assert await api.stored_messages() == 0
    await provider.aclose()


async def test_a_settle_completes_when_its_caller_is_cancelled(api: Api, db_url: str) -> None:
    user, pending = await _held_reply(api, db_url)
    caller = asyncio.create_task(flows.settle_reply(api.db, pending, "a reply"))
    await asyncio.sleep(0)  # the caller starts the settle and waits for it
    caller.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await caller

    assert await flows.wait_for_settles(10) == 0  # what app shutdown waits on
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert await api.deductions(user) == 1
    assert await api.stored_messages() == 2
    assert await api.violations() == []


async def test_a_stream_closed_after_text_was_sent_is_settled_as_interrupted(
    api: Api, db_url: str
) -> None:
    user, pending = await _held_reply(api, db_url)
    provider = OpenAICompatProvider(
        api_key="test-key", model="gpt-test", base_url=api.fake.base_url, timeout_s=30
    )
    api.fake.set(text="one two three four", chunks=4, delay_s=0.2)
    events = flows.stream_reply(api.db, provider, pending)
    assert isinstance(await anext(events), service.ReplyStarted)
    first = await anext(events)
    assert isinstance(first, service.ReplyDelta)

    await events.aclose()  # the response ended with this delta handed to the server

    assert await flows.wait_for_settles(10) == 0
    async with api.db.transaction() as session:
        stored = await service.list_messages(session, user["id"], pending.chat_id)
    assert [(m.role, m.content, m.interrupted) for m in stored] == [
        ("user", "hello", False), ("assistant", first.text, True),
    ]
    assert (await api.account(user)).balance == 9
    assert await api.violations() == []
    await provider.aclose()


async def test_shutdown_waits_for_a_settle_whose_client_left(api: Api, db_url: str) -> None:
    app = create_app(make_settings(db_url))
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    app_db: Database = app.state.db
    user = await api.user()
    chat_id = await _chat(api, user)
    pending = await flows.start_reply(
        app_db, OfflineProvider(), make_settings(db_url),
        user_id=user["id"], chat_id=chat_id, content="hello", idempotency_key=None,
    )
    assert isinstance(pending, service.PendingReply)

    async with api.db.transaction() as session:
        # The test holds the account (a row lock; SQLite: the write lock), so the
        # reply's settle waits for it.
        await session.execute(
            update(TokenAccount).where(TokenAccount.user_id == user["id"])
            .values(updated_at=TokenAccount.updated_at)
        )
        caller = asyncio.create_task(flows.settle_reply(app_db, pending, "a reply"))
        await asyncio.sleep(0)
        caller.cancel()  # the client left while its reply was being charged
        with pytest.raises(asyncio.CancelledError):
            await caller
        shutdown = asyncio.create_task(lifespan.__aexit__(None, None, None))
        done, _ = await asyncio.wait({shutdown}, timeout=0.5)
        assert not done, "shutdown closed the database under a settle in flight"

    await asyncio.wait_for(shutdown, timeout=30)  # the settle finished, then shutdown did
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert await api.stored_messages() == 2
    assert await api.violations() == []


async def test_a_hold_must_outlive_the_ai_deadline(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/unused.db"
    with pytest.raises(HoldShorterThanAITimeout, match="RESERVATION_TTL_S"):
        service.start_provider(make_settings(url, reservation_ttl_s=30, ai_timeout_s=30))
    provider = service.start_provider(make_settings(url, reservation_ttl_s=31, ai_timeout_s=30))
    assert provider.name == "offline"


async def test_the_app_refuses_to_start_with_a_hold_shorter_than_the_deadline(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/unused.db"
    app = create_app(make_settings(url, reservation_ttl_s=10, ai_timeout_s=30))

    with pytest.raises(HoldShorterThanAITimeout):
        async with app.router.lifespan_context(app):
            pass
