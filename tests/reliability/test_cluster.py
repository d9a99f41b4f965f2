"""Three app processes on one PostgreSQL: replies, purchases and webhooks spread over all.

No process keeps state of its own that matters: whichever process a request or a webhook
reaches, every user gets exactly what their balance allows and every payment is credited
exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from payments.kit import inbox_idle
from reliability.cluster import (
    Cluster,
    Person,
    StripeClients,
    WebhookProxy,
    app_env,
    audit,
    fresh_database,
    gather_limited,
    grant,
    register_many,
    report,
    running_cluster,
    start_sim,
)
from stripe_sim import SimServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROCESSES = 3
USERS = 50
REQUESTS_PER_USER = 20  # 1,000 replies asked for in all
CLIENTS = 100


def _client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency + 10, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(timeout=120, limits=limits)


def test_1000_replies_from_100_clients_over_3_processes_charge_exactly_what_balances_allow(
) -> None:
    with fresh_database("generate") as url, running_cluster(app_env(url), PROCESSES) as cluster:
        started = time.monotonic()
        figures = asyncio.run(_generate_burst(url, cluster))
        checked = cluster.ledger_check()
    report("cluster_generate", **figures, seconds=round(time.monotonic() - started, 1),
           ledger_check=checked)


async def _generate_burst(url: str, cluster: Cluster) -> dict[str, Any]:
    rng = random.Random(1000)
    async with _client(CLIENTS) as http:
        people = await register_many(http, cluster.urls, USERS, "g")
        # Known balances, the edges included: nothing, one short, exactly enough, one over.
        balances = {p.id: rng.randint(0, 2 * REQUESTS_PER_USER) for p in people}
        for person, edge in zip(people, (0, REQUESTS_PER_USER - 1, REQUESTS_PER_USER,
                                         REQUESTS_PER_USER + 1), strict=False):
            balances[person.id] = edge
        await grant(url, balances)
        chats = {p.id: await _new_chat(http, cluster.urls[p.id % PROCESSES], p) for p in people}

        asks = [p for p in people for _ in range(REQUESTS_PER_USER)]
        rng.shuffle(asks)  # one user's requests run at once, on different processes
        seen: dict[int, Counter[int]] = defaultdict(Counter)
        per_process: Counter[int] = Counter()

        async def ask(index: int, person: Person) -> None:
            target = index % PROCESSES
            r = await http.post(
                f"{cluster.urls[target]}/api/chats/{chats[person.id]}/generate",
                json={"content": f"question {index}"},
                headers=person.headers,
            )
            seen[person.id][r.status_code] += 1
            if r.status_code == 200:
                per_process[target] += 1
            elif r.status_code == 402:
                assert r.json()["error"]["code"] == "insufficient_tokens", r.text
            else:
                raise AssertionError(f"unexpected {r.status_code}: {r.text}")

        await gather_limited(
            [lambda i=i, p=p: ask(i, p) for i, p in enumerate(asks)], CLIENTS
        )

    found = await audit(url)
    mismatches = 0
    for p in people:
        allowed = min(REQUESTS_PER_USER, balances[p.id])
        expected = Counter({200: allowed, 402: REQUESTS_PER_USER - allowed})
        actual = (
            seen[p.id], found.balances[p.id], found.deductions()[p.id],
            found.charged_replies.get(p.id, 0),
        )
        if actual != (+expected, balances[p.id] - allowed, allowed, allowed):
            mismatches += 1
            print(f"user {p.id} balance {balances[p.id]}: got {actual}")
    assert mismatches == 0
    assert set(found.reserved.values()) == {0} and found.pending_holds == 0
    assert found.violations == []
    assert sorted(per_process) == list(range(PROCESSES)), "every process answered replies"
    replies = sum(c[200] for c in seen.values())
    return {
        "processes": PROCESSES,
        "users": USERS,
        "requests": len(asks),
        "clients": CLIENTS,
        "replies": replies,
        "refused_402": sum(c[402] for c in seen.values()),
        "expected_replies": sum(min(REQUESTS_PER_USER, b) for b in balances.values()),
        "replies_per_process": dict(sorted(per_process.items())),
        "mismatches": mismatches,
    }


async def _new_chat(http: httpx.AsyncClient, base_url: str, person: Person) -> int:
    r = await http.post(f"{base_url}/api/chats", json={"title": "load"}, headers=person.headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# --- purchases and webhooks ------------------------------------------------------------------

BUYERS = 30
PURCHASES_PER_BUYER = 4
TIERS = {"starter": 100, "standard": 500, "premium": 1500}


@contextmanager
def stripe_bench(*, refuse_first_share: float = 0.0, seed: int = 0
                 ) -> Iterator[tuple[SimServer, WebhookProxy]]:
    """The local Stripe server delivering to a proxy in front of the processes (whose
    targets the scenario sets once the processes run)."""
    proxy = WebhookProxy([], refuse_first_share=refuse_first_share, seed=seed).start()
    sim = start_sim(proxy.url)
    try:
        yield sim, proxy
    finally:
        sim.stop()
        proxy.stop()


def test_purchases_and_their_webhooks_on_3_processes_credit_every_payment_once() -> None:
    with (
        fresh_database("purchases") as url,
        stripe_bench() as (sim, proxy),
        running_cluster(app_env(url, sim), PROCESSES) as cluster,
    ):
        proxy.targets = cluster.urls
        # Every event three times, so copies of one event reach different processes.
        sim.set_faults(duplicates=3, seed=3)
        started = time.monotonic()
        figures = asyncio.run(_purchase_burst(url, cluster))
        sim.wait_webhooks_idle(120)
        inbox_idle(url, 120)
        figures |= asyncio.run(_check_purchases(url, sim, figures.pop("bought")))
        lines = cluster.reconcile()
        assert len(lines) == 1 and lines[-1].endswith("nothing changed"), lines
        checked = cluster.ledger_check()
    assert sorted(proxy.forwarded) == sorted(cluster.urls), "webhooks reached every process"
    report("cluster_purchases", **figures, webhook_deliveries=proxy.deliveries,
           deliveries_per_process=sorted(proxy.forwarded.values()),
           seconds=round(time.monotonic() - started, 1), reconcile=lines[-1],
           ledger_check=checked)


async def _purchase_burst(url: str, cluster: Cluster) -> dict[str, Any]:
    rng = random.Random(2000)
    bought: dict[int, int] = defaultdict(int)
    async with _client(BUYERS) as http:
        people = await register_many(http, cluster.urls, BUYERS, "b")
        stripe = StripeClients.for_url(cluster.env["STRIPE_API_BASE"])
        try:

            async def buy(person: Person, turn: int) -> None:
                tier = rng.choice(sorted(TIERS))
                here = cluster.urls[(person.id + turn) % PROCESSES]
                there = cluster.urls[(person.id + turn + 1) % PROCESSES]
                r = await http.post(f"{here}/api/payment/create-payment-intent",
                                    json={"tier": tier}, headers=person.headers)
                assert r.status_code == 200, r.text
                intent = r.json()
                paid = await stripe.pay(intent, "pm_card_visa")
                assert paid.status == "succeeded"
                # The browser's confirm, at another process, races the webhooks.
                c = await http.post(f"{there}/api/payment/confirm-payment",
                                    json={"payment_intent_id": intent["payment_intent_id"]},
                                    headers=person.headers)
                assert c.status_code == 200, c.text
                assert (c.json()["status"], c.json()["tokens_added"]) == ("succeeded",
                                                                          TIERS[tier])
                bought[person.id] += TIERS[tier]

            async def buyer(person: Person) -> None:
                for turn in range(PURCHASES_PER_BUYER):
                    await buy(person, turn)

            await asyncio.gather(*(buyer(p) for p in people))
        finally:
            await stripe.close()
    return {"buyers": BUYERS, "purchases": BUYERS * PURCHASES_PER_BUYER,
            "tokens_bought": sum(bought.values()), "bought": dict(bought)}


async def _check_purchases(url: str, sim: SimServer, bought: dict[int, int]) -> dict[str, Any]:
    found = await audit(url)
    stripe = StripeClients.for_sim(sim)
    try:
        intents = await stripe.intents()
    finally:
        await stripe.close()
    succeeded = {pi["id"] for pi in intents if pi["status"] == "succeeded"}
    per_intent = found.purchases_per_intent()
    double = [pi for pi, n in per_intent.items() if n != 1]
    missing = succeeded - set(per_intent)
    wrong = {u: (found.balances[u], want) for u, want in bought.items()
             if found.balances[u] != want}
    assert (double, sorted(missing), wrong) == ([], [], {})
    assert set(per_intent) == succeeded
    assert found.violations == []
    return {"succeeded_intents": len(succeeded), "credited_twice": len(double),
            "not_credited": len(missing), "balance_mismatches": len(wrong)}
