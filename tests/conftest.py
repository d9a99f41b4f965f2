"""Shared fixtures: every database test runs on SQLite AND PostgreSQL.

The schema always comes from the Alembic migrations. PostgreSQL tests use one database
created for this test run (and dropped at its end), emptied between tests. Without a
PostgreSQL server they fail in CI and skip loudly elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from smtp_kit import SmtpServer, smtp_server
from tokenbank.app import create_app
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.migrate import upgrade
from tokenbank.models import Base

from support import LogLines

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _pg_admin(sql: str) -> None:
    async def run() -> None:
        engine = create_async_engine(
            PG_ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://"),
            isolation_level="AUTOCOMMIT",
        )
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(run())


@contextmanager
def migrated_postgres_database(prefix: str, what: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped at the end.

    Without a server: a failure in CI, a loud skip (naming ``what``) elsewhere.
    """
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: a loud skip on laptops, a failure in CI
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(f"SKIPPING {what} — {reason}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this test run, dropped at the end."""
    with migrated_postgres_database("tokenbank_test", "POSTGRESQL TESTS") as url:
        yield url


PGBOUNCER_BIN = os.environ.get("PGBOUNCER_BIN", "/usr/sbin/pgbouncer")


@contextmanager
def pgbouncer_in_front_of(url: str, *, pool_size: int = 10) -> Iterator[str]:
    """Debian's PgBouncer, in transaction pooling mode, in front of ``url``'s database.

    Its own ini in a temporary directory, a free port, trust authentication; stopped at
    the end. Yields ``url`` with PgBouncer's port. Without the binary: a failure in CI,
    a loud skip elsewhere (``scripts/ensure-pgbouncer.sh`` installs it).
    """
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    from sqlalchemy.engine import make_url

    binary = shutil.which("pgbouncer") or PGBOUNCER_BIN
    if not os.path.exists(binary):
        reason = f"no pgbouncer binary at {PGBOUNCER_BIN} (apt-get install pgbouncer)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(f"SKIPPING PGBOUNCER TESTS — {reason}")
    target = make_url(url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="tokenbank-pgbouncer-"))
    workdir.chmod(0o755)  # run as root, PgBouncer drops to the postgres user first
    users = workdir / "users.txt"
    users.write_text(f'"{target.username or "postgres"}" ""\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{target.database} = host={target.host or '127.0.0.1'} port={target.port or 5432}"
        f" dbname={target.database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    for f in (users, ini):
        f.chmod(0o644)
    command = [binary, str(ini)]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", "postgres"]
    log = open(workdir / "pgbouncer.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "pgbouncer did not start: " + (workdir / "pgbouncer.log").read_text()
                )
            time.sleep(0.05)
        yield target.set(port=port, host="127.0.0.1").render_as_string(hide_password=False)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """The test run's PostgreSQL database, reached through PgBouncer (transaction mode)."""
    with pgbouncer_in_front_of(postgres_url) as url:
        yield url
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server for tests: a failure in CI without one, a loud skip elsewhere."""
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        reason = f"Redis not reachable at {TEST_REDIS_URL}: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(f"SKIPPING REDIS TESTS — {reason}")
    return TEST_REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own in the shared Redis; its keys are deleted after it."""
    import redis

    prefix = f"tokenbank-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate_postgres(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)

    async def run() -> None:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "tokenbank.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url, pool_size=24)
    try:
        yield database
    finally:
        await database.dispose()


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "test",
        "database_url": db_url,
        "jwt_secret": TEST_JWT_SECRET,
        "background_jobs": False,
        "rate_limit_enabled": False,
        "database_pool_size": 24,
        "client_dist": "/nonexistent-client-dist",
        # Cheap argon2 parameters keep hundreds of test sign-ups fast.
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 1024,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of an app made from ``settings``, its lifespan run; the app is
    ``client.app``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        # Like a real server: an unhandled error is a 500 response, not a raised exception.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """The ``tokenbank`` loggers' INFO-and-up lines during the test, as JSON."""
    handler, logger = LogLines(), logging.getLogger("tokenbank")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A local SMTP server that keeps what it receives (``smtp.settings`` points the app at it)."""
    with smtp_server() as server:
        yield server
