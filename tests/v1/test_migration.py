"""Migration 0011 goes down and up again on both databases, with data in the new tables."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from tokenbank.db import normalize_url
from tokenbank.migrate import downgrade, upgrade


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    return names


async def _run(url: str, sql: str) -> None:
    engine = create_async_engine(normalize_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def test_0011_downgrades_and_upgrades(db_url: str) -> None:
    """Sync: the migration runner starts its own event loop."""
    asyncio.run(_run(db_url, "INSERT INTO api_keys (name, prefix, secret_hash, scopes, created_at) "
                       "VALUES ('k', 'tbk_x', 'h', 'read', CURRENT_TIMESTAMP)"))
    assert {"api_keys", "customers"} <= asyncio.run(_tables(db_url))
    downgrade(db_url, "0008")
    assert not {"api_keys", "customers"} & asyncio.run(_tables(db_url))
    upgrade(db_url)
    assert {"api_keys", "customers"} <= asyncio.run(_tables(db_url))
