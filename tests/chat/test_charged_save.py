"""A charged reply's save: on PostgreSQL the question, the ledger's commit, the answer and
the chat's touch are one statement (``chat.repository.save_charged_reply_pg``); on SQLite
they are the separate steps. Either way it is all or nothing, and charges once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from chat.fake_openai import FakeOpenAI
from chat.harness import Api
from ledger.lots_kit import allot, buy, spend
from tokenbank.chat import flows, service
from tokenbank.chat.errors import AIUnavailable
from tokenbank.chat.models import Chat
from tokenbank.chat.providers import OfflineProvider
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InsufficientTokens
from tokenbank.types import utcnow

from conftest import make_settings
from support import record_statements

pytestmark = pytest.mark.anyio


@pytest.fixture
def api(db: Database, fake: FakeOpenAI) -> Api:
    return Api(client=None, db=db, fake=fake)  # type: ignore[arg-type]


async def _held(
    api: Api, db_url: str, *, key: str | None = None, tokens: int = 10, **settings: Any
) -> tuple[dict[str, Any], service.PendingReply]:
    user = await api.user(tokens)
    async with api.db.transaction() as session:
        chat_id = (await service.create_chat(session, user["id"], None)).id
    pending = await flows.start_reply(
        api.db, OfflineProvider(), make_settings(db_url, **settings),
        user_id=user["id"], chat_id=chat_id, content="hello", idempotency_key=key,
    )
    assert isinstance(pending, service.PendingReply)
    return user, pending


async def _chat_updated_at(api: Api, chat_id: int) -> Any:
    async with api.db.transaction() as session:
        return (await session.execute(select(Chat.updated_at).where(Chat.id == chat_id))).scalar()


async def test_a_charged_save_charges_saves_and_touches_the_chat(api: Api, db_url: str) -> None:
    user, pending = await _held(api, db_url)
    before = await _chat_updated_at(api, pending.chat_id)

    generation = await flows.save_reply(api.db, pending, "the answer", finish_reason="length")

    assert not generation.replayed
    assert (generation.tokens_charged, generation.balance) == (1, 9)
    asked, answer = generation.user_message, generation.ai_message
    assert (asked.role, asked.content, asked.tokens_charged) == ("user", "hello", 0)
    assert (answer.role, answer.content, answer.tokens_charged) == ("assistant", "the answer", 1)
    assert (answer.model, answer.finish_reason) == (pending.model, "length")
    assert answer.id > asked.id
    assert await _chat_updated_at(api, pending.chat_id) > before
    account = await api.account(user)
    assert (account.balance, account.reserved) == (9, 0)
    assert await api.deductions(user) == 1
    assert await api.stored_messages() == 2
    assert await api.violations() == []


async def test_saving_the_same_reply_twice_charges_once(api: Api, db_url: str) -> None:
    """The second save finds the question's key stored: it commits nothing and returns
    the stored reply (the gate on the question keeps the riding commit from running)."""
    user, pending = await _held(api, db_url, key="twice")
    first = await flows.save_reply(api.db, pending, "the answer")
    again = await flows.save_reply(api.db, pending, "another answer")

    assert again.replayed and not first.replayed
    assert again.ai_message.content == "the answer"
    assert again.balance == 9
    assert await api.deductions(user) == 1
    assert await api.stored_messages() == 2
    assert await api.violations() == []


async def test_a_partial_charge_rides_on_the_save(api: Api, db_url: str) -> None:
    """A usage price: the hold is the quote's max, the save charges less, and the rest of
    the hold is available again in the same statement."""
    book = {"models": {"offline-1": {"per_1k_input": 1000, "per_1k_output": 1000, "minimum": 1}}}
    user, pending = await _held(api, db_url, tokens=1000, price_book=book)
    assert pending.cost > 2
    held = await api.account(user)
    assert held.reserved == pending.cost

    generation = await flows.save_reply(api.db, pending, "ok", charge=2)

    assert (generation.tokens_charged, generation.ai_message.tokens_charged) == (2, 2)
    account = await api.account(user)
    assert (account.balance, account.reserved) == (998, 0)
    assert generation.balance == 998
    assert await api.violations() == []


async def test_a_released_hold_saves_nothing(api: Api, db_url: str) -> None:
    user, pending = await _held(api, db_url)
    assert pending.reservation_id is not None
    async with api.db.transaction() as session:
        assert await ledger.release(session, pending.reservation_id)

    with pytest.raises(AIUnavailable) as failure:
        await flows.save_reply(api.db, pending, "too late")

    assert failure.value.reason == "hold_expired"
    assert await api.stored_messages() == 0
    account = await api.account(user)
    assert (account.balance, account.reserved) == (10, 0)
    assert await api.violations() == []


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_charged_save_is_one_statement_on_postgresql(
    api: Api, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN, the save (question, commit, answer, touch), COMMIT: three round trips where
    the separate steps took six."""
    user, pending = await _held(api, db_url)
    sent = record_statements(monkeypatch)

    await flows.save_reply(api.db, pending, "the answer")

    assert sent == ["BEGIN", "WITH", "COMMIT"]
    assert (await api.account(user)).balance == 9


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_racing_replies_and_spends_across_lots_keep_the_ledger_clean(
    api: Api, db_url: str
) -> None:
    """120 replies at once on one account with 24 lots (partial charges, releases) beside
    direct spends: the saves that carry the commit never overdraw, never charge a lot
    twice, and leave the lots holding exactly the balance."""
    user = await api.user(0)
    now = utcnow()
    for i in range(12):
        await allot(api.db, user["id"], 9 + i, now + timedelta(days=1 + i), f"in_{i}")
        await buy(api.db, user["id"], 5 + i, f"pi_{i}")
    total = (await api.account(user)).balance
    async with api.db.transaction() as session:
        chats = [(await service.create_chat(session, user["id"], None)).id for _ in range(8)]
    book = {"models": {"offline-1": {"per_1k_input": 5, "per_1k_output": 5, "minimum": 1}}}
    settings = make_settings(db_url, price_book=book)
    saved: list[int] = []
    refused: list[int] = []

    async def reply(i: int) -> None:
        try:
            if i % 4 == 0:
                await spend(api.db, user["id"], 1 + i % 3, f"spend-{i}")
                return
            pending = await flows.start_reply(
                api.db, OfflineProvider(), settings, user_id=user["id"],
                chat_id=chats[i % len(chats)], content=f"question {i}", idempotency_key=None,
            )
        except InsufficientTokens:
            refused.append(i)
            return
        assert isinstance(pending, service.PendingReply)
        if i % 7 == 0:
            await flows.release_hold(api.db, pending)
            return
        charge = max(pending.cost - i % 3, 1)
        generation = await flows.save_reply(api.db, pending, f"answer {i}", charge=charge)
        saved.append(generation.tokens_charged)
        assert generation.tokens_charged == charge

    outcomes = await asyncio.gather(*(reply(i) for i in range(120)), return_exceptions=True)
    assert [o for o in outcomes if o is not None] == []
    account = await api.account(user)
    assert account.reserved == 0 and 0 <= account.balance < total
    assert refused and len(saved) > 10  # it ran out, and many were served
    assert await api.stored_messages() == 2 * len(saved)
    async with api.db.transaction() as session:
        left = await session.execute(
            text("SELECT sum(remaining), sum(held) FROM token_lots WHERE user_id = :u"),
            {"u": user["id"]},
        )
    assert tuple(left.one()) == (account.balance, 0)
    assert await api.violations() == []
