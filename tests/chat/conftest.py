"""Chat fixtures: the app served by uvicorn, talking to a fake OpenAI server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from chat.fake_openai import FakeOpenAI
from chat.harness import Api, MakeApi, serve_app, served_fake_openai
from tokenbank.app import create_app
from tokenbank.db import Database

from conftest import make_settings


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    with served_fake_openai() as fake:
        yield fake


@pytest.fixture
def fake(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    """The fake AI server, back to answering normally with no requests recorded."""
    fake_openai_server.reset()
    return fake_openai_server


def ai_settings(fake: FakeOpenAI) -> dict[str, Any]:
    return {
        "ai_provider": "openai",
        "openai_base_url": fake.base_url,
        "openai_api_key": "test-key",
        "openai_model": "gpt-test",
        # Generous: the fake server shares this process (and a busy machine) with the
        # app; tests of the deadline itself set a short one (HANG_DEADLINE_S).
        "ai_timeout_s": 3.0,
    }


@pytest.fixture
async def make_api(db_url: str, db: Database, fake: FakeOpenAI) -> AsyncIterator[MakeApi]:
    """Start the app with settings overrides (default: the real openai SDK provider
    pointed at the fake server); everything started is stopped after the test."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Api:
            settings = make_settings(db_url, **{**ai_settings(fake), **overrides})
            url = await stack.enter_async_context(serve_app(create_app(settings)))
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=30)
            )
            return Api(client=client, db=db, fake=fake)

        yield make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()
