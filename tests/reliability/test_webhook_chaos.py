"""Webhook chaos: every event delivered 1–4 times, shuffled, 20% of first attempts refused.

200 purchases (some declined first, ten disputed), 50 partial and full refunds, disputes
won, lost and left open, and Stripe's later lifecycles with their own event types:
refunds that are pending and succeed later (``refund.*``, ``charge.refund.updated``),
inquiries answered and closed later, two disputes on one charge, early fraud warnings —
with webhooks as the ONLY way news reaches the app (no confirm-payment, no periodic
reconcile), every copy acknowledged on receipt and applied by the processes' webhook
workers. Shuffling and duplicates are always on. Afterwards every balance is exactly what
Stripe's final state implies, and a reconcile finds nothing left to fix.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest
import stripe

from payments.kit import inbox_idle
from reliability.cluster import (
    Cluster,
    Person,
    StripeClients,
    app_env,
    audit,
    expected_from_stripe,
    fresh_database,
    gather_limited,
    register_many,
    report,
    running_cluster,
)
from reliability.test_cluster import stripe_bench
from stripe_sim import SimServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROCESSES = 3
BUYERS = 40
PURCHASES_PER_BUYER = 5  # 200 purchases
DISPUTED = 10  # 4 won, 4 lost, 2 left open (funds withdrawn)
DECLINED_FIRST = 10  # declined, then paid with another card on the same intent
# Stripe's later lifecycles, each with its own events (refund.*, charge.refund.updated,
# charge.dispute.* of inquiries and of several disputes, radar.early_fraud_warning.*):
PENDING_REFUND = 6  # refunded (3 in full, 3 in part): pending, succeeded later
INQUIRIES = 4  # an inquiry answered with winning evidence: under review, closed later
MULTIPLE_DISPUTES = 2  # two chargebacks on one charge, left open (funds withdrawn)
FRAUD_WARNINGS = 3  # an early fraud warning on a paid charge
SPECIAL = {
    "pending_refund": ("pm_card_pendingRefund", PENDING_REFUND),
    "inquiry": ("pm_card_createDisputeInquiry", INQUIRIES),
    "multiple_disputes": ("pm_card_createMultipleDisputes", MULTIPLE_DISPUTES),
    "fraud_warning": ("pm_card_createIssuerFraudRecord", FRAUD_WARNINGS),
}
ABANDONED = 5  # created, never paid
REFUSED_SHARE = 0.2
TIERS = ("starter", "standard", "premium")


def test_webhook_chaos_leaves_every_balance_as_stripe_says_and_nothing_to_reconcile() -> None:
    with (
        fresh_database("chaos") as url,
        stripe_bench(refuse_first_share=REFUSED_SHARE, seed=20) as (sim, proxy),
        running_cluster(app_env(url, sim), PROCESSES) as cluster,
    ):
        proxy.targets = cluster.urls
        sim.set_faults(duplicates=4, duplicates_random=True, shuffle=True, seed=20)
        started = time.monotonic()
        figures = asyncio.run(_chaos(cluster, sim))
        _settle(sim, url)
        settled_s = round(time.monotonic() - started, 1)
        figures |= asyncio.run(_compare_with_stripe(url, sim))
        lines = cluster.reconcile()
        checked = cluster.ledger_check()
        deliveries = sim.deliveries()
    assert len(lines) == 1 and lines[-1].endswith("nothing changed"), lines
    outcomes = Counter(d["outcome"] for d in deliveries)
    assert outcomes["abandoned"] == 0, outcomes
    copies = Counter((d["event_id"], d["copy"]) for d in deliveries if d["outcome"] != "dropped")
    per_event = Counter(event for event, _ in copies)
    assert set(per_event.values()) <= {1, 2, 3, 4} and len(set(per_event.values())) == 4
    assert len(proxy.refused) > 0
    delivered_types = {d["type"] for d in deliveries if d["outcome"] == "delivered"}
    assert {
        "refund.created", "refund.updated", "charge.refund.updated", "charge.refunded",
        "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
        "charge.dispute.funds_withdrawn", "radar.early_fraud_warning.created",
    } <= delivered_types, sorted(delivered_types)
    report(
        "webhook_chaos",
        **figures,
        events=len(per_event),
        event_types=len(delivered_types),
        copies_delivered=len(copies),
        delivery_attempts=len(deliveries),
        refused_first_attempts=len(proxy.refused),
        refused_share=round(len(proxy.refused) / len(per_event), 3),
        app_answers=dict(sorted(proxy.statuses.items())),
        seconds_until_settled=settled_s,
        reconcile=lines[-1],
        ledger_check=checked,
    )


def _settle(sim: SimServer, url: str) -> None:
    """Until Stripe has nothing left to do: its later transitions run (each with events),
    every delivery is done, and the app's workers have applied every event."""
    deadline = time.monotonic() + 300
    while True:
        sim.wait_webhooks_idle(300)
        inbox_idle(url, 300)
        if not sim.later():
            sim.wait_webhooks_idle(300)
            inbox_idle(url, 300)
            if not sim.later():
                return
        assert time.monotonic() < deadline, "Stripe's later transitions never ended"
        time.sleep(0.2)  # the next scheduled transition is due within the async delay


async def _chaos(cluster: Cluster, sim: SimServer) -> dict[str, Any]:
    rng = random.Random(20)
    limits = httpx.Limits(max_connections=BUYERS + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        people = await register_many(http, cluster.urls, BUYERS, "c")
        slots = [(p, turn) for p in people for turn in range(PURCHASES_PER_BUYER)]
        rng.shuffle(slots)
        special = [kind for kind, (_, n) in SPECIAL.items() for _ in range(n)]
        cards = (
            ["dispute"] * DISPUTED + ["declined_first"] * DECLINED_FIRST + special
            + ["visa"] * (len(slots) - DISPUTED - DECLINED_FIRST - len(special))
        )
        plan = {slot: (card, rng.choice(TIERS)) for slot, card in zip(slots, cards, strict=True)}
        clients = StripeClients.for_sim(sim)
        try:
            bought = await _purchases(http, cluster, clients, people, plan)
            await _abandoned(http, cluster, people[:ABANDONED])
            refunds = await _refunds(clients, bought, rng)
            disputes = await _close_disputes(clients, bought, rng)
            lifecycles = await _lifecycles(clients, bought, rng)
        finally:
            await clients.close()
    refunds["after_won_dispute"] = disputes.pop("refunded_after_won_dispute")
    refunds["total"] += refunds["after_won_dispute"]
    assert refunds["total"] == 50
    return {"purchases": len(bought), "declined_then_paid": DECLINED_FIRST,
            "abandoned_intents": ABANDONED, "refunds": refunds, **disputes, **lifecycles}


async def _purchases(
    http: httpx.AsyncClient,
    cluster: Cluster,
    clients: StripeClients,
    people: list[Person],
    plan: dict[tuple[Person, int], tuple[str, str]],
) -> list[tuple[str, str, int]]:
    """Each buyer pays for their packs one after another, all buyers at once.

    Returns ``(payment_intent_id, card, amount)`` per purchase.
    """
    bought: list[tuple[str, str, int]] = []

    async def buy(person: Person, turn: int) -> None:
        card, tier = plan[(person, turn)]
        r = await http.post(
            f"{cluster.urls[(person.id + turn) % PROCESSES]}/api/payment/create-payment-intent",
            json={"tier": tier},
            headers=person.headers,
        )
        assert r.status_code == 200, r.text
        intent = r.json()
        if card == "declined_first":
            with pytest.raises(stripe.CardError):
                await clients.pay(intent, "pm_card_chargeDeclined")
        method = (
            "pm_card_createDispute" if card == "dispute"
            else SPECIAL[card][0] if card in SPECIAL else "pm_card_visa"
        )
        assert (await clients.pay(intent, method)).status == "succeeded"
        bought.append((intent["payment_intent_id"], card, int(intent["amount"])))

    async def buyer(person: Person) -> None:
        for turn in range(PURCHASES_PER_BUYER):
            await buy(person, turn)

    await asyncio.gather(*(buyer(p) for p in people))
    return bought


async def _abandoned(http: httpx.AsyncClient, cluster: Cluster, people: list[Person]) -> None:
    for person in people:
        r = await http.post(f"{cluster.urls[0]}/api/payment/create-payment-intent",
                            json={"tier": "starter"}, headers=person.headers)
        assert r.status_code == 200, r.text


async def _refunds(
    clients: StripeClients, bought: list[tuple[str, str, int]], rng: random.Random
) -> dict[str, int]:
    """48 refunds over 40 payments while the purchases' webhooks are still arriving:
    16 full, 16 partial, 8 payments refunded partially twice (two more follow won
    disputes, in ``_close_disputes``: 50 in all)."""
    candidates = [(pi, amount) for pi, card, amount in bought
                  if card in ("visa", "declined_first")]
    rng.shuffle(candidates)
    full, partial, twice = candidates[:16], candidates[16:32], candidates[32:40]
    jobs = [lambda pi=pi: clients.refund(pi) for pi, _ in full]
    jobs += [lambda pi=pi, cents=rng.randint(1, a - 1): clients.refund(pi, cents)
             for pi, a in partial]

    async def two_partials(pi: str, first: int, second: int) -> None:
        await clients.refund(pi, first)
        await clients.refund(pi, second)

    for pi, amount in twice:
        first = rng.randint(1, amount // 2)
        second = rng.randint(1, amount - first - 1)
        jobs.append(lambda pi=pi, f=first, s=second: two_partials(pi, f, s))
    await gather_limited(jobs, 10)
    return {"full": len(full), "partial": len(partial), "partial_twice": 2 * len(twice),
            "total": len(full) + len(partial) + 2 * len(twice)}


async def _close_disputes(
    clients: StripeClients, bought: list[tuple[str, str, int]], rng: random.Random
) -> dict[str, int]:
    """Win four with evidence (two of them then partly refunded), lose four by accepting
    them, leave two open with their funds withdrawn — all with the secret key."""
    disputed = [pi for pi, card, _ in bought if card == "dispute"]
    found = {d["payment_intent"]: d for d in await clients.disputes()
             if d["payment_intent"] in disputed}
    assert sorted(found) == sorted(disputed)
    ids = [found[pi]["id"] for pi in disputed]
    won, lost = ids[:4], ids[4:8]
    for dispute_id in won:
        await clients.server.v1.disputes.update_async(
            dispute_id, {"evidence": {"uncategorized_text": "winning_evidence"}}
        )
    for dispute_id in lost:
        await clients.server.v1.disputes.close_async(dispute_id)
    refunded_after_win = []
    for pi in disputed[:2]:
        amount = next(a for p, _, a in bought if p == pi)
        await clients.refund(pi, rng.randint(1, amount - 1))
        refunded_after_win.append(pi)
    return {"disputes": len(disputed), "disputes_won": len(won), "disputes_lost": len(lost),
            "disputes_open": len(disputed) - len(won) - len(lost),
            "refunded_after_won_dispute": len(refunded_after_win)}


async def _compare_with_stripe(url: str, sim: SimServer) -> dict[str, Any]:
    clients = StripeClients.for_sim(sim)
    try:
        per_user, per_intent = await expected_from_stripe(clients)
    finally:
        await clients.close()
    found = await audit(url)
    net = found.net_per_intent()
    balance_mismatches = {u: (found.balances.get(u), want) for u, want in per_user.items()
                          if found.balances.get(u) != want}
    intent_mismatches = {pi: (net.get(pi), want) for pi, want in per_intent.items()
                         if net.get(pi) != want}
    unexpected = sorted(set(net) - set(per_intent))
    credited_twice = [pi for pi, n in found.purchases_per_intent().items() if n != 1]
    assert (balance_mismatches, intent_mismatches, unexpected, credited_twice) == ({}, {}, [], [])
    assert found.violations == []
    return {"users": len(per_user), "tokens_expected": sum(per_user.values()),
            "tokens_held": sum(found.balances.values()),
            "balance_mismatches": len(balance_mismatches),
            "intent_mismatches": len(intent_mismatches), "credited_twice": len(credited_twice)}


async def _lifecycles(
    clients: StripeClients, bought: list[tuple[str, str, int]], rng: random.Random
) -> dict[str, int]:
    """Refund the pending-refund purchases (they turn succeeded later), answer every
    inquiry with winning evidence (under review, then closed later), leave the several
    disputes and the fraud warnings as Stripe made them."""
    of = {kind: [(pi, a) for pi, card, a in bought if card == kind] for kind in SPECIAL}
    pending = of["pending_refund"]
    for n, (pi, amount) in enumerate(pending):
        await clients.refund(pi, None if n % 2 == 0 else rng.randint(1, amount - 1))
    inquiries = {pi for pi, _ in of["inquiry"]}
    answered = 0
    for dispute in await clients.disputes():
        if dispute["payment_intent"] in inquiries:
            assert dispute["status"] == "warning_needs_response", dispute["status"]
            await clients.server.v1.disputes.update_async(
                dispute["id"], {"evidence": {"uncategorized_text": "winning_evidence"}}
            )
            answered += 1
    assert answered == INQUIRIES
    several = {pi for pi, _ in of["multiple_disputes"]}
    per_charge = Counter(d["payment_intent"] for d in await clients.disputes()
                         if d["payment_intent"] in several)
    assert set(per_charge.values()) == {2}, per_charge
    return {"pending_refunds": len(pending), "inquiries_answered": answered,
            "charges_with_two_disputes": len(per_charge),
            "fraud_warnings": len(of["fraud_warning"])}
