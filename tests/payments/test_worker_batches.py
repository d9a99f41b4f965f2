"""The webhook worker's claims: one read of Stripe per payment in a claim (counted on the
wire), and exactly once all the same — when claims refill the applying, when one event can
never be applied, when a slow worker's claim was taken over, when a worker is stopped
mid-claim."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from payments.conftest import CountingProxy
from payments.kit import PayEnv
from tokenbank.payments.flows import WebhookWorker, claim_due, process_claimed
from tokenbank.payments.stripe_client import StripeGateway

from support import wait_for

pytestmark = pytest.mark.anyio

NO_WORKER = pytest.mark.parametrize("pay_settings", [{"webhook_worker": False}], indirect=True)


def worker_for(env: PayEnv, **overrides: Any) -> WebhookWorker:
    settings = env.settings.model_copy(update=overrides)
    return WebhookWorker(env.db, StripeGateway(settings), settings)


async def paid_without_webhooks(env: PayEnv, user: dict[str, Any], tier: str) -> str:
    env.sim.set_faults(drop_all=True)
    pi_id = await env.buy(user, tier)
    env.settle()
    env.sim.set_faults()
    return pi_id


async def deliver_all(env: PayEnv, pi_id: str) -> list[str]:
    """Every event Stripe has about the intent, delivered by us; their ids."""
    ids = []
    for event in await env.events(pi_id):
        r = await env.post_event(event)
        assert r.status_code == 200
        if r.json()["status"] == "received":
            ids.append(event["id"])
    return ids


@NO_WORKER
async def test_a_claim_reads_each_payment_once_and_applies_every_event_once(
    env: PayEnv, proxy: tuple[str, CountingProxy]
) -> None:
    url, counter = proxy
    user = await env.user()
    start = await env.balance(user)
    first = await paid_without_webhooks(env, user, "standard")
    second = await paid_without_webhooks(env, user, "starter")
    ids = await deliver_all(env, first) + await deliver_all(env, second)
    assert len(ids) > 2  # the first payment has several events (intent and charge)
    worker = worker_for(env, stripe_api_base=url, webhook_concurrency=16)
    counter.clear()

    assert await worker.drain() == len(ids)

    assert (counter.retrievals(first), counter.retrievals(second)) == (1, 1)
    for event_id in ids:
        row = await env.inbox_row(event_id)
        assert row is not None and (row.status, row.attempts) == ("handled", 1)
    assert await env.balance(user) == start + 500 + 100
    assert await env.purchase_entries(first) == [("purchase", 500)]
    assert await env.purchase_entries(second) == [("purchase", 100)]
    await worker.gateway.aclose()


@NO_WORKER
async def test_an_event_that_can_never_be_applied_does_not_hold_back_its_claim(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await paid_without_webhooks(env, user, "standard")
    ids = await deliver_all(env, pi_id)
    ghost = {
        "id": "evt_ghost_dispute", "object": "event", "type": "charge.dispute.created",
        "data": {"object": {"id": "dp_ghost", "object": "dispute", "charge": "ch_nosuchcharge"}},
    }
    assert (await env.post_event(json.dumps(ghost).encode())).json()["status"] == "received"
    worker = worker_for(env)

    assert await worker.drain() == len(ids) + 1

    row = await env.inbox_row("evt_ghost_dispute")
    assert row is not None and row.status == "unprocessable" and row.attempts == 1
    for event_id in ids:
        row = await env.inbox_row(event_id)
        assert row is not None and row.status == "handled"
    assert await env.balance(user) == start + 500
    await worker.gateway.aclose()


@NO_WORKER
async def test_a_slow_worker_whose_claim_was_taken_over_applies_nothing_twice(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await paid_without_webhooks(env, user, "standard")
    ids = await deliver_all(env, pi_id)
    slow = worker_for(env, webhook_claim_lease_s=0.001)
    other = worker_for(env)
    claimed = await claim_due(slow.db, slow.settings, 8)  # then it stalls past its lease…

    assert await other.drain() == len(ids)  # …and another worker takes every event over
    for event in claimed:  # the slow one's claims are lost: it changes nothing
        h = await process_claimed(slow.db, slow.gateway, slow.settings, event)
        assert h.status is None  # taken over: not marked by this worker

    for event_id in ids:
        row = await env.inbox_row(event_id)
        assert row is not None and (row.status, row.attempts) == ("handled", 2)
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]
    await slow.gateway.aclose()
    await other.gateway.aclose()


@NO_WORKER
async def test_a_worker_stopped_mid_claim_hands_every_claimed_event_back(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    first = await paid_without_webhooks(env, user, "standard")
    second = await paid_without_webhooks(env, user, "starter")
    ids = await deliver_all(env, first) + await deliver_all(env, second)
    stopped = worker_for(env)
    env.sim.set_api_faults(latency_s=2.0)  # its reads are in flight when it is stopped
    try:
        drain = asyncio.create_task(stopped.drain())

        async def all_claimed() -> bool:
            rows = [await env.inbox_row(i) for i in ids]
            return all(r is not None and r.status == "processing" for r in rows)

        await wait_for(all_claimed, timeout_s=20, what="the worker to claim every event")
        drain.cancel()
        with pytest.raises(asyncio.CancelledError):
            await drain
    finally:
        env.sim.set_api_faults()

    async def all_handed_back() -> bool:  # due again now, not when a 300 s claim runs out
        rows = [await env.inbox_row(i) for i in ids]
        return all(r is not None and (r.status, r.claim_token) == ("received", None)
                   for r in rows)

    await wait_for(all_handed_back, timeout_s=10, what="every claimed event handed back")
    assert await env.balance(user) == start
    again = worker_for(env)
    assert await again.drain() == len(ids)
    assert await env.balance(user) == start + 500 + 100
    assert await env.purchase_entries(first) == [("purchase", 500)]
    await stopped.gateway.aclose()
    await again.gateway.aclose()


@NO_WORKER
async def test_claims_that_refill_the_applying_apply_every_event_once(env: PayEnv) -> None:
    """Two places: each claim refills what is free while the other place still applies,
    so a payment's events land in several claims (a later one waits for the earlier
    group of its payment) — and each event is applied once, each payment credited once."""
    user = await env.user()
    start = await env.balance(user)
    payments = [
        await paid_without_webhooks(env, user, tier) for tier in ("standard", "starter", "starter")
    ]
    events = [await env.events(pi_id) for pi_id in payments]
    ids = []
    for turn in range(max(len(e) for e in events)):  # interleaved: payment by payment
        for own in events:
            if turn < len(own):
                r = await env.post_event(own[turn])
                assert r.status_code == 200
                if r.json()["status"] == "received":
                    ids.append(own[turn]["id"])
    worker = worker_for(env, webhook_concurrency=2)

    assert await worker.drain() == len(ids)

    for event_id in ids:
        row = await env.inbox_row(event_id)
        assert row is not None and (row.status, row.attempts) == ("handled", 1)
    assert await env.balance(user) == start + 500 + 100 + 100
    for pi_id, tokens in zip(payments, (500, 100, 100), strict=True):
        assert await env.purchase_entries(pi_id) == [("purchase", tokens)]
    await worker.gateway.aclose()
