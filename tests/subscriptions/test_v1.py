"""``GET /api/v1/customers/{external_id}/subscription``: a host app reads its customer's
plan with a read-scoped key."""

from __future__ import annotations

import pytest

from payments.kit import PayEnv
from subscriptions.kit import CLOCKS, Subscriber
from tokenbank.apikeys import service as apikeys
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.subscriptions import flows
from tokenbank.v1 import service as v1

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True),
]


async def test_a_customers_subscription_by_external_id(env: PayEnv) -> None:
    async with env.db.transaction() as session:
        read = await apikeys.create_key(session, "reader", ["read"])
        charge = await apikeys.create_key(session, "charger", ["charge"])
    key = {"Authorization": f"Bearer {read.secret}"}
    r = await env.http.put(  # creating a customer takes a write scope
        "/api/v1/customers/host-7", json={"email": "h7@example.com"},
        headers={"Authorization": f"Bearer {charge.secret}"},
    )
    assert r.status_code == 200, r.text
    path = "/api/v1/customers/host-7/subscription"
    r = await env.http.get(path, headers=key)
    assert r.status_code == 200, r.text
    assert r.json() == {"external_id": "host-7", "subscription": None}

    async with env.db.transaction() as session:
        user_id = (await v1.get_customer(session, "host-7")).user_id
    gateway = StripeGateway(env.settings)
    try:
        started = await flows.create_subscription(
            env.db, gateway, env.settings, user_id=user_id, plan_id="pro"
        )
    finally:
        await gateway.aclose()
    assert started.client_secret
    await Subscriber(env, {"user": {"id": user_id}, "headers": {}}).pay(
        started.client_secret, "pm_card_visa"
    )
    env.settle()
    body = (await env.http.get(path, headers=key)).json()
    sub = body["subscription"]
    assert sub["id"] == started.subscription.id and sub["plan"] == "pro"
    assert sub["status"] == "active" and sub["problem"] is None
    assert "client_secret" not in sub

    r = await env.http.get(path, headers={"Authorization": f"Bearer {charge.secret}"})
    assert r.status_code == 403
    r = await env.http.get("/api/v1/customers/nobody/subscription", headers=key)
    assert r.status_code == 404
