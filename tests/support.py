"""Helpers shared by tests (import as ``from support import ...``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


async def register_user(
    client: httpx.AsyncClient, username: str | None = None, password: str = "s3cret-pass"
) -> dict[str, Any]:
    """Register a user; returns the response body plus ``headers`` for bearer auth."""
    name = username or f"user{uuid.uuid4().hex[:10]}"
    resp = await client.post(
        "/api/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": password},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
    return body


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
