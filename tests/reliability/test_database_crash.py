"""PostgreSQL crashes while replies are between their hold and their charge.

A reply's hold commits without waiting for the disk (it is the only write of its
transaction; the charge's synchronous commit flushes it first). So a database crash may
lose holds — and must lose nothing else: no charge without its saved reply, no saved
reply without its charge, no token created or destroyed. The server here runs durably,
with its WAL writer asleep, so holds committed just before the crash are really lost;
clients then retry with their Idempotency-Key, as the web client does, and every reply
ends up charged exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from reliability.cluster import Person, audit, grant, register_many, report
from reliability.harness import AppProcess, OwnPostgres, own_postgres_server, wait_until
from reliability.test_crash import slow_ai
from tokenbank.db import Database
from tokenbank.ledger.models import TokenReservation
from tokenbank.migrate import upgrade

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

USERS = 12
TOKENS = 5  # on top of the sign-up bonus
AI_DELAY_S = 2.0  # long enough for the crash and the restart to happen mid-reply
AI_TIMEOUT_S = 5
RESERVATION_TTL_S = 6  # must exceed AI_TIMEOUT_S
DEADLINE_S = 90


def test_a_database_crash_mid_reply_loses_at_most_holds_and_charges_each_reply_once() -> None:
    with own_postgres_server(durable=True) as pg, slow_ai(AI_DELAY_S) as fake:
        url = pg.create_database("crash")
        upgrade(url)
        app = AppProcess(
            {
                "DATABASE_URL": url,
                "JWT_SECRET": "crash-jwt-secret-0123456789abcdef0123",
                "RATE_LIMIT_ENABLED": "false",
                "DATABASE_TIMEOUT_S": "2",
                "AI_PROVIDER": "openai",
                "OPENAI_BASE_URL": fake.base_url,
                "OPENAI_API_KEY": "test-key",
                "OPENAI_MODEL": "gpt-test",
                "AI_TIMEOUT_S": str(AI_TIMEOUT_S),
                "RESERVATION_TTL_S": str(RESERVATION_TTL_S),
                "SWEEPER_INTERVAL_S": "0.5",
            }
        ).start()
        try:
            started = time.monotonic()
            people, start, figures = asyncio.run(_scenario(app, pg, url))
            wait_until(
                lambda: asyncio.run(audit(url)).pending_holds == 0,
                RESERVATION_TTL_S + 20,
                "every hold to be resolved",
            )
            final = asyncio.run(audit(url))
        finally:
            app.stop()
    assert final.violations == []
    deductions = final.deductions()
    for p in people:
        # Each asked once and retried until answered: one reply saved, one token charged.
        assert final.charged_replies.get(p.id, 0) == 1, p
        assert deductions[p.id] == 1, p
        assert final.balances[p.id] == start[p.id] - 1, p
        assert final.reserved[p.id] == 0, p
    report("database crash", **figures, seconds=round(time.monotonic() - started, 1))


async def _reservations(url: str) -> int:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as s:
            return int(
                (await s.execute(select(func.count()).select_from(TokenReservation))).scalar_one()
            )
    finally:
        await db.dispose()


async def _ask(http: httpx.AsyncClient, app: AppProcess, p: Person, chat: int) -> tuple[int, str]:
    try:
        r = await http.post(
            f"{app.url}/api/chats/{chat}/generate",
            json={"content": "What survives a crash?"},
            headers={**p.headers, "Idempotency-Key": f"crash-{p.id}"},
        )
    except httpx.HTTPError as exc:
        return 0, type(exc).__name__
    code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
    reason = r.json().get("error", {}).get("reason", "") if r.status_code == 502 else ""
    return r.status_code, ":".join(x for x in (code, reason) if x)


async def _scenario(
    app: AppProcess, pg: OwnPostgres, url: str
) -> tuple[list[Person], dict[int, int], dict[str, object]]:
    """The burst, the crash and the retries: who asked, their balances before, the figures."""
    async with httpx.AsyncClient(timeout=30) as http:
        people = await register_many(http, [app.url], USERS, "c")
        await grant(url, {p.id: TOKENS for p in people})
        chats: dict[int, int] = {}
        start: dict[int, int] = {}
        for p in people:
            chats[p.id] = int(
                (await http.post(f"{app.url}/api/chats", json={}, headers=p.headers)).json()["id"]
            )
            start[p.id] = int(
                (await http.get(f"{app.url}/api/payment/user/tokens", headers=p.headers)).json()[
                    "balance"
                ]
            )

        asks = [asyncio.create_task(_ask(http, app, p, chats[p.id])) for p in people]
        deadline = time.monotonic() + DEADLINE_S
        while (await audit(url)).pending_holds < USERS:  # every reply is at the provider
            assert time.monotonic() < deadline, "the holds were never all taken"
            await asyncio.sleep(0.05)
        pg.stop("immediate")  # a crash: no checkpoint, unflushed WAL is gone
        pg.start()
        holds_after_restart = await _reservations(url)
        first = Counter(f"{status} {code}".strip() for status, code in await asyncio.gather(*asks))
        # Charged and saved, or not charged with a reason the client can act on.
        assert set(first) <= {
            "200",
            "502 ai_unavailable:hold_expired",
            "503 database_unavailable",
        }, first

        retries = 0
        for p in people:  # the client retries with the same key until it has its reply
            while True:
                status, code = await _ask(http, app, p, chats[p.id])
                if status == 200:
                    break
                retries += 1
                assert time.monotonic() < deadline, f"no reply for {p.id}: {status} {code}"
                await asyncio.sleep(0.2)
    return (
        people,
        start,
        {
            "users": USERS,
            "holds_before_crash": USERS,
            "holds_lost_in_crash": USERS - holds_after_restart,
            **{f"first_answer_{k.replace(' ', '_')}": v for k, v in sorted(first.items())},
            "retries": retries,
        },
    )
