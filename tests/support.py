"""Helpers shared by tests (import as ``from support import ...``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx

from tokenbank.config import Settings
from tokenbank.observability import JsonFormatter


async def register_user(
    client: httpx.AsyncClient,
    username: str | None = None,
    password: str = "s3cret-pass",
    *,
    verify: bool = True,
    db: Any = None,
) -> dict[str, Any]:
    """Register a user and (unless ``verify=False``) verify their email through the real
    verify route, which grants the sign-up bonus; returns the register response body
    plus ``headers`` for bearer auth.

    Verifying mints the emailed link's token in the app's database: ``db`` (a
    ``Database``) for a client of a running server, else the ASGI client's own app's.
    """
    name = username or f"user{uuid.uuid4().hex[:10]}"
    resp = await client.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": password},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
    if verify:
        await verify_email(client, int(body["user"]["id"]), db=db)
    return body


async def email_link_token(
    client: httpx.AsyncClient, user_id: int, purpose: str, db: Any = None
) -> str:
    """A fresh emailed-link token for ``user_id``, made as the app makes it (for tests that
    are not about the email itself; tests/auth/test_email.py reads real mail)."""
    from tokenbank.auth import email_links
    from tokenbank.db import Database
    from tokenbank.types import utcnow

    if db is None:
        transport = client._transport
        app = getattr(client, "app", None) or getattr(transport, "app", None)
        assert app is not None, "pass db= to verify users of a running server"
        db = app.state.db
    assert isinstance(db, Database)
    async with db.transaction() as session:
        return await email_links.issue(session, user_id, purpose, 3600, utcnow())


async def verify_email(client: httpx.AsyncClient, user_id: int, db: Any = None) -> None:
    token = await email_link_token(client, user_id, "verify_email", db=db)
    resp = await client.post("/api/auth/verify-email", json={"token": token})
    assert resp.status_code == 200, resp.text


class LogLines(logging.Handler):
    """Every record handed to it, as the JSON line production writes (see the
    ``log_lines`` fixture)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0, interval_s: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(interval_s)


@contextmanager
def serve_app(settings: Settings, *, timeout_s: float = 10.0) -> Iterator[str]:
    """Run the real app under uvicorn on a free 127.0.0.1 port in a background thread.

    Yields its base URL (``http://127.0.0.1:PORT``). For tests where something outside
    the test process must reach the app over HTTP (the local Stripe server's webhooks, a
    browser). The app's lifespan runs in that thread, with its own event loop.
    """
    import socket
    import threading

    import uvicorn

    from tokenbank.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_level="warning", lifespan="on", timeout_graceful_shutdown=2,
        timeout_keep_alive=75,  # past the clients' own 5 s, as `tokenbank serve`
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"app:{port}"
    )
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not server.started:  # uvicorn's own flag: poll it with a deadline
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)
        sock.close()


async def terminate_backend(database_url: str, pid: int) -> None:
    """End one PostgreSQL backend from another connection (a connection lost under a test)."""
    from sqlalchemy import text

    from tokenbank.db import Database

    other = Database(database_url, pool_size=1)
    try:
        async with other.transaction() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()


def record_statements(monkeypatch: Any) -> list[str]:
    """The first word of every statement asyncpg sends from now on (``BEGIN``, ``WITH``,
    ``SELECT``...), in order: round trips counted where each costs both processes CPU."""
    sent: list[str] = []
    for name in ("execute", "fetch", "fetchrow", "fetchval"):
        real = getattr(asyncpg.Connection, name)

        async def recording(self: Any, query: str, *args: Any, _real: Any = real) -> Any:
            sent.append(query.split(None, 1)[0])
            return await _real(self, query, *args)

        monkeypatch.setattr(asyncpg.Connection, name, recording)
    return sent
