"""The connection pool: a connection the server ended is replaced, not handed out."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tokenbank.db import Database

from support import wait_for

pytestmark = pytest.mark.anyio


async def test_a_connection_the_server_ended_is_replaced_without_an_error(
    postgres_url: str,
) -> None:
    """No ping per checkout (it costs three round trips), yet no request sees a dead one."""
    db = Database(postgres_url, pool_size=1)
    try:
        async with db.transaction() as session:
            first_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            raw = await (await session.connection()).get_raw_connection()
            pooled = raw.driver_connection
        assert pooled is not None
        ender = Database(postgres_url, pool_size=1)
        try:
            async with ender.transaction() as session:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        finally:
            await ender.dispose()

        async def seen_closed() -> bool:
            return bool(pooled.is_closed())

        await wait_for(seen_closed, timeout_s=10, what="the client to see the socket close")
        async with db.transaction() as session:
            second_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second_pid != first_pid
    finally:
        await db.dispose()
