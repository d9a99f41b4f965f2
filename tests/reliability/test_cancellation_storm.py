"""A cancellation storm: 500 replies, JSON and streamed, whose clients leave at random
moments, across three app processes on PostgreSQL.

Each client sends its request and leaves (FIN or RST) at a random moment: after a random
wait of up to 1.5 s, or (a stream) after a random number of its events, whichever comes
first — before the request is read, while the hold is taken, while the AI answers or
streams, while the reply is charged, or after it is done. Afterwards:

- ``/health`` answers 200 on 50 of 50 requests (spread over the processes): no pool was
  poisoned by a unit of work cut mid-statement;
- no backend sat ``idle in transaction`` for more than 5 s, sampled every 0.25 s during
  the storm and for 6 s after it (``pg_stat_activity``);
- every hold is resolved by the request's own process at once — holds live 10 minutes,
  so the sweeper cannot be what resolved them;
- charged if and only if saved, text seen by a client was charged, balances equal their
  entries (``tokenbank ledger check``).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from reliability.cluster import (
    Cluster,
    Person,
    app_env,
    audit,
    fresh_database,
    grant,
    register_many,
    report,
    running_cluster,
)
from reliability.disconnects import Exchange, IdleBackend, idle_in_transaction, settled_truth
from reliability.test_disconnect_matrix import streaming_ai

from conftest import pgbouncer_in_front_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REQUESTS = 500
PROCESSES = 3
USERS = 25
IN_FLIGHT = 12
START_TOKENS = 1000
LEAVE_WITHIN_S = 1.5
#: A streamed reply is 8 events: the start, 6 deltas, done. A stream's client leaves
#: after a random number of them (8: never early) or at its random moment, whichever
#: comes first, so every phase is cut however loaded the machine is.
STREAM_EVENTS = 8
IDLE_IN_TRANSACTION_LIMIT_S = 5.0
SEED = 12
TEXT = "Storms come and go; the ledger stays whole."


@dataclass
class Ask:
    person: Person
    chat: int
    key: str
    stream: bool
    leave_at_s: float
    leave_after_events: int
    abort: bool
    question: str
    outcome: str = ""  # what the client saw: left / done / status
    received: str = ""


def test_a_cancellation_storm_leaves_the_database_and_the_ledger_whole() -> None:
    with fresh_database("storm") as url:
        storm("cancellation_storm", url, url)


def test_the_same_storm_through_pgbouncer() -> None:
    """The app processes reach PostgreSQL through PgBouncer in transaction pooling mode
    (``DATABASE_PGBOUNCER=true``); the checks read the database directly."""
    with (
        fresh_database("storm_pgbouncer") as url,
        pgbouncer_in_front_of(url, pool_size=20) as through_pgbouncer,
    ):
        storm("cancellation_storm_pgbouncer", url, through_pgbouncer, DATABASE_PGBOUNCER="true")


def storm(scenario: str, url: str, apps_url: str, **env: str) -> None:
    """The storm against ``url``, the app processes reaching it at ``apps_url`` (the
    same, or a pooler in front of it) with ``env`` added to their environment."""
    with streaming_ai() as fake:
        fake.set(text=TEXT, chunks=6, delay_s=0.05)
        app = app_env(
            apps_url,
            AI_PROVIDER="openai", OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="test-key",
            OPENAI_MODEL="gpt-test", AI_TIMEOUT_S="30", RESERVATION_TTL_S="600", **env,
        )
        with running_cluster(app, PROCESSES) as cluster:
            figures = asyncio.run(_storm(url, cluster))
            checked = cluster.ledger_check()
            server_errors = cluster.unhandled_errors()
    assert server_errors == [], Counter(server_errors)
    report(scenario, **figures, ledger_check=checked)


async def _storm(url: str, cluster: Cluster) -> dict[str, Any]:
    rng = random.Random(SEED)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        people = await register_many(http, cluster.urls, USERS, "s")
        await grant(url, {p.id: START_TOKENS for p in people})
        chats = {}
        for p in people:
            r = await http.post(f"{cluster.urls[0]}/api/chats", json={}, headers=p.headers)
            assert r.status_code == 201, r.text
            chats[p.id] = int(r.json()["id"])
        asks = [
            Ask(person=p, chat=chats[p.id], key=f"storm-{uuid.uuid4().hex[:10]}",
                stream=rng.random() < 0.5, leave_at_s=rng.uniform(0, LEAVE_WITHIN_S),
                leave_after_events=rng.randint(0, STREAM_EVENTS),
                abort=rng.random() < 0.5, question=f"storm question {i}")
            for i, p in enumerate(rng.choice(people) for _ in range(REQUESTS))
        ]

        sampler = _IdleSampler(url)
        sampling = asyncio.create_task(sampler.run())
        started = time.monotonic()
        queue: asyncio.Queue[tuple[int, Ask]] = asyncio.Queue()
        for n, ask in enumerate(asks):
            queue.put_nowait((n, ask))

        async def client() -> None:
            while not queue.empty():
                n, ask = queue.get_nowait()
                await _ask_and_leave(cluster.urls[n % PROCESSES], ask)

        await asyncio.gather(*(client() for _ in range(IN_FLIGHT)))
        storm_s = time.monotonic() - started

        # Every hold resolved, by the requests themselves (holds outlive the test).
        truth = await settled_truth(url, {a.key: a.chat for a in asks}, timeout_s=30)
        resolved_s = time.monotonic() - started - storm_s

        # The pools are whole: /health answers on every process.
        health = Counter()
        for n in range(50):
            r = await http.get(f"{cluster.urls[n % PROCESSES]}/health")
            health[r.status_code] += 1
        # Sample on for 6 s after the storm: nothing may stay idle in a transaction.
        await sampler.keep_going_until(time.monotonic() + IDLE_IN_TRANSACTION_LIMIT_S + 1)
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)

    assert health == Counter({200: 50}), health
    assert sampler.stuck == [], sampler.stuck[:5]

    outcomes: Counter[str] = Counter()
    for ask in asks:
        reply = truth.replies[ask.key]
        kind = "stream" if ask.stream else "generate"
        where = (ask.key, kind, ask.outcome, reply)
        assert reply.deductions <= 1, where
        # Charged if and only if saved; released leaves nothing behind.
        assert reply.charged == (len(reply.messages) == 2), where
        assert reply.charged == (reply.deductions == 1), where
        if reply.hold is not None:
            assert reply.hold in ("committed", "released"), where
        if ask.received.strip() or ask.outcome == "done":  # text reached the client
            assert reply.charged, where
        if reply.charged:
            content, interrupted = reply.answer or ("", False)
            assert content.startswith(ask.received) and TEXT.startswith(content), where
            if content != TEXT:  # cut short: saved as far as it got, and said so
                assert interrupted and ask.stream, where
            if not ask.stream:  # a JSON reply is whole or not at all
                assert (content, interrupted) == (TEXT, False), where
        outcomes[f"{kind}_{'charged' if reply.charged else 'free'}"] += 1
        outcomes[f"{kind}_never_held"] += reply.hold is None
        outcomes[f"{kind}_interrupted"] += bool((a := reply.answer) and a[1])

    ledger = await audit(url)
    assert ledger.violations == []
    assert ledger.pending_holds == 0
    deductions = ledger.deductions()
    for p in people:
        assert ledger.balances[p.id] == START_TOKENS - deductions[p.id], p
        assert ledger.charged_replies.get(p.id, 0) == deductions[p.id], p
    return {
        "requests": REQUESTS,
        "processes": PROCESSES,
        **dict(sorted(outcomes.items())),
        "client_saw": dict(Counter(a.outcome for a in asks)),
        "storm_s": round(storm_s, 1),
        "holds_resolved_after_s": round(resolved_s, 2),
        "health_200": f"{health[200]}/50",
        "idle_in_tx_max_s": round(sampler.max_age_s, 2),
        "idle_in_tx_samples": sampler.samples,
    }


async def _ask_and_leave(base_url: str, ask: Ask) -> None:
    path = f"/api/chats/{ask.chat}/generate" + ("/stream" if ask.stream else "")
    headers = {**ask.person.headers, "Idempotency-Key": ask.key}
    exchange = await Exchange.post(base_url, path, {"content": ask.question}, headers)
    try:
        await asyncio.wait_for(_read(exchange, ask), timeout=ask.leave_at_s)
    except TimeoutError:
        ask.outcome = "left"
    finally:
        exchange.leave(abort=ask.abort)


async def _read(exchange: Exchange, ask: Ask) -> None:
    status = await exchange.head()
    if status != 200:
        ask.outcome = f"status_{status}"
        return
    if not ask.stream:
        await exchange.json()
        ask.outcome = "done"
        return
    seen = 0
    while seen < ask.leave_after_events and (event := await exchange.event()) is not None:
        seen += 1
        name, data = event
        if name == "delta":
            ask.received += data["text"]
        elif name in ("done", "error"):
            ask.outcome = name
            return
    ask.outcome = "left" if seen == ask.leave_after_events else "cut"


class _IdleSampler:
    """Samples ``pg_stat_activity`` for backends idle in a transaction, until cancelled."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples = 0
        self.max_age_s = 0.0
        self.stuck: list[IdleBackend] = []

    async def run(self) -> None:
        while True:
            found = await idle_in_transaction(self.url)
            self.samples += 1
            self.max_age_s = max([self.max_age_s, *(b.idle_s for b in found)])
            self.stuck.extend(b for b in found if b.idle_s > IDLE_IN_TRANSACTION_LIMIT_S)
            await asyncio.sleep(0.25)

    async def keep_going_until(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
