"""Migration 0020 (a rolled webhook secret) goes down and up again on both databases."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from tokenbank.db import normalize_url
from tokenbank.migrate import downgrade, upgrade


async def _columns(url: str) -> set[str]:
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("webhook_endpoints")}
            )
    finally:
        await engine.dispose()


def test_0020_downgrades_and_upgrades(db_url: str) -> None:
    """Sync: the migration runner starts its own event loop."""
    rolled = {"previous_secret", "previous_secret_expires_at"}
    assert rolled <= asyncio.run(_columns(db_url))
    downgrade(db_url, "0019")
    assert not rolled & asyncio.run(_columns(db_url))
    upgrade(db_url)
    assert rolled <= asyncio.run(_columns(db_url))
