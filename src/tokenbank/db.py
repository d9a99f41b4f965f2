"""Database engine, sessions and the unit of work.

``DATABASE_URL`` takes the usual forms (``sqlite:///path``, ``postgresql://user@host/db``)
and the driver is picked here: aiosqlite for SQLite, asyncpg for PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing
with "database is locked" when a reader upgrades to a writer.

Services never commit: the request dependency (or the CLI command / background job)
owns the transaction through :func:`Database.transaction`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UnsupportedDatabaseURL(ValueError):
    """DATABASE_URL names a database we do not support."""


def normalize_url(raw: str) -> URL:
    """Map a user-facing URL to the async driver we use for it."""
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    raise UnsupportedDatabaseURL(
        f"unsupported DATABASE_URL scheme {url.drivername!r}: use sqlite:/// or postgresql://"
    )


def sync_url(raw: str) -> URL:
    """The same database through a synchronous driver (used by Alembic's offline tools)."""
    url = make_url(raw)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite")
    return url.set(drivername="postgresql+psycopg")


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _ensure_sqlite_dir(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit transactions are off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(database_url: str, *, pool_size: int = 10, timeout_s: float = 5.0) -> AsyncEngine:
    url = normalize_url(database_url)
    if is_sqlite(url):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"timeout": max(timeout_s, 30.0)},
        )
        _install_sqlite_pragmas(engine, busy_timeout_ms=int(max(timeout_s, 30.0) * 1000))
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout_s,
        connect_args={
            "timeout": timeout_s,
            "command_timeout": max(timeout_s * 6, 30.0),
            # Per-day reports and date() must mean UTC days whatever the server's zone.
            "server_settings": {"timezone": "UTC"},
        },
    )
    _discard_closed_connections(engine)
    return engine


def _discard_closed_connections(engine: AsyncEngine) -> None:
    """Replace pooled connections the server has closed, without a round trip.

    ``pool_pre_ping`` costs three round trips per checkout with asyncpg (BEGIN, a ping,
    ROLLBACK) — more than a whole ledger charge. When PostgreSQL restarts or ends a
    backend, asyncpg sees the socket close and marks the connection closed, which is the
    very test SQLAlchemy's asyncpg dialect uses to call an error a disconnect; raising
    ``DisconnectionError`` here makes the pool drop it and hand out a fresh one. A
    connection that dies silently is caught by its first statement (503, then replaced).
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise DisconnectionError("connection closed by the server")


class Database:
    """An engine plus a session factory; one per process."""

    def __init__(self, database_url: str, *, pool_size: int = 10, timeout_s: float = 5.0) -> None:
        self.url = normalize_url(database_url)
        self.engine = create_engine(database_url, pool_size=pool_size, timeout_s=timeout_s)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        Spelled out rather than ``async with sessionmaker() as s, s.begin()``: that form
        costs about a hundred more Python calls per transaction (an extra greenlet hop and
        a task to shield the close), and every request and every charge pays it.
        """
        session = self.sessionmaker()
        try:
            yield session
            await session.commit()
        except BaseException:
            # close() rolls back; shielded as SQLAlchemy's own __aexit__ does, so a
            # cancelled request still hands its connection back to the pool.
            await asyncio.shield(session.close())
            raise
        await session.close()

    async def dispose(self) -> None:
        await self.engine.dispose()
