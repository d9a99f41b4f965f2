"""The app running under a real uvicorn server, and what chat tests ask of it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select
from starlette.types import ASGIApp as ASGIApplication

from chat.fake_openai import FakeOpenAI
from tokenbank.auth import sessions as auth_sessions
from tokenbank.auth.models import User
from tokenbank.chat.models import Message
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenReservation, TokenTransaction
from tokenbank.types import utcnow

from conftest import TEST_JWT_SECRET

#: The AI deadline for tests that wait for it to pass (the fixtures' default is generous).
HANG_DEADLINE_S = 0.5

# Signs test sessions' access tokens as the app under test does.
_TOKEN_SETTINGS = Settings(_env_file=None, app_env="test", jwt_secret=TEST_JWT_SECRET)  # type: ignore[call-arg]


def _start(app: ASGIApplication, lifespan: str) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        lifespan=lifespan,  # type: ignore[arg-type]
        log_config=None,
        log_level="critical",
        # uvloop when installed: a plain asyncio loop in a second thread answered each
        # request ~45 ms late on this machine class.
        loop="auto",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=75,  # past the clients' own 5 s, as `tokenbank serve`
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def serve_app(app: ASGIApplication) -> AsyncIterator[str]:
    """Run `app` (lifespan included) on a free 127.0.0.1 port in its own thread."""
    server, thread, url = _start(app, "on")
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the app failed to start"
        assert time.monotonic() < deadline, "the app did not start within 10 s"
        await asyncio.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)


@contextmanager
def serve_sync(app: ASGIApplication) -> Iterator[str]:
    """The same, for a session-wide server started outside any event loop."""
    server, thread, url = _start(app, "off")
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)  # polling the start flag with a deadline; no loop to await on
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def served_fake_openai() -> Iterator[FakeOpenAI]:
    """The fake OpenAI-compatible server, serving (``fake.url`` set)."""
    fake = FakeOpenAI()
    with serve_sync(fake.app()) as url:
        fake.url = url
        yield fake


@dataclass
class Api:
    """An HTTP client for the running app, the test's own view of its database, and
    the fake AI server behind it."""

    client: httpx.AsyncClient
    db: Database
    fake: FakeOpenAI

    async def user(self, tokens: int = 10) -> dict[str, Any]:
        """A user holding `tokens`, made directly in the database (password hashing
        would dominate the suite's time, and no test here is about signing up)."""
        name = f"user{uuid.uuid4().hex[:10]}"
        async with self.db.transaction() as session:
            user = User(username=name, email=f"{name}@example.com", password_hash="unused")
            session.add(user)
            await session.flush()
            await ledger.open_account(session, user.id)
            if tokens:
                await ledger.grant(session, user.id, tokens, "test tokens")
            issued = await auth_sessions.start(session, user.id, _TOKEN_SETTINGS, utcnow())
        token = issued.access_token
        return {"id": user.id, "headers": {"Authorization": f"Bearer {token}"}}

    async def chat(self, user: dict[str, Any], title: str | None = None) -> int:
        r = await self.client.post(
            "/api/chats", json={} if title is None else {"title": title}, headers=user["headers"]
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def generate(
        self, user: dict[str, Any], chat_id: int, content: str = "Capital of France?",
        key: str | None = None,
    ) -> httpx.Response:
        headers = dict(user["headers"])
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post(
            f"/api/chats/{chat_id}/generate", json={"content": content}, headers=headers
        )

    async def stream(
        self, user: dict[str, Any], chat_id: int, content: str = "Capital of France?"
    ) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
        """POST to the streaming route and read every server-sent event."""
        async with self.client.stream(
            "POST", f"/api/chats/{chat_id}/generate/stream",
            json={"content": content}, headers=user["headers"],
        ) as r:
            if r.headers.get("content-type", "").startswith("text/event-stream"):
                return r, parse_events(await r.aread())
            await r.aread()
            return r, []

    async def messages(self, user: dict[str, Any], chat_id: int) -> list[dict[str, Any]]:
        r = await self.client.get(f"/api/chats/{chat_id}/messages", headers=user["headers"])
        assert r.status_code == 200, r.text
        body: list[dict[str, Any]] = r.json()
        return body

    async def account(self, user: dict[str, Any]) -> ledger.Balance:
        async with self.db.transaction() as session:
            return await ledger.balance(session, user["id"])

    async def violations(self) -> list[ledger.Violation]:
        async with self.db.transaction() as session:
            return await ledger.check(session)

    async def count(self, model: Any, **where: Any) -> int:
        stmt = select(func.count()).select_from(model)
        for column, value in where.items():
            stmt = stmt.where(getattr(model, column) == value)
        async with self.db.transaction() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def ai_messages(self) -> int:
        return await self.count(Message, role="assistant")

    async def stored_messages(self) -> int:
        return await self.count(Message)

    async def deductions(self, user: dict[str, Any]) -> int:
        return await self.count(
            TokenTransaction, user_id=user["id"], transaction_type="deduction"
        )

    async def reservations(self, user: dict[str, Any]) -> int:
        return await self.count(TokenReservation, user_id=user["id"])


MakeApi = Callable[..., Awaitable[Api]]


def parse_event(block: str) -> tuple[str, Any]:
    """`(event, data)` of one server-sent event (the text between two blank lines);
    ``data`` is None when the block has none."""
    name, data = "message", None
    for line in block.splitlines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
    return name, data


def parse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """`(event, data)` pairs of a server-sent-event body; comments are skipped."""
    events = []
    for block in raw.decode().split("\n\n"):
        name, data = parse_event(block)
        if data is not None:
            events.append((name, data))
    return events
