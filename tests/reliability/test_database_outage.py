"""Stop PostgreSQL mid-traffic: quick 503s, nothing half-written, recovery by itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from reliability.harness import AppProcess, OwnPostgres, own_postgres_server, wait_until
from tokenbank.auth.models import AuthSession, EmailToken, User
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import TokenAccount, TokenTransaction
from tokenbank.migrate import upgrade

pytestmark = pytest.mark.slow


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    with own_postgres_server() as pg:
        yield pg


async def _register(client: httpx.AsyncClient) -> tuple[int, float, str]:
    name = f"o{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    try:
        r = await client.post(
            "/api/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": "outage-pass-1"},
        )
    except httpx.HTTPError as exc:
        return 0, time.monotonic() - started, type(exc).__name__
    code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
    return r.status_code, time.monotonic() - started, code


def test_database_outage_gives_503s_and_recovers(own_postgres: OwnPostgres) -> None:
    url = own_postgres.create_database("outage")
    upgrade(url)
    app = AppProcess(
        {
            "DATABASE_URL": url,
            "JWT_SECRET": "outage-jwt-secret-0123456789abcdef",
            "RATE_LIMIT_ENABLED": "false",
            "DATABASE_TIMEOUT_S": "2",
        }
    ).start()
    try:
        asyncio.run(_scenario(app, own_postgres))
    finally:
        app.stop()

    async def audit() -> tuple[list[int], int, list[ledger.Violation]]:
        db = Database(url, pool_size=2)
        try:
            async with db.transaction() as s:
                counts = [
                    (await s.execute(select(func.count()).select_from(table))).scalar_one()
                    for table in (User, TokenAccount, AuthSession, EmailToken)
                ]
                grants = (
                    await s.execute(select(func.count()).select_from(TokenTransaction))
                ).scalar_one()
                return counts, grants, await ledger.check(s)
        finally:
            await db.dispose()

    counts, grants, violations = asyncio.run(audit())
    # Every user that exists is whole: one account, one session, one verification link;
    # never a part of one. (The sign-up bonus waits for the emailed link.)
    assert len(set(counts)) == 1, counts
    assert grants == 0
    assert violations == []


async def _scenario(app: AppProcess, pg: OwnPostgres) -> None:
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as client:
        before = await asyncio.gather(*(_register(client) for _ in range(20)))
        assert Counter(s for s, _, _ in before) == {201: 20}

        pg.stop("immediate")
        during = await asyncio.gather(*(_register(client) for _ in range(20)))
        statuses = Counter((s, code) for s, _, code in during)
        assert statuses == {(503, "database_unavailable"): 20}, statuses
        assert max(elapsed for _, elapsed, _ in during) < 15, "503s must come quickly"
        health = await client.get("/health")
        assert (health.status_code, health.json()["error"]["code"]) == (503, "database_unavailable")

        pg.start()
        wait_until(
            lambda: httpx.get(f"{app.url}/health", timeout=5).status_code == 200,
            60,
            "the app to see the database again",
        )
        after = await asyncio.gather(*(_register(client) for _ in range(20)))
        assert Counter(s for s, _, _ in after) == {201: 20}
