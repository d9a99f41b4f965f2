"""Fixtures for the provider tests: the anyio backend and the fake AI servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette

from chat.providers.fake_ai_servers import FakeServer, gemini_app, openai_app, serve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _fake_server(make_app: Callable[[FakeServer], Starlette]) -> Iterator[FakeServer]:
    server = FakeServer(url="")
    with serve(make_app(server)) as url:
        server.url = url
        yield server


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeServer]:
    yield from _fake_server(openai_app)


@pytest.fixture(scope="session")
def gemini_server() -> Iterator[FakeServer]:
    yield from _fake_server(gemini_app)
