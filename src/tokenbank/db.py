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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

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
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeout_s,
        connect_args={
            "timeout": timeout_s,
            "command_timeout": max(timeout_s * 6, 30.0),
            # Per-day reports and date() must mean UTC days whatever the server's zone.
            "server_settings": {"timezone": "UTC"},
        },
    )


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
        """A session whose transaction commits on success and rolls back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
