"""Allotments are granted exactly once however many syncs race for one paid invoice, and
reconcile grants what lost webhooks never did."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from payments.kit import PayEnv
from subscriptions.kit import CLOCKS, subscriber
from tokenbank.payments.flows import reconcile
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.subscriptions.flows import sync_subscription

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True),
]


async def test_concurrent_syncs_of_one_paid_invoice_grant_once(env: PayEnv) -> None:
    env.sim.set_webhook(None)  # nothing arrives by webhook: only our syncs
    s = await subscriber(env)
    started = await s.subscribe("basic")
    gateway = StripeGateway(env.settings)
    try:
        outcomes = await asyncio.gather(*(
            sync_subscription(env.db, gateway, env.settings, started["subscription_id"])
            for _ in range(12)
        ))
    finally:
        await gateway.aclose()
    assert sum(o.granted for o in outcomes) == 300
    assert [a for _, a in await s.allotments()] == [300]
    assert (await s.row()).status == "active"


async def test_duplicate_deliveries_of_invoice_paid_at_once_grant_once(env: PayEnv) -> None:
    env.sim.set_webhook(None)
    s = await subscriber(env)
    started = await s.subscribe("basic")
    (paid,) = [
        e for e in await env.events(type_="invoice.paid")
        if e["data"]["object"]["parent"]["subscription_details"]["subscription"]
        == started["subscription_id"]
    ]
    # The same event, delivered eight times at once, and eight copies under new ids.
    copies = [paid] * 8 + [dict(paid, id=f"{paid['id']}x{i}") for i in range(8)]
    answers = await asyncio.gather(*(env.post_event(e) for e in copies))
    assert all(r.status_code == 200 for r in answers)
    await env.wait_inbox_done()
    assert [a for _, a in await s.allotments()] == [300]


async def test_reconcile_grants_what_lost_webhooks_never_did(env: PayEnv) -> None:
    s = await subscriber(env)
    await s.subscribe("basic")
    await s.wait_allotments(1)
    env.settle()
    env.sim.set_webhook(None)  # from here on every webhook is lost
    await s.advance(32)
    await s.advance(32)
    assert len(await s.allotments()) == 1

    gateway = StripeGateway(env.settings)
    try:
        report = await reconcile(env.db, gateway, env.settings)
        assert report.subscriptions_checked == 1 and report.subscriptions_changed == 1
        assert [a for _, a in await s.allotments()] == [300, 300, 300]
        again = await reconcile(env.db, gateway, env.settings)
        assert again.subscriptions_changed == 0
    finally:
        await gateway.aclose()
    assert len(await s.allotments()) == 3
    row = await s.row()
    assert row.status == "active" and row.current_period_end is not None


async def test_a_refund_of_an_invoice_we_never_heard_of_is_applied(env: PayEnv) -> None:
    s = await subscriber(env)
    await s.subscribe("basic")
    await s.wait_allotments(1)
    env.settle()
    url = f"{env.http.base_url}/api/payment/webhook"
    env.sim.set_webhook(None)  # the renewal's events are lost
    await s.advance(32)
    assert len(await s.invoices()) == 1
    renewal = (await env.server.v1.invoices.list_async(
        {"subscription": (await s.row()).id, "limit": 1}
    )).data[0]
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"
    payments = (await env.server.v1.invoice_payments.list_async(
        {"invoice": renewal.id}
    )).data
    pi_id = str(payments[0].payment.payment_intent)

    env.sim.set_webhook(url, env.sim.webhook_secret)
    await env.refund(pi_id)  # only the refund's events arrive
    entries = await s.wait_allotments(3)
    assert [a for _, a in entries] == [300, 300, -300]
    env.settle()
    rows = await s.invoices()
    assert rows[-1].id == renewal.id and rows[-1].reversed_tokens == 300


async def test_an_event_body_is_never_trusted(env: PayEnv) -> None:
    env.sim.set_webhook(None)
    s = await subscriber(env)
    started = await s.subscribe("basic")
    (paid,) = [
        e for e in await env.events(type_="invoice.paid")
        if e["data"]["object"]["parent"]["subscription_details"]["subscription"]
        == started["subscription_id"]
    ]
    # A body that claims more than Stripe says: a premium line and a bigger amount.
    lying = json_copy(paid)
    lying["id"] = f"{paid['id']}lie"
    lying["data"]["object"]["amount_paid"] = 1999
    for line in lying["data"]["object"]["lines"]["data"]:
        line["amount"] = 1999
    assert (await env.post_event(lying)).status_code == 200
    # One naming a subscription Stripe does not have can never be applied.
    ghost = json_copy(paid)
    ghost["id"] = f"{paid['id']}ghost"
    ghost["data"]["object"]["id"] = "in_ghost"
    ghost["data"]["object"]["parent"]["subscription_details"]["subscription"] = "sub_ghost"
    assert (await env.post_event(ghost)).status_code == 200
    await env.wait_event(lying["id"], "handled")
    await env.wait_event(ghost["id"], "unprocessable")
    assert [a for _, a in await s.allotments()] == [300]


def json_copy(event: dict[str, object]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(event))
    return copied
