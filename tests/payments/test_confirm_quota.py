"""`confirm-payment` spends the merchant's Stripe request quota only when it can learn
something: a payment final in our books (credited, or canceled) is answered from our row,
and the route is rate limited per user. Stripe requests are counted on the wire, by a
proxy between the app and the local Stripe server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from payments.conftest import CountingProxy, sdk_client
from payments.kit import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, PayEnv, payment_settings
from stripe_sim import SimServer
from tokenbank.db import Database
from tokenbank.payments.stripe_client import AsyncHTTPXClient

from support import serve_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def counted(
    db_url: str, sim: SimServer, db: Database, proxy: tuple[str, CountingProxy]
) -> AsyncIterator[tuple[PayEnv, CountingProxy]]:
    """The payments bench, with the app reaching Stripe through the counting proxy."""
    url, counter = proxy
    settings = payment_settings(
        db_url, sim, stripe_api_base=url, rate_limit_enabled=True, rate_limit_payment_per_min=8
    )
    sim.reset()
    sdk_http = AsyncHTTPXClient(timeout=30)
    server, browser = sdk_client(SECRET_KEY, sim, sdk_http), sdk_client(PUBLISHABLE_KEY, sim, sdk_http)
    with serve_app(settings) as base_url:
        sim.set_webhook(f"{base_url}/api/payment/webhook", WEBHOOK_SECRET)
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            bench = PayEnv(sim, http, db, settings, server, browser)
            yield bench, counter
            bench.settle()
            assert await bench.violations() == []
        sim.set_webhook(None)
    await sdk_http.close_async()


async def test_a_credited_payment_is_confirmed_without_asking_stripe(
    counted: tuple[PayEnv, CountingProxy],
) -> None:
    env, counter = counted
    user = await env.user()
    pi = await env.buy(user, "standard")
    await env.wait_balance(user, 10 + 500, "the purchase credited")
    env.settle()
    counter.clear()

    answers = [await env.confirm(user, pi) for _ in range(7)]  # with the create: 8 a minute
    assert [r.status_code for r in answers] == [200] * 7
    assert {(r.json()["status"], r.json()["tokens_added"]) for r in answers} == {("succeeded", 500)}
    assert counter.retrievals(pi) == 0
    assert await env.balance(user) == 510


async def test_a_canceled_payment_is_confirmed_without_asking_stripe(
    counted: tuple[PayEnv, CountingProxy],
) -> None:
    env, counter = counted
    user = await env.user()
    intent = await env.create(user, "starter")
    pi = intent["payment_intent_id"]
    await env.server.v1.payment_intents.cancel_async(pi)

    async def canceled() -> bool:
        return (await env.payment(user, pi))["status"] == "canceled"

    deadline = asyncio.get_running_loop().time() + 15
    while not await canceled():
        assert asyncio.get_running_loop().time() < deadline, "the cancellation never arrived"
        await asyncio.sleep(0.05)
    env.settle()
    counter.clear()
    answers = [await env.confirm(user, pi) for _ in range(5)]
    assert {r.json()["status"] for r in answers} == {"canceled"}
    assert counter.retrievals(pi) == 0


async def test_confirm_payment_is_rate_limited_per_user(
    counted: tuple[PayEnv, CountingProxy],
) -> None:
    env, counter = counted
    # The limit is 8 in any 60 s (a sliding window: a burst across a minute's edge gets no
    # second budget).
    user = await env.user()
    pi = (await env.create(user, "starter"))["payment_intent_id"]  # 1 of 8 this minute
    env.settle()  # its payment_intent.created webhook syncs too; not ours to count
    counter.clear()
    answers = await asyncio.gather(*(env.confirm(user, pi) for _ in range(12)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 7 + [429] * 5, statuses
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited"
    # Refused calls count too, so the wait can reach into the next minute.
    assert 1 <= int(limited.headers["retry-after"]) <= 120
    # Not final yet (unpaid), so each allowed call asked Stripe; refused ones did not.
    assert counter.retrievals(pi) == 7
    # Someone else's budget is their own.
    other = await env.user()
    other_pi = (await env.create(other, "starter"))["payment_intent_id"]
    assert (await env.confirm(other, other_pi)).status_code == 200
