"""Migration 0013: each existing balance becomes one non-expiring lot, pending holds are
allocated to it, and the ledger's lot rules hold right after; it goes down and up again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.migrate import downgrade, upgrade

from conftest import migrated_postgres_database

ROWS = [
    "INSERT INTO users (id, username, email, password_hash, is_admin, created_at, locale) "
    "VALUES (1, 'a', 'a@x.test', '-', false, '2026-01-01', 'en'), "
    "(2, 'b', 'b@x.test', '-', false, '2026-01-01', 'en'), "
    "(3, 'c', 'c@x.test', '-', false, '2026-01-01', 'en')",
    "INSERT INTO token_accounts (user_id, balance, reserved, created_at, updated_at) "
    "VALUES (1, 40, 15, '2026-01-01', '2026-01-01'), (2, -5, 0, '2026-01-01', '2026-01-01'), "
    "(3, 0, 0, '2026-01-01', '2026-01-01')",
    "INSERT INTO token_transactions (user_id, transaction_type, amount, balance_after, "
    "description, created_at) VALUES (1, 'grant', 40, 40, '', '2026-01-01'), "
    "(2, 'purchase', 5, 5, '', '2026-01-01'), "
    "(2, 'purchase_reversal', -10, -5, '', '2026-01-02')",
    "INSERT INTO token_reservations (user_id, amount, status, idempotency_key, description, "
    "expires_at, created_at) VALUES (1, 10, 'pending', 'h1', '', '2030-01-01', '2026-01-01'), "
    "(1, 5, 'pending', 'h2', '', '2030-01-01', '2026-01-01'), "
    "(1, 7, 'committed', 'h3', '', '2030-01-01', '2026-01-01')",
]


def _migrate_with_old_rows(url: str, sync_url: str) -> None:
    upgrade(url, "0011")
    engine = create_engine(sync_url)
    try:
        with engine.begin() as conn:
            for sql in ROWS:
                conn.execute(text(sql))
    finally:
        engine.dispose()
    upgrade(url)


def _lots(sync_url: str) -> list[tuple[int, ...]]:
    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            lots = conn.execute(
                text(
                    "SELECT user_id, amount, remaining, held, expires_at IS NULL FROM token_lots"
                    " WHERE source = 'adjustment' ORDER BY user_id"
                )
            ).all()
            allocations = conn.execute(
                text("SELECT amount FROM token_reservation_lots ORDER BY reservation_id")
            ).all()
            return [tuple(int(v) for v in r) for r in lots] + [(int(a[0]),) for a in allocations]
    finally:
        engine.dispose()


async def _check(url: str) -> list[ledger.Violation]:
    db = Database(url, pool_size=2)
    try:
        async with db.transaction() as session:
            return await ledger.check(session)
    finally:
        await db.dispose()


EXPECTED = [(1, 40, 40, 15, 1), (10,), (5,)]


def _round_trip(url: str, sync_url: str) -> None:
    _migrate_with_old_rows(url, sync_url)
    assert _lots(sync_url) == EXPECTED
    assert asyncio.run(_check(url)) == []
    downgrade(url, "0011")
    upgrade(url)
    assert _lots(sync_url) == EXPECTED


def test_0013_makes_one_lot_per_balance_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    _round_trip(url, url)


@pytest.mark.postgres
def test_0013_makes_one_lot_per_balance_on_postgresql() -> None:
    with migrated_postgres_database("tokenbank_m0013", "POSTGRESQL MIGRATION TEST") as url:
        downgrade(url, "0011")
        _round_trip(url, url.replace("postgresql://", "postgresql+psycopg://"))
