"""Subscriptions through months on a Stripe test clock, on both databases: one allotment
per paid invoice whatever the webhooks do, upgrades, downgrades, failed renewals,
refunds."""

from __future__ import annotations

import pytest

from payments.kit import PayEnv

from subscriptions.kit import CLOCKS, subscriber

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True),
]


async def test_subscribe_then_three_renewals_grant_one_allotment_each(env: PayEnv) -> None:
    # Every event arrives twice, in shuffled order.
    env.sim.set_faults(duplicates=2, shuffle=True, shuffle_window=4, shuffle_hold_s=0.1)
    s = await subscriber(env)
    before = await env.balance(s.user)
    await s.subscribe("basic")
    sub = await s.wait_subscription("paid", status="active", plan="basic")
    assert sub["cancel_at_period_end"] is False and sub["problem"] is None
    assert sub["client_secret"] is None and sub["portal_available"] is False
    await s.wait_allotments(1)

    for month in range(1, 4):
        await s.advance(32)
        await s.wait_allotments(month + 1)
    env.settle()
    await env.wait_inbox_done()

    entries = await s.allotments()
    assert [amount for _, amount in entries] == [300] * 4
    assert len({key for key, _ in entries}) == 4
    invoices = await s.invoices()
    assert [i.billing_reason for i in invoices] == ["subscription_create"] + [
        "subscription_cycle"
    ] * 3
    assert all(i.status == "paid" and i.tokens_granted == 300 for i in invoices)
    assert all(i.expires_at is not None for i in invoices)
    assert await env.balance(s.user) == before + 1200
    r = await s.post("/payment/create-subscription", {"plan": "pro"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "subscription_exists"
