"""The database knows the ledger's words: a type or status the code does not have is
refused by the schema (migration 0010), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from ledger.test_service import new_account
from tokenbank.db import Database
from tokenbank.ledger.models import ReservationStatus, TransactionType
from tokenbank.migrate import alembic_config, downgrade, upgrade
from tokenbank.types import utcnow

from conftest import migrated_postgres_database

pytestmark = pytest.mark.anyio

INSERT_ENTRY = text(
    "INSERT INTO token_transactions (user_id, transaction_type, amount, balance_after, "
    "description, created_at) VALUES (:user_id, :type, 1, 1, '', :now)"
)
INSERT_HOLD = text(
    "INSERT INTO token_reservations (user_id, amount, status, idempotency_key, description, "
    "expires_at, created_at) VALUES (:user_id, 1, :status, :key, '', :now, :now)"
)


async def test_every_transaction_type_is_accepted_and_no_other(db: Database) -> None:
    user_id = await new_account(db)
    for member in TransactionType:
        async with db.transaction() as session:
            await session.execute(
                INSERT_ENTRY, {"user_id": user_id, "type": member, "now": utcnow()}
            )
    for word in ("refunded", "Purchase", "gift", ""):
        with pytest.raises(IntegrityError, match="transaction_type_known"):
            async with db.transaction() as session:
                await session.execute(
                    INSERT_ENTRY, {"user_id": user_id, "type": word, "now": utcnow()}
                )


async def test_every_reservation_status_is_accepted_and_no_other(db: Database) -> None:
    user_id = await new_account(db)
    for member in ReservationStatus:
        async with db.transaction() as session:
            await session.execute(
                INSERT_HOLD, {"user_id": user_id, "status": member, "key": member, "now": utcnow()}
            )
    for word in ("cancelled", "PENDING", "held"):
        with pytest.raises(IntegrityError, match="status_known"):
            async with db.transaction() as session:
                await session.execute(
                    INSERT_HOLD, {"user_id": user_id, "status": word, "key": word, "now": utcnow()}
                )


def _before_0010(url: str) -> str:
    revision = ScriptDirectory.from_config(alembic_config(url)).get_revision("0010")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _ledger_checks(sync_url: str) -> set[str]:
    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            return {
                str(c["name"])
                for table in ("token_transactions", "token_reservations")
                for c in found.get_check_constraints(table)
            }
    finally:
        engine.dispose()


NEW_CHECKS = {"ck_token_transactions_transaction_type_known", "ck_token_reservations_status_known"}


def test_0010_goes_down_and_up_on_sqlite_keeping_the_ledger_append_only(tmp_path: Path) -> None:
    """SQLite rebuilds a table to change its constraints: the rebuilt ledger keeps its
    rows, its append-only triggers and its partial purchase index, both ways."""
    path = tmp_path / "m.db"
    url = f"sqlite:///{path}"
    upgrade(url, _before_0010(url))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "INSERT INTO users (id, username, email, password_hash, is_admin, created_at, "
            "locale) VALUES (1, 'u', 'u@x.test', '-', 0, '2026-01-01', 'en')"
        )
        conn.execute(
            "INSERT INTO token_transactions (user_id, transaction_type, amount, "
            "balance_after, description, stripe_payment_intent_id, created_at) "
            "VALUES (1, 'purchase', 5, 5, '', 'pi_1', '2026-01-01')"
        )
        conn.commit()
    for step in ("up", "down", "up"):
        if step == "up":
            upgrade(url)
        else:
            downgrade(url, _before_0010(url))
        assert (NEW_CHECKS <= _ledger_checks(url)) == (step == "up")
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM token_transactions").fetchone() == (1,)
            for statement in (
                "UPDATE token_transactions SET amount = 6",
                "DELETE FROM token_transactions",
            ):
                with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                    conn.execute(statement)
            with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
                conn.execute(
                    "INSERT INTO token_transactions (user_id, transaction_type, amount, "
                    "balance_after, description, stripe_payment_intent_id, created_at) "
                    "VALUES (1, 'purchase', 5, 10, '', 'pi_1', '2026-01-02')"
                )
            # The unique index is partial: a reversal on the same intent is allowed.
            conn.execute(
                "INSERT INTO token_transactions (user_id, transaction_type, amount, "
                "balance_after, description, stripe_payment_intent_id, created_at) "
                "VALUES (1, 'purchase_reversal', -1, 4, '', 'pi_1', '2026-01-02')"
            )
            conn.rollback()


@pytest.mark.postgres
def test_0010_goes_down_and_up_on_postgresql() -> None:
    with migrated_postgres_database("tokenbank_m0010", "POSTGRESQL MIGRATION TEST") as url:
        sync_url = url.replace("postgresql://", "postgresql+psycopg://")
        assert NEW_CHECKS <= _ledger_checks(sync_url)
        downgrade(url, _before_0010(url))
        assert not NEW_CHECKS & _ledger_checks(sync_url)
        upgrade(url)
        assert NEW_CHECKS <= _ledger_checks(sync_url)
