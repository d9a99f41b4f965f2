"""A reply's history read: only what the prompt keeps, the same turns as cutting in Python.

On both databases, with characters outside ASCII (the database counts characters, as
Python's ``len`` does), chats longer than the read's limit, and chats that are not the
caller's.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tokenbank.auth.models import User
from tokenbank.chat import repository as repo
from tokenbank.chat.providers import ChatTurn, build_prompt, history_budget
from tokenbank.db import Database
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio

WORDS = ("ok", "héllo wörld", "日本語のテキスト", "🙂🙂", "a longer sentence " * 4, "x")


async def _user(db: Database, name: str) -> int:
    async with db.transaction() as session:
        user = User(username=name, email=f"{name}@example.com", password_hash="-")
        session.add(user)
        await session.flush()
        return int(user.id)


async def _chat_with(db: Database, user_id: int, contents: list[str]) -> int:
    now = utcnow()
    async with db.transaction() as session:
        chat_id = int((await repo.insert_chat(session, user_id, "t", now)).id)
        for n, content in enumerate(contents):
            await repo.insert_message(
                session,
                {
                    "chat_id": chat_id,
                    "role": ("user", "assistant")[n % 2],
                    "content": content,
                    "tokens_charged": 0,
                    "model": None,
                    "reply_to_id": None,
                    "idempotency_key": f"k{n // 2}",
                    "created_at": now + timedelta(milliseconds=n),
                    "interrupted": False,
                },
            )
    return chat_id


async def _read(db: Database, user_id: int, chat_id: int, limit: int, budget: int) -> object:
    async with db.transaction() as session:
        found = await repo.history(session, user_id, chat_id, limit, budget)
    return None if found is None else found.turns


async def test_the_read_keeps_exactly_what_the_prompt_would(db: Database) -> None:
    rng = random.Random(12)
    owner = await _user(db, "owner")
    for case in range(12):
        contents = [rng.choice(WORDS) for _ in range(rng.randint(1, 130))]
        chat_id = await _chat_with(db, owner, contents)
        new, system = "question?", ("Be brief." if case % 2 else None)
        budget_chars = rng.choice([0, 15, 40, 200, 2000, 10**6])
        everything = [ChatTurn(("user", "assistant")[n % 2], c) for n, c in enumerate(contents)]
        expected = build_prompt(
            everything[-100:], new, budget_chars=budget_chars, system_prompt=system
        )

        read = await _read(db, owner, chat_id, 100, history_budget(budget_chars, new, system))

        assert isinstance(read, list)
        # The read sends nothing the prompt drops, and the prompt built from it is the same.
        assert read == [t for t in expected if t.role != "system"][:-1]
        assert build_prompt(read, new, budget_chars=budget_chars, system_prompt=system) == (
            expected
        )


async def test_someone_elses_chat_is_none_and_an_empty_one_is_empty(db: Database) -> None:
    owner, other = await _user(db, "owner"), await _user(db, "other")
    chat_id = await _chat_with(db, owner, ["hello", "hi"])
    empty = await _chat_with(db, owner, [])

    assert await _read(db, other, chat_id, 100, 1000) is None
    assert await _read(db, owner, 10**9, 100, 1000) is None
    assert await _read(db, owner, empty, 100, 1000) == []
    assert await _read(db, owner, chat_id, 100, -1) == []  # nothing fits: still the owner's
    assert await _read(db, owner, chat_id, 100, 1000) == [
        ChatTurn("user", "hello"),
        ChatTurn("assistant", "hi"),
    ]
