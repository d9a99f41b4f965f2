"""A PostgreSQL that refuses connections answers 503 ``database_unavailable``, like a dead one.

The database is real and up, but will not serve us: ``ALTER DATABASE ... ALLOW_CONNECTIONS
false`` (SQLSTATE 55000), as an operator does during maintenance. Every route that needs
the database says so with the same 503 the app gives for a stopped server, and serves
again as soon as connections are allowed.
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from tokenbank.app import create_app
from tokenbank.errors import is_connection_error

from conftest import make_settings, migrated_postgres_database
from support import register_user

pytestmark = pytest.mark.anyio


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of its own: this test stops it accepting connections."""
    with migrated_postgres_database("tokenbank_refusing", "THE REFUSING-DATABASE TEST") as url:
        yield url


async def test_a_database_refusing_connections_is_503_database_unavailable(
    own_database: str,
) -> None:
    name = own_database.rsplit("/", 1)[1]
    app = create_app(make_settings(own_database))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            user = await register_user(c, "refused")
            await _admin(own_database, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _admin(
                own_database,
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
            )
            await app.state.db.engine.dispose()  # no pooled connection left: each must connect
            answers = [
                await c.get("/health"),
                await c.post(
                    "/api/auth/login", json={"username": "refused", "password": "s3cret-pass"}
                ),
                await c.get("/api/payment/user/tokens", headers=user["headers"]),
                await c.post("/api/chats", json={"title": "t"}, headers=user["headers"]),
            ]
            for r in answers:
                assert r.status_code == 503, (r.request.url, r.text)
                assert r.json()["error"]["code"] == "database_unavailable"
            await _admin(own_database, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            back = await c.get("/api/payment/user/tokens", headers=user["headers"])
            assert back.status_code == 200, back.text


@pytest.mark.parametrize(
    "refusal",
    [
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ObjectNotInPrerequisiteStateError(
            'database "x" is not currently accepting connections'
        ),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
    ],
)
def test_every_way_a_server_refuses_to_serve_counts_as_unavailable(
    refusal: asyncpg.PostgresError,
) -> None:
    assert is_connection_error(DBAPIError(None, None, refusal))


def test_a_refused_statement_is_not_an_outage() -> None:
    assert not is_connection_error(
        DBAPIError("INSERT ...", (), asyncpg.exceptions.UniqueViolationError("duplicate key"))
    )
