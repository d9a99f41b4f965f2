"""A webhook worker killed mid-drain (kill -9) loses nothing and applies nothing twice.

One ``tokenbank serve`` process acknowledges 32 signed ``payment_intent.succeeded``
events, then its worker starts applying them with Stripe slowed to 2 s a call (the local
Stripe server's latency fault), so a batch is always in flight. Once some events are
applied, others are claimed mid-sync and more still wait (so the drain is sure to be
mid-batch when the signal lands, not between its last batch and the end), the process is
killed with SIGKILL. A new
process on the same database takes over: the waiting events at once, the ones the dead
worker had claimed once their claim runs out (``WEBHOOK_CLAIM_LEASE_S``). Afterwards every
event is handled, every payment credited exactly once, and the ledger is clean.

Three ways, as the worker runs: under ``tokenbank serve`` it is a child process of the app
process (``WEBHOOK_WORKER_PROCESS``) — killing the app kills that child with it (none is
left behind), and killing the child alone has the app's supervisor start a new one, which
takes the dead one's claims over in the same way (no second app needed); with
``WEBHOOK_WORKER_PROCESS=false`` it is a task of the app process, killed with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from payments.kit import sign
from reliability.cluster import (
    StripeClients,
    app_env,
    audit,
    fresh_database,
    register,
    report,
    start_sim,
)
from reliability.harness import AppProcess, wait_until
from stripe_sim import SimServer
from tokenbank.db import Database
from tokenbank.payments.models import WebhookEvent
from tokenbank.types import utcnow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PURCHASES = 32  # four claims of WEBHOOK_CONCURRENCY=8
# Longer than one sync with Stripe at 2 s a call (two calls), so only the killed
# process's claims are ever taken over.
LEASE_S = 15


@pytest.mark.parametrize("killed", ["app", "worker child", "app with the worker in it"])
def test_a_worker_killed_mid_drain_loses_nothing_and_applies_nothing_twice(killed: str) -> None:
    in_process = killed == "app with the worker in it"
    with fresh_database("worker_kill") as url:
        sim = start_sim(None)  # delivers nothing itself: the test posts the events
        env = app_env(url, sim, WEBHOOK_CLAIM_LEASE_S=str(LEASE_S), WEBHOOK_CONCURRENCY="8",
                      WEBHOOK_POLL_INTERVAL_S="0.5",
                      WEBHOOK_WORKER_PROCESS="false" if in_process else "true",
                      WEBHOOK_WORKER_NICE="5")
        first, second = AppProcess(env), AppProcess(env)
        try:
            first.start()
            assert first.proc is not None
            children = _worker_children(first.proc.pid)
            assert len(children) == (0 if in_process else 1)
            for child in children:  # WEBHOOK_WORKER_NICE, once the child has started
                wait_until(lambda c=child: _niceness(c) == 5, 30, f"worker {child} at nice 5")
            user_id, events = asyncio.run(_paid_purchases(first.url, sim))
            sim.set_api_faults(latency_s=2.0)
            answers = asyncio.run(_post(first.url, events))
            assert answers == ["received"] * PURCHASES

            wait_until(lambda: _mid_drain(url), 60,
                       "some events applied, others claimed under a second ago, more waiting")
            if killed == "worker child":
                os.kill(children[0], signal.SIGKILL)
            else:
                first.kill9()
            at_kill = asyncio.run(_statuses(url))
            sim.set_api_faults()

            if killed == "worker child":
                # The app lives on, and its supervisor starts a new worker.
                pid = first.proc.pid
                wait_until(lambda: _worker_children(pid) not in ([], children), 30,
                           "a new worker child")
                assert len(_worker_children(pid)) == 1
                restarted = _worker_children(pid)[0]
                wait_until(lambda: _niceness(restarted) == 5, 30, "the new worker at nice 5")
                # Acknowledging never stopped (a redelivery: recorded already).
                assert asyncio.run(_post(first.url, events[:1])) == ["duplicate"]
            else:
                for child in children:  # none left behind
                    wait_until(lambda c=child: not _alive(c), 10, f"worker child {child} gone")
                second.start()
            wait_until(lambda: set(asyncio.run(_statuses(url)).values()) == {"handled"},
                       LEASE_S + 60, "every event handled by the new worker")
            rows = asyncio.run(_rows(url))
            found = asyncio.run(audit(url))
        finally:
            first.stop()
            second.stop()
            sim.stop()

    claimed_when_killed = [e for e, s in at_kill.items() if s == "processing"]
    done_when_killed = [e for e, s in at_kill.items() if s == "handled"]
    assert claimed_when_killed and done_when_killed
    assert len(rows) == PURCHASES  # nothing acknowledged was lost
    # The dead worker's claims were taken over (a second attempt); finished ones were not.
    assert {rows[e] for e in claimed_when_killed} == {2}
    assert {rows[e] for e in done_when_killed} == {1}
    per_intent = found.purchases_per_intent()
    assert len(per_intent) == PURCHASES and set(per_intent.values()) == {1}
    assert found.balances[user_id] == PURCHASES * 100
    assert found.violations == []
    report("webhook_worker_kill", killed=killed, events=PURCHASES, applied_before_kill=len(done_when_killed),
           claimed_at_kill=len(claimed_when_killed),
           waiting_at_kill=PURCHASES - len(done_when_killed) - len(claimed_when_killed),
           credited_once=len(per_intent), balance=found.balances[user_id])


async def _paid_purchases(base_url: str, sim: SimServer) -> tuple[int, list[bytes]]:
    """One person, ``PURCHASES`` Starter packs paid at Stripe; their succeeded events."""
    clients = StripeClients.for_sim(sim)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            person = await register(http, base_url, "k")
            for _ in range(PURCHASES):
                r = await http.post(f"{base_url}/api/payment/create-payment-intent",
                                    json={"tier": "starter"}, headers=person.headers)
                assert r.status_code == 200, r.text
                assert (await clients.pay(r.json(), "pm_card_visa")).status == "succeeded"
        page = await clients.server.v1.events.list_async(
            {"type": "payment_intent.succeeded", "limit": 100}
        )
        events = [json.dumps(e.to_dict()).encode() async for e in page.auto_paging_iter()]
    finally:
        await clients.close()
    assert len(events) == PURCHASES
    return person.id, events


async def _post(base_url: str, events: list[bytes]) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def one(body: bytes) -> str:
            r = await http.post("/api/payment/webhook", content=body, headers={
                "Stripe-Signature": sign(body), "Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            return str(r.json()["status"])

        return list(await asyncio.gather(*(one(b) for b in events)))


async def _rows(url: str) -> dict[str, int]:
    """Attempts per event."""
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as s:
            found = (await s.execute(select(WebhookEvent.id, WebhookEvent.attempts))).all()
    finally:
        await db.dispose()
    return {str(i): int(a) for i, a in found}


async def _statuses(url: str) -> dict[str, str]:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as s:
            found = (await s.execute(select(WebhookEvent.id, WebhookEvent.status))).all()
    finally:
        await db.dispose()
    return {str(i): str(st) for i, st in found}


def _mid_drain(url: str) -> bool:
    """Applied, claimed and waiting events at once, the claim taken under a second ago: its
    syncs take Stripe's 2 s a call, so when the kill lands a moment later the worker still
    holds it (a claim about to end could finish between this look and the kill)."""
    statuses = set(asyncio.run(_statuses(url)).values())
    return {"handled", "processing", "received"} <= statuses and asyncio.run(_fresh_claim(url))


async def _fresh_claim(url: str) -> bool:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as s:
            newest = (await s.execute(
                select(func.max(WebhookEvent.claimed_until))
                .where(WebhookEvent.status == "processing")
            )).scalar_one()
    finally:
        await db.dispose()
    return newest is not None and newest > utcnow() + timedelta(seconds=LEASE_S - 1)


def _worker_children(pid: int) -> list[int]:
    """The pids of the app process's webhook worker children (``tokenbank.worker``)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"tokenbank.worker" in cmdline and _alive(int(child)):
                found.append(int(child))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
