"""Subscriptions through months on a Stripe test clock, on both databases: one allotment
per paid invoice whatever the webhooks do, upgrades, downgrades, failed renewals,
refunds."""

from __future__ import annotations

from typing import Any

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
    # Each renewal (not the first invoice) told the person once, whatever the webhooks did.
    assert await _alerts(env, s.user) == ["subscription_renewed"] * 3
    r = await s.post("/payment/create-subscription", {"plan": "pro"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "subscription_exists"


async def test_upgrade_mid_month_charges_the_proration_and_grants_the_difference(
    env: PayEnv,
) -> None:
    s = await subscriber(env)
    await s.subscribe("basic")
    await s.wait_subscription("paid", status="active")
    await s.wait_allotments(1)
    await s.advance(15)

    r = await s.post("/payment/update-subscription", {"plan": "pro"})
    assert r.status_code == 200, r.text
    assert r.json()["plan"] == "pro" and r.json()["scheduled_plan"] is None
    entries = await s.wait_allotments(2)
    assert [a for _, a in entries] == [300, 700]  # pro's 1000 less basic's 300
    invoices = await s.invoices()
    update = invoices[-1]
    assert update.billing_reason == "subscription_update" and update.status == "paid"
    assert 0 < update.amount_paid < 999 - 499  # prorated: about half a month's difference

    # The next renewal bills and allots the new plan.
    await s.advance(17)
    entries = await s.wait_allotments(3)
    assert [a for _, a in entries] == [300, 700, 1000]
    env.settle()
    assert len(await s.allotments()) == 3


async def test_downgrade_waits_for_the_period_end(env: PayEnv) -> None:
    s = await subscriber(env)
    await s.subscribe("premium")
    await s.wait_subscription("paid", status="active")
    await s.wait_allotments(1)

    r = await s.post("/payment/update-subscription", {"plan": "basic"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"] == "premium" and body["scheduled_plan"] == "basic"
    env.settle()
    assert [a for _, a in await s.allotments()] == [3000]  # no charge, no credit now
    assert len(await s.invoices()) == 1

    await s.advance(32)
    entries = await s.wait_allotments(2)
    assert [a for _, a in entries] == [3000, 300]
    sub = await s.wait_subscription("renewed", plan="basic", scheduled_plan=None)
    assert sub["status"] == "active"
    renewal = (await s.invoices())[-1]
    assert renewal.billing_reason == "subscription_cycle" and renewal.amount_paid == 499


async def test_choosing_the_current_plan_again_undoes_a_scheduled_downgrade(
    env: PayEnv,
) -> None:
    s = await subscriber(env)
    await s.subscribe("pro")
    await s.wait_subscription("paid", status="active")
    r = await s.post("/payment/update-subscription", {"plan": "basic"})
    assert r.json()["scheduled_plan"] == "basic"
    r = await s.post("/payment/update-subscription", {"plan": "pro"})
    assert r.status_code == 200 and r.json()["scheduled_plan"] is None
    await s.advance(32)
    entries = await s.wait_allotments(2)
    assert [a for _, a in entries] == [1000, 1000]


async def test_a_failed_renewal_gives_nothing_until_the_card_is_fixed(env: PayEnv) -> None:
    s = await subscriber(env)
    started = await s.subscribe("basic")
    await s.wait_subscription("paid", status="active")
    await s.wait_allotments(1)
    # The card on file starts declining (Stripe's 4000 0000 0000 0341).
    row = await s.row()
    bad = await env.server.v1.payment_methods.attach_async(
        "pm_card_chargeCustomerFail", {"customer": row.customer_id}
    )
    await env.server.v1.subscriptions.update_async(
        started["subscription_id"], {"default_payment_method": bad.id}
    )

    await s.advance(32)
    sub = await s.wait_subscription("renewal failed", status="past_due", problem="payment_failed")
    assert sub["client_secret"]  # the page can pay the open invoice with another card
    env.settle()
    assert len(await s.allotments()) == 1  # past_due: no allotment
    renewal = (await s.invoices())[-1]
    assert renewal.status == "open" and renewal.tokens_granted == 0
    assert await _alerts(env, s.user) == ["renewal_failed"]

    paid = await s.pay(sub["client_secret"], "pm_card_visa")
    assert paid.status == "succeeded"
    await s.wait_subscription("fixed", status="active", problem=None)
    entries = await s.wait_allotments(2)
    assert [a for _, a in entries] == [300, 300]


async def test_a_refunded_invoice_takes_its_allotment_back(env: PayEnv) -> None:
    s = await subscriber(env)
    await s.subscribe("pro")
    await s.wait_subscription("paid", status="active")
    await s.wait_allotments(1)
    before = await env.balance(s.user)
    (first,) = await s.invoices()
    assert first.payment_intent_id is not None

    await env.refund(first.payment_intent_id, amount=250)  # a quarter of 999 cents, about
    entries = await s.wait_allotments(2)
    assert entries[1][1] == -251  # ceil(1000 * 250 / 999): never keep a refunded token
    await env.refund(first.payment_intent_id)  # the rest
    entries = await s.wait_allotments(3)
    assert sum(a for _, a in entries) == 0
    env.settle()
    assert await env.balance(s.user) == before - 1000
    row = (await s.invoices())[0]
    assert row.reversed_tokens == 1000 and row.amount_returned == 999


async def test_a_disputed_invoice_takes_its_allotment_back_until_won(env: PayEnv) -> None:
    s = await subscriber(env)
    await s.subscribe("basic")
    await s.wait_allotments(1)
    (first,) = await s.invoices()
    assert first.payment_intent_id is not None
    pi = await env.server.v1.payment_intents.retrieve_async(first.payment_intent_id)
    dispute = env.sim.open_dispute(str(pi.latest_charge))  # funds withdrawn at once
    entries = await s.wait_allotments(2)
    assert [a for _, a in entries] == [300, -300]

    env.sim.close_dispute(dispute["id"], "won")
    entries = await s.wait_allotments(3)
    assert [a for _, a in entries] == [300, -300, 300]
    env.settle()
    row = (await s.invoices())[0]
    assert row.reversed_tokens == 0 and row.amount_returned == 0


async def test_an_upgrade_whose_charge_fails_changes_nothing_until_paid(env: PayEnv) -> None:
    s = await subscriber(env)
    started = await s.subscribe("basic")
    await s.wait_subscription("paid", status="active")
    await s.wait_allotments(1)
    row = await s.row()
    bad = await env.server.v1.payment_methods.attach_async(
        "pm_card_chargeCustomerFail", {"customer": row.customer_id}
    )
    await env.server.v1.subscriptions.update_async(
        started["subscription_id"], {"default_payment_method": bad.id}
    )
    await s.advance(10)

    r = await s.post("/payment/update-subscription", {"plan": "pro"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"] == "basic" and body["status"] == "active"
    assert body["problem"] == "payment_failed" and body["client_secret"]
    env.settle()
    assert [a for _, a in await s.allotments()] == [300]

    paid = await s.pay(body["client_secret"], "pm_card_visa")
    assert paid.status == "succeeded"
    await s.wait_subscription("upgraded", plan="pro", problem=None, status="active")
    assert [a for _, a in await s.wait_allotments(2)] == [300, 700]


async def _alerts(env: PayEnv, user: dict[str, Any]) -> list[str]:
    r = await env.http.get("/api/notifications", headers=user["headers"])
    assert r.status_code == 200, r.text
    return [n["kind"] for n in r.json()["items"]]
