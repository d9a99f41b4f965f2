"""Database engine, sessions and the unit of work.

``DATABASE_URL`` takes the usual forms (``sqlite:///path``, ``postgresql://user@host/db``)
and the driver is picked here: aiosqlite for SQLite, asyncpg for PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing
with "database is locked" when a reader upgrades to a writer.

Services never commit: the request dependency (or the CLI command / background job)
owns the transaction through :func:`Database.transaction`.

Two kinds of unit of work:

- :meth:`Database.transaction` — an ORM session (SQLAlchemy Core statements, a few ORM
  reads). Every backend, every path.
- :meth:`Database.driver_transaction` — PostgreSQL only: one pooled asyncpg connection
  in a transaction, taking prepared :class:`PgStatement` s straight to the driver. No
  session, no statement compilation, no result processing: about a third of the Python
  work per transaction. The hot path (a charged AI reply) uses it through
  :meth:`Database.run`, which runs a unit once: on the driver on PostgreSQL, and on
  SQLite in a :class:`SqliteTransaction` — a ``sqlite3`` connection on a thread of its
  own, ``BEGIN IMMEDIATE`` sent with the unit's first piece of work, each step's
  statements (compiled once, :class:`SqliteStatement`) run in one trip to that thread.
  The ledger's charge path has one implementation per dialect (see
  ``ledger.repository``), so there is no second path to fall back to.

:meth:`Database.read` runs one read-only statement on its own (no ``BEGIN``/``COMMIT``).

Either kind survives cancellation at any ``await``: a unit that fails or is cancelled
ends with its connection rolled back (confirmed by the server) or discarded, never back
in the pool with a transaction open; the pool itself rolls back, or discards, any
connection returned inside a transaction, and never hands one out.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import uuid
import warnings
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeAlias, TypeVar, cast

import asyncpg
from sqlalchemy import MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.dialects.sqlite import aiosqlite as sqlite_dialect
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, MissingGreenlet
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute
from sqlalchemy.pool import ConnectionPoolEntry, Pool, PoolProxiedConnection, QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement, Select
from sqlalchemy.util import await_, greenlet_spawn

from tokenbank import balance_watch
from tokenbank.errors import ConfigError
from tokenbank.observability import UNITS_OF_WORK

T = TypeVar("T")
P = ParamSpec("P")
SelectT = TypeVar("SelectT", bound=Select[Any])

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def insert_or_skip(session: AsyncSession, table: Any, **conflict: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's dialect (PostgreSQL or
    SQLite): a row whose key is there already stays as it is. ``conflict`` goes to
    ``on_conflict_do_nothing`` (``index_elements``: the one key that may clash)."""
    dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(**conflict)


def newest_first(
    stmt: SelectT,
    id_column: ColumnElement[int] | QueryableAttribute[int],
    *,
    limit: int,
    before: int | None,
) -> SelectT:
    """One page of ``stmt``'s rows, newest (highest ``id_column``) first: at most ``limit``,
    below ``before`` (the last id of the page before; None: from the newest)."""
    if before is not None:
        stmt = stmt.where(id_column < before)
    return stmt.order_by(id_column.desc()).limit(limit)


class UnsupportedDatabaseURL(ConfigError, ValueError):
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

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        # A statement cut off by a cancellation (an UPDATE ... RETURNING whose rows were
        # never read) keeps its transaction, and with it BEGIN IMMEDIATE's write lock,
        # past close(): SQLite defers closing a connection with an unfinished statement.
        # ROLLBACK ends the transaction (and aborts the statement) first.
        try:
            dbapi_connection.rollback()
        except Exception:  # noqa: BLE001 - closing follows regardless
            log.debug("rollback before discarding a SQLite connection failed", exc_info=True)


def create_engine(
    database_url: str, *, pool_size: int = 10, timeout_s: float = 5.0, pgbouncer: bool = False
) -> AsyncEngine:
    """The engine for ``database_url``.

    ``pgbouncer``: PostgreSQL is behind PgBouncer in transaction pooling mode, which
    gives each transaction whichever server connection is free. A named prepared
    statement lives on one server connection, so neither asyncpg's statement cache nor
    SQLAlchemy's may keep one across transactions: both are off, and the statements are
    sent unnamed (parsed again each time, inside the transaction that runs them).
    """
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
    # Up to twice ``pool_size`` connections, as on SQLite, but every one the load opened
    # is kept: a pool of ``pool_size`` plus as many overflow connections closed each one
    # handed back to a full pool, so at 64 requests in flight one unit in twenty opened a
    # new connection (a backend started, every statement prepared again on it).
    engine = create_async_engine(
        url,
        pool_size=2 * pool_size,
        max_overflow=0,
        pool_timeout=timeout_s,
        connect_args={
            "timeout": timeout_s,
            "command_timeout": max(timeout_s * 6, 30.0),
            # Per-day reports and date() must mean UTC days whatever the server's zone.
            "server_settings": {"timezone": "UTC"},
            **(_PGBOUNCER_CONNECT_ARGS if pgbouncer else {}),
        },
    )
    _discard_closed_connections(engine)
    _reset_connections_on_return(engine)
    _treat_broken_connections_as_lost(engine)
    return engine


#: No statement outlives its transaction: asyncpg's cache off (its statements unnamed),
#: SQLAlchemy's cache off and any name it gives unique (a name left on a server
#: connection by one client must never clash with another client's).
_PGBOUNCER_CONNECT_ARGS: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__tokenbank_{uuid.uuid4().hex}__",
}


def _discard_closed_connections(engine: AsyncEngine) -> None:
    """Replace pooled connections the server has closed, without a round trip.

    ``pool_pre_ping`` costs three round trips per checkout with asyncpg (BEGIN, a ping,
    ROLLBACK) — more than a whole ledger charge. When PostgreSQL restarts or ends a
    backend, asyncpg sees the socket close and marks the connection closed, which is the
    very test SQLAlchemy's asyncpg dialect uses to call an error a disconnect; raising
    ``DisconnectionError`` here makes the pool drop it and hand out a fresh one. A
    connection that dies silently is caught by its first statement (503, then replaced).
    A connection the server says is inside a transaction is never handed out either.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and (driver.is_closed() or driver.is_in_transaction()):
            raise DisconnectionError("connection closed by the server, or left in a transaction")


def _reset_connections_on_return(engine: AsyncEngine) -> None:
    """No connection goes back to the pool inside a transaction.

    SQLAlchemy's own reset rolls back the transaction *it* started; a transaction it
    does not know about (a ``BEGIN`` whose reply never arrived, one begun on the driver)
    is rolled back here, confirmed by the server's answer, or the connection is
    discarded (raising makes the pool invalidate it).
    """

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(_dbapi_connection: Any, record: ConnectionPoolEntry, state: Any) -> None:
        driver = record.driver_connection
        if driver is None or driver.is_closed() or not driver.is_in_transaction():
            return
        if not state.asyncio_safe:
            raise DisconnectionError("returned in a transaction outside the event loop")
        await_(driver.execute("ROLLBACK"))
        if driver.is_in_transaction():
            raise DisconnectionError("still in a transaction after ROLLBACK")


#: asyncpg's words for a connection whose protocol state no longer matches the server's
#: (a transaction begun behind the caller's back, an operation cut off mid-reply). The
#: last comes as an ``InternalClientError``, not an ``InterfaceError``: "cannot switch to
#: state 13; another operation (2) is in progress".
_BROKEN_CONNECTION = (
    "manually started transaction",
    "another operation is in progress",
    "another operation is cancelling",
    "cannot switch to state",
)


def is_broken_connection(exc: BaseException) -> bool:
    """True for asyncpg's errors that leave its connection unusable (but the server fine)."""
    for cause in (exc, exc.__cause__):
        if isinstance(cause, asyncpg.InterfaceError | asyncpg.InternalClientError):
            text = str(cause)
            if any(marker in text for marker in _BROKEN_CONNECTION):
                return True
    return False


def _treat_broken_connections_as_lost(engine: AsyncEngine) -> None:
    """Such a connection is discarded (a 503, then a fresh one), like a lost one.

    Only that connection: the rest of the pool is fine.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if is_broken_connection(context.original_exception):
            context.is_disconnect = True
            context.invalidate_pool_on_disconnect = False


@dataclass(frozen=True)
class PgStatement:
    """A statement for the driver: SQL with ``$n`` placeholders, and what each ``$n`` carries."""

    sql: str
    params: tuple[str, ...]

    @classmethod
    def from_core(cls, statement: ClauseElement) -> PgStatement:
        """Compile a Core statement written with named ``bindparam`` s, once, at import.

        The SQL stays written once, in Core; the driver gets PostgreSQL's text for it.
        """
        compiled = statement.compile(dialect=_PG_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        return cls(sql=compiled.string, params=tuple(compiled.positiontup or ()))

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``values`` by name (every parameter is required)."""
        return [values[name] for name in self.params]

    async def first(self, unit: Unit, *args: Any) -> Mapping[str, Any] | None:
        """The first row, readable by column name, in either kind of unit.

        On the driver, a prepared statement; in a session, the same text through the
        session's connection (``exec_driver_sql``: SQLAlchemy begins the transaction as
        for any statement of its own, and translates errors the same way).
        """
        if isinstance(unit, DriverTransaction):
            return await unit.fetchrow(self, *args)
        if isinstance(unit, SqliteTransaction):
            raise TypeError("a PostgreSQL statement in a SQLite unit")
        conn = await unit.connection()
        result = await conn.exec_driver_sql(self.sql, args)
        return cast(Mapping[str, Any] | None, result.mappings().first())


_PG_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]

#: Errors the driver raises itself; everything else passes through untouched.
_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


_ON_DRIVER = UNITS_OF_WORK.labels("driver")
_IN_SESSION = UNITS_OF_WORK.labels("session")


class DriverTransaction:
    """One PostgreSQL transaction on one pooled asyncpg connection (see the module doc).

    Errors come out as SQLAlchemy's ``DBAPIError`` (with the driver's error as ``orig``),
    so the app's error handlers treat them exactly like a session's: a lost connection is
    invalidated and answers 503, a data exception 422, a deadlock 503 ``retry_later``.
    """

    __slots__ = ("_conn", "_driver", "_pool", "spent")

    def __init__(self, conn: PoolProxiedConnection, driver: asyncpg.Connection, pool: Pool) -> None:
        self._conn = conn
        self._driver = driver
        self._pool = pool  # the pool it came from (the engine's may be replaced meanwhile)
        #: Spends in this unit, for the balance watch once it commits (:func:`note_spent`).
        self.spent: dict[int, int] | None = None

    async def fetchrow(self, statement: PgStatement, *args: Any) -> asyncpg.Record | None:
        try:
            return await self._driver.fetchrow(statement.sql, *args)
        except _DRIVER_ERRORS as exc:
            raise await self._error(statement.sql, args, exc) from exc

    async def fetch(self, statement: PgStatement, *args: Any) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await self._driver.fetch(statement.sql, *args)
            return rows
        except _DRIVER_ERRORS as exc:
            raise await self._error(statement.sql, args, exc) from exc

    async def _run(self, sql: str) -> None:
        try:
            await self._driver.execute(sql)
        except _DRIVER_ERRORS as exc:
            raise await self._error(sql, (), exc) from exc

    async def _close(self) -> None:
        """Hand a clean connection back (committed: nothing is open on it).

        Without a greenlet hop when nothing on the way back can wait for the server: the
        pool's reset and ours send ``ROLLBACK`` only to a connection inside a transaction
        (see :func:`_hand_back`)."""
        if _hand_back(self._conn, self._driver, self._pool):
            return
        await greenlet_spawn(self._conn.close)

    async def _abandon(self, reason: BaseException) -> None:
        """End a unit that failed or was cancelled: rolled back (confirmed), or discarded.

        A unit cancelled while a reply was pending (``BEGIN``'s, a statement's,
        ``COMMIT``'s) cannot tell from the driver whether a transaction is open —
        ``is_in_transaction()`` answers from the last reply, and the pending one has not
        been read. So ``ROLLBACK`` is always sent: asyncpg first waits for its
        cancellation of the pending statement to be answered, so the server stops that
        statement too. The connection goes back to the pool only if the server then says
        no transaction is open; a closed socket, a failed or slow rollback discards it
        (the server rolls back whatever was open when the socket closes).
        """
        driver = self._driver
        if not driver.is_closed():
            try:
                rollback = driver.execute("ROLLBACK")
                if isinstance(reason, Exception):
                    # Raised by the unit's own code or a statement's answer: no reply is
                    # pending, and asyncpg's command timeout bounds the rollback.
                    await rollback
                else:  # cancelled: possibly mid-reply, so the wait is bounded here
                    await asyncio.wait_for(rollback, _ROLLBACK_TIMEOUT_S)
                if not driver.is_in_transaction():
                    if not _hand_back(self._conn, driver, self._pool):
                        await greenlet_spawn(self._conn.close)
                    return
            except (Exception, asyncio.CancelledError):  # noqa: BLE001 - discard, below
                pass
        await discard(self._conn, driver, reason)

    async def _error(self, sql: str, args: tuple[Any, ...], exc: BaseException) -> DBAPIError:
        """SQLAlchemy's error for ``exc``; the connection is discarded unless the server
        simply refused the statement (a constraint, bad data) on a connection still open."""
        refused = isinstance(exc, asyncpg.PostgresError) and not self._driver.is_closed()
        if not refused:
            await discard(self._conn, self._driver, exc)
        return DBAPIError(sql, args, exc, connection_invalidated=not refused)


#: How long a failed unit's ROLLBACK may take before its connection is discarded instead.
_ROLLBACK_TIMEOUT_S = 5.0


def _take_idle(pool: Pool) -> PoolProxiedConnection | None:
    """A connection from ``pool`` without a greenlet hop, when an idle one is there.

    Checking out an idle connection runs no I/O (the checkout hook only looks at the
    driver's state), and a greenlet hop costs about as much Python as the checkout
    itself. A checkout that does need the server (the idle connection was invalidated
    and must reconnect) cannot run here: SQLAlchemy refuses the I/O (``MissingGreenlet``)
    before any is done, the pool puts the entry back as it does after any failed
    connect, and None sends the caller the usual way."""
    if not isinstance(pool, QueuePool) or pool.checkedin() == 0:
        return None
    with warnings.catch_warnings():
        # The refused reconnect leaves the driver's ``connect()`` coroutine made but never
        # run (SQLAlchemy closes only its wrapper): nothing was started, nothing leaks.
        warnings.filterwarnings("ignore", "coroutine 'connect' was never awaited", RuntimeWarning)
        try:
            return pool.connect()
        except MissingGreenlet:
            return None


def _hand_back(conn: PoolProxiedConnection, driver: asyncpg.Connection, pool: Pool) -> bool:
    """Return ``conn`` to ``pool`` without a greenlet hop if nothing on the way can wait
    for the server: it is open, outside a transaction, and the pool has room to keep it
    (an overflow connection returned to a full pool is closed, which waits for the
    server); False: not returned."""
    if driver.is_closed() or driver.is_in_transaction():
        return False
    if not isinstance(pool, QueuePool) or pool.checkedin() >= pool.size():
        return False
    conn.close()
    return True


async def discard(conn: PoolProxiedConnection, driver: asyncpg.Connection, reason: object) -> None:
    """Close the socket at once and drop the connection from the pool (once)."""
    if not driver.is_closed():
        driver.terminate()
    if conn.dbapi_connection is None:  # invalidated or handed back already
        return
    await greenlet_spawn(conn.invalidate, reason if isinstance(reason, BaseException) else None)


# --- SQLite's driver unit ------------------------------------------------------------


_SQLITE_DIALECT = sqlite_dialect.dialect()


class SqliteStatement:
    """A statement for SQLite's driver unit: SQL with ``?`` placeholders, compiled once.

    What a session does per statement is done here once, at import: the SQL text, which
    named value each ``?`` carries (or the constant the statement was written with), and
    the type conversions of each parameter and result column (datetimes are text in
    SQLite). It runs on whatever DB-API connection it is given: the driver unit's own
    ``sqlite3`` connection (on that connection's thread), or a session's connection
    (through ``exec_driver_sql``, so SQLAlchemy's events and error translation apply).
    """

    __slots__ = ("sql", "params", "_constants", "_binds", "_results", "_names")

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_SQLITE_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        self.sql: str = compiled.string
        self.params: tuple[str, ...] = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in self.params]
        self._constants = {
            n: b.value for n, b in zip(self.params, binds, strict=True) if not b.required
        }
        processors = [b.type.bind_processor(_SQLITE_DIALECT) for b in binds]
        self._binds = tuple(processors) if any(processors) else None
        columns = getattr(statement, "exported_columns", ())
        results = [c.type.result_processor(_SQLITE_DIALECT, None) for c in columns]
        self._results = tuple(results) if any(results) else None
        self._names: tuple[str, ...] | None = None

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``values`` by name, converted for SQLite."""
        constants = self._constants
        raw = [
            values[name] if name in values or name not in constants else constants[name]
            for name in self.params
        ]
        binds = self._binds
        if binds is None:
            return raw
        return [v if p is None else p(v) for p, v in zip(binds, raw, strict=True)]

    def all(self, conn: Any, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run it on ``conn`` (synchronous: called on the connection's own thread)."""
        args = self.args(values)
        if isinstance(conn, sqlite3.Connection):
            rows, description = _sqlite_execute(conn, self.sql, args)
        else:  # a session's connection, inside ``run_sync``
            result = conn.exec_driver_sql(self.sql, tuple(args))
            description = result.cursor.description if result.returns_rows else None
            rows = result.fetchall() if result.returns_rows else []
        if description is None:
            return []
        names = self._names
        if names is None:
            names = self._names = tuple(d[0] for d in description)
        results = self._results
        if results is None:
            return [dict(zip(names, row, strict=True)) for row in rows]
        return [
            {n: v if p is None else p(v) for n, p, v in zip(names, results, row, strict=True)}
            for row in rows
        ]

    def first(self, conn: Any, values: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = self.all(conn, values)
        return rows[0] if rows else None


def _sqlite_execute(
    conn: sqlite3.Connection, sql: str, args: Sequence[Any]
) -> tuple[list[Any], Any]:
    """Every statement of a SQLite driver unit, ``BEGIN`` and ``COMMIT`` included, runs
    here (``bench.sqlite_raw`` records them here too): to the end, rows read, so no
    statement is ever left unfinished holding the write lock."""
    try:
        cursor = conn.execute(sql, args)
        try:
            return cursor.fetchall(), cursor.description
        finally:
            cursor.close()
    except sqlite3.Error as exc:
        raise cast(DBAPIError, DBAPIError.instance(sql, tuple(args), exc, sqlite3.Error)) from exc


def _begin_then(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    _sqlite_execute(conn, "BEGIN IMMEDIATE", ())
    return fn(conn, *args)


def _commit(conn: sqlite3.Connection) -> None:
    _sqlite_execute(conn, "COMMIT", ())


def _rollback(conn: sqlite3.Connection) -> bool:
    """Roll back whatever is open; True if the connection is then outside a transaction."""
    if conn.in_transaction:
        _sqlite_execute(conn, "ROLLBACK", ())
    return not conn.in_transaction


class _SqliteConnection:
    """One ``sqlite3`` connection and the one thread that ever touches it.

    Work arrives through a queue and runs in order; its result comes back to the event
    loop with one ``call_soon_threadsafe``. A call cancelled on the loop side still runs
    to its end on the thread, and whatever is queued after it (a unit's ``ROLLBACK``)
    runs after it: so a unit can always end its transaction, confirmed, even if it was
    cancelled in the middle of a statement.
    """

    __slots__ = ("_queue", "_db", "_thread")

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._db: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._serve, name="tokenbank-sqlite", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        get = self._queue.get
        while (item := get()) is not None:
            loop, future, fn, args = item
            try:
                outcome, ok = fn(self._db, *args), True
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting task
                outcome, ok = exc, False
            try:
                loop.call_soon_threadsafe(_resolve, future, ok, outcome)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass
        if self._db is not None:
            self._db.close()

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(connection, *args)`` on the connection's thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, fn, args))
        return future

    def _connect(self, _none: None, database: str, uri: bool, busy_timeout_ms: int) -> None:
        db = sqlite3.connect(
            database,
            uri=uri,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        for pragma in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA busy_timeout={busy_timeout_ms}",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ):
            db.execute(pragma).close()
        self._db = db

    async def open(self, database: str, uri: bool, busy_timeout_ms: int) -> None:
        await self.call(self._connect, database, uri, busy_timeout_ms)

    def close(self) -> None:
        """Close the connection on its thread (a transaction still open rolls back)."""
        self._queue.put(None)


def _resolve(future: asyncio.Future[Any], ok: bool, outcome: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(outcome)
    else:
        future.set_exception(outcome)


class _SqlitePool:
    """SQLite's driver connections: up to ``size``, opened when first needed."""

    def __init__(self, database: str, *, uri: bool, busy_timeout_ms: int, size: int) -> None:
        self._database = database
        self._uri = uri
        self._busy_timeout_ms = busy_timeout_ms
        self._size = size
        self._idle: list[_SqliteConnection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[_SqliteConnection]] = deque()
        self._closed = False

    async def acquire(self, timeout_s: float) -> _SqliteConnection:
        if self._idle:
            return self._idle.pop()
        if self._open < self._size:
            self._open += 1
            conn = _SqliteConnection()
            try:
                await asyncio.shield(conn.open(self._database, self._uri, self._busy_timeout_ms))
            except BaseException:
                self._open -= 1
                conn.close()
                raise
            return conn
        waiter: asyncio.Future[_SqliteConnection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed over just as we gave up
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise PoolTimeoutError(f"no SQLite connection free within {timeout_s:g} s") from exc
            raise

    def release(self, conn: _SqliteConnection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if self._closed:
            self.discard(conn)
        else:
            self._idle.append(conn)

    def discard(self, conn: _SqliteConnection) -> None:
        self._open -= 1
        conn.close()

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self.discard(self._idle.pop())


class SqliteTransaction:
    """One SQLite transaction on one driver connection (SQLite's hot path).

    ``BEGIN IMMEDIATE`` is sent with the unit's first piece of work, in the same trip to
    the connection's thread; each repository step then runs all its statements in one
    trip (:meth:`call`), and ``COMMIT`` is one more. Errors come out as SQLAlchemy's
    ``DBAPIError`` (``database is locked`` as its ``OperationalError``), as from a session.
    """

    __slots__ = ("_conn", "_begun", "spent")

    def __init__(self, conn: _SqliteConnection) -> None:
        self._conn = conn
        self._begun = False
        #: Spends in this unit, for the balance watch once it commits (:func:`note_spent`).
        self.spent: dict[int, int] | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)``, synchronous, on the connection's thread, in this
        transaction: the way a step runs several statements for the price of one trip."""
        if self._begun:
            return await self._conn.call(fn, *args)
        self._begun = True  # before the trip: a cancelled trip may still begin
        return await self._conn.call(_begin_then, fn, args)

    async def fetch(self, statement: SqliteStatement, values: Mapping[str, Any]) -> list[Any]:
        return await self.call(statement.all, values)

    async def fetchrow(
        self, statement: SqliteStatement, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        return await self.call(statement.first, values)


async def call_sync(unit: Unit, fn: Callable[..., T], *args: Any) -> T:
    """``fn(connection, *args)`` in ``unit``'s transaction, for SQLite's repository steps.

    On the driver unit, one trip to the connection's thread; in a session, through
    ``run_sync`` on the session's connection (``fn``'s statements then go through
    ``exec_driver_sql``: see :class:`SqliteStatement`).
    """
    if isinstance(unit, SqliteTransaction):
        return await unit.call(fn, *args)
    if isinstance(unit, DriverTransaction):
        raise TypeError("call_sync is for SQLite's units")
    conn = await unit.connection()
    return await conn.run_sync(fn, *args)


#: A unit of work's handle: a session, or (the hot path) a driver transaction.
Unit: TypeAlias = AsyncSession | DriverTransaction | SqliteTransaction

#: Where a session keeps its spends (``AsyncSession.info``) until it commits.
_SPENT = "tokenbank.spent"


def note_spent(unit: Unit, user_id: int, balance: int) -> None:
    """Tokens were spent in ``unit``, leaving ``balance``: once the unit commits, the
    balance watch hears of it (:func:`tokenbank.balance_watch.charged`, a look-up against
    cached thresholds, no I/O); a unit that rolls back tells it nothing.

    The ledger calls this for every spend (a deduction at once, a committed hold), so
    every path that spends — a chat reply, the service API, the meter — is watched the
    same way, after its commit, whichever kind of unit it ran in.
    """
    if isinstance(unit, AsyncSession):
        spent: dict[int, int] = unit.info.setdefault(_SPENT, {})
        spent[user_id] = balance
    elif unit.spent is None:
        unit.spent = {user_id: balance}
    else:
        unit.spent[user_id] = balance


def _tell_spent(spent: dict[int, int] | None) -> None:
    """After a commit: the unit's spends to the balance watch."""
    if spent:
        for user_id, balance in spent.items():
            balance_watch.charged(user_id, balance)


@dataclass(frozen=True)
class Query:
    """A Core statement with named ``bindparam`` s that runs in either kind of unit.

    In a session it executes as Core (compiled once and cached by SQLAlchemy); in a driver
    transaction as the same statement compiled for PostgreSQL at import. ``sqlite`` is a
    variant for SQLite where the dialects need different constructs (``ON CONFLICT``).
    """

    core: ClauseElement
    pg: PgStatement
    sqlite: ClauseElement
    lite: SqliteStatement

    @classmethod
    def of(cls, core: ClauseElement, *, sqlite: ClauseElement | None = None) -> Query:
        variant = core if sqlite is None else sqlite
        return cls(
            core=core,
            pg=PgStatement.from_core(core),
            sqlite=variant,
            lite=SqliteStatement(variant),
        )

    async def all(self, unit: Unit, **values: Any) -> list[Mapping[str, Any]]:
        """Every row, each readable by column name."""
        if isinstance(unit, DriverTransaction):
            return list(await unit.fetch(self.pg, *self.pg.args(values)))
        if isinstance(unit, SqliteTransaction):
            return await unit.fetch(self.lite, values)
        result = await unit.execute(self._for(unit), values)  # type: ignore[call-overload]
        return list(result.mappings().all())

    async def first(self, unit: Unit, **values: Any) -> Mapping[str, Any] | None:
        """The first row (readable by column name), or None."""
        if isinstance(unit, DriverTransaction):
            return await unit.fetchrow(self.pg, *self.pg.args(values))
        if isinstance(unit, SqliteTransaction):
            return await unit.fetchrow(self.lite, values)
        result = await unit.execute(self._for(unit), values)  # type: ignore[call-overload]
        row: Mapping[str, Any] | None = result.mappings().first()
        return row

    def _for(self, session: AsyncSession) -> ClauseElement:
        return self.sqlite if session.get_bind().dialect.name == "sqlite" else self.core


class Database:
    """An engine plus a session factory; one per process."""

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int = 10,
        timeout_s: float = 5.0,
        pgbouncer: bool = False,
    ) -> None:
        self.url = normalize_url(database_url)
        self.engine = create_engine(
            database_url, pool_size=pool_size, timeout_s=timeout_s, pgbouncer=pgbouncer
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # The engine, not its pool: ``engine.dispose()`` swaps in a new pool, and a unit
        # must take its connection from the pool the engine has now (the one the next
        # dispose() closes), never from one already disposed.
        self._sync_engine = self.engine.sync_engine
        self._dbapi_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        self._sqlite = is_sqlite(self.url)
        self._timeout_s = max(timeout_s, 30.0)
        self._pgbouncer = pgbouncer
        self._lite = _sqlite_pool(self.url, pool_size * 2, self._timeout_s)
        if self._lite is not None:  # a Database dropped without dispose() ends its threads
            weakref.finalize(self, self._lite.close)

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        Spelled out rather than ``async with sessionmaker() as s, s.begin()``: that form
        costs about a hundred more Python calls per transaction (an extra greenlet hop and
        a task to shield the close), and every request and every charge pays it.

        A unit that was cancelled (rather than failed) may have been waiting for the
        server's reply to ``BEGIN`` or a statement, and SQLAlchemy only tracks a
        transaction once ``BEGIN`` has answered: its connection is discarded instead of
        rolled back, so it can never return to the pool with a transaction open.
        """
        session = self.sessionmaker()
        try:
            yield session
            await session.commit()
        except BaseException as exc:
            # Shielded, as SQLAlchemy's own __aexit__ is, so a cancelled request still
            # ends its transaction and hands its connection back (or discards it).
            await asyncio.shield(_end_session(session, exc))
            raise
        await session.close()
        if _SPENT in session.info:
            _tell_spent(session.info.pop(_SPENT))

    @asynccontextmanager
    async def driver_transaction(self) -> AsyncIterator[DriverTransaction]:
        """A transaction on a pooled asyncpg connection: commits on success, else rolls back.

        PostgreSQL only. The connection comes from, and goes back to, the engine's own
        pool (its size, its timeout, its check for connections the server closed, its
        reset on return). A unit that fails or is cancelled at any await ends with its
        connection rolled back (confirmed by the server) or discarded: see
        :meth:`DriverTransaction._abandon`.
        """
        if self._sqlite:
            raise RuntimeError("driver transactions are PostgreSQL-only")
        tx = await self._checkout()
        try:
            await tx._run("BEGIN")
            yield tx
            await tx._run("COMMIT")
        except BaseException as exc:
            await asyncio.shield(tx._abandon(exc))
            raise
        await tx._close()  # committed: nothing to roll back, only the hand-back
        _tell_spent(tx.spent)

    async def _checkout(self) -> DriverTransaction:
        """A connection from the engine's own pool (its size, its timeout, its checkout
        and reset-on-return hooks), taken straight from the pool: an ``AsyncConnection``
        around it would cost a quarter more Python per unit and add nothing a driver unit
        uses. A connection the pool cannot open is reported as the engine reports it,
        SQLAlchemy's ``DBAPIError`` (a 503)."""
        pool = self._sync_engine.pool
        try:
            conn = _take_idle(pool)
            if conn is None:
                conn = await greenlet_spawn(pool.connect)
        except self._dbapi_error as exc:
            dialect = self.engine.dialect
            lost = dialect.is_disconnect(cast(Any, exc), None, None)
            raise cast(
                DBAPIError,
                DBAPIError.instance(
                    None, None, exc, self._dbapi_error, connection_invalidated=lost, dialect=dialect
                ),
            ) from exc
        return DriverTransaction(conn, conn.driver_connection, pool)

    async def run(self, work: Callable[[Unit], Awaitable[T]]) -> T:
        """``work`` as one unit of work, on the driver: asyncpg (PostgreSQL) or ``sqlite3``.

        ``work`` is written once against :data:`Unit` and runs once: every repository
        function it calls has one implementation per dialect, whichever unit it gets.
        Any exception ends the unit rolled back.
        """
        if self._lite is not None:
            return await self._run_sqlite(self._lite, work)
        if self._sqlite:  # an in-memory database: only the engine's connection sees it
            async with self.transaction() as session:
                done = await work(session)
            _IN_SESSION.inc()
            return done
        # driver_transaction(), spelled out: the context manager's generator costs a
        # dozen Python calls per unit, and every reply runs two units.
        tx = await self._checkout()
        try:
            await tx._run("BEGIN")
            done = await work(tx)
            await tx._run("COMMIT")
        except BaseException as exc:
            await asyncio.shield(tx._abandon(exc))
            raise
        await tx._close()
        _ON_DRIVER.inc()
        _tell_spent(tx.spent)
        return done

    async def read(self, query: Query, **values: Any) -> Mapping[str, Any] | None:
        """The first row of one read-only statement, run on its own outside any explicit
        transaction: a single statement is a transaction of its own, so ``BEGIN`` and
        ``COMMIT`` would add two round trips and nothing else (a request's session check
        is such a read). Behind PgBouncer it runs in a driver transaction as usual: an
        unnamed statement must stay on one server connection from parse to execute.

        Cancelled or failed, it ends like a driver unit: on PostgreSQL the connection is
        rolled back (confirmed) or discarded; on SQLite the read finishes on the
        connection's thread and nothing is left open (no transaction was begun).
        """
        if self._lite is not None:
            lite = await self._lite.acquire(self._timeout_s)
            try:
                return await lite.call(query.lite.first, values)
            finally:
                self._lite.release(lite)  # later work queues behind a read in flight
        if self._sqlite:
            async with self.transaction() as session:
                return await query.first(session, **values)
        if self._pgbouncer:
            async with self.driver_transaction() as tx:
                return await query.first(tx, **values)
        tx = await self._checkout()
        try:
            row = await tx.fetchrow(query.pg, *query.pg.args(values))
        except BaseException as exc:
            await asyncio.shield(tx._abandon(exc))
            raise
        await tx._close()
        return row

    async def _run_sqlite(self, pool: _SqlitePool, work: Callable[[Unit], Awaitable[T]]) -> T:
        """``work`` in a :class:`SqliteTransaction`: commits on success, else rolls back.

        A unit that fails or is cancelled at any await ends rolled back, confirmed on the
        connection's own thread after whatever trip was in flight has finished (so no
        write lock outlives it); a connection whose rollback fails or takes longer than
        the busy timeout is closed instead (SQLite rolls back on close).
        """
        conn = await pool.acquire(self._timeout_s)
        tx = SqliteTransaction(conn)
        try:
            done = await work(tx)
            if tx._begun:
                await conn.call(_commit)
        except BaseException:
            await asyncio.shield(self._abandon_sqlite(pool, conn, tx))
            raise
        pool.release(conn)
        _ON_DRIVER.inc()
        _tell_spent(tx.spent)
        return done

    async def _abandon_sqlite(
        self, pool: _SqlitePool, conn: _SqliteConnection, tx: SqliteTransaction
    ) -> None:
        if not tx._begun:
            pool.release(conn)
            return
        try:
            if await asyncio.wait_for(conn.call(_rollback), self._timeout_s):
                pool.release(conn)
                return
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - closed, below
            log.debug("rolling back a SQLite unit failed; closing its connection", exc_info=True)
        pool.discard(conn)

    async def dispose(self) -> None:
        if self._lite is not None:
            self._lite.close()
        await self.engine.dispose()


def unit_flow(
    work: Callable[Concatenate[Unit, P], Awaitable[T]],
) -> Callable[Concatenate[Database, P], Awaitable[T]]:
    """A flow that runs ``work`` (a service function taking the unit first) as one unit
    of work through :meth:`Database.run`, with the arguments the flow is given after the
    ``Database``. For flows that are nothing more (no provider or Stripe call beside)."""

    async def flow(db: Database, /, *args: P.args, **kwargs: P.kwargs) -> T:
        async def in_unit(unit: Unit) -> T:
            return await work(unit, *args, **kwargs)

        return await db.run(in_unit)

    flow.__name__ = flow.__qualname__ = getattr(work, "__name__", "flow")
    flow.__doc__ = work.__doc__
    return flow


def _sqlite_pool(url: URL, size: int, timeout_s: float) -> _SqlitePool | None:
    """The driver connections of a SQLite file (None for an in-memory database)."""
    if not is_sqlite(url):
        return None
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database:
        return None
    uri = database.startswith("file:")
    if not uri:
        database = str(Path(database).expanduser())
    return _SqlitePool(database, uri=uri, busy_timeout_ms=int(timeout_s * 1000), size=size)


async def _end_session(session: AsyncSession, reason: BaseException) -> None:
    """Roll a failed session back; discard its connection if the unit was cancelled."""
    if not isinstance(reason, Exception) and session.in_transaction():
        try:
            conn = await session.connection()
            await conn.invalidate(reason)
        except Exception:  # noqa: BLE001 - already unusable: close() below discards it
            log.debug("discarding a cancelled unit's connection failed", exc_info=True)
    await session.close()
