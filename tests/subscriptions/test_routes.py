"""The subscription routes' answers: plans, one live subscription, cancel and resume,
the portal on the local Stripe server, the development clock, the admin's view."""

from __future__ import annotations

import pytest

from payments.kit import PayEnv
from subscriptions.kit import CLOCKS, subscriber
from tokenbank.auth.models import User

pytestmark = pytest.mark.anyio


async def test_plans_come_from_configuration(env: PayEnv) -> None:
    r = await env.http.get("/api/payment/subscription-plans")
    assert r.status_code == 200
    assert r.json()["items"] == [
        {"id": "basic", "name": "Basic", "price_cents": 499, "currency": "usd",
         "monthly_tokens": 300, "interval": "month", "allotment_expires_after_days": 60},
        {"id": "pro", "name": "Pro", "price_cents": 999, "currency": "usd",
         "monthly_tokens": 1000, "interval": "month", "allotment_expires_after_days": 60},
        {"id": "premium", "name": "Premium", "price_cents": 1999, "currency": "usd",
         "monthly_tokens": 3000, "interval": "month", "allotment_expires_after_days": 60},
    ]


async def test_without_a_subscription(env: PayEnv) -> None:
    s = await subscriber(env)
    assert await s.subscription() is None
    for path in ("/payment/cancel-subscription", "/payment/resume-subscription"):
        r = await s.post(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "subscription_not_found"
    r = await s.post("/payment/update-subscription", {"plan": "pro"})
    assert r.status_code == 404
    r = await s.post("/payment/create-subscription", {"plan": "platinum"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_plan"
    # Test clocks are off by default: the development route does not exist.
    r = await s.post("/dev/advance-clock", {"days": 3})
    assert r.status_code == 404


@pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True)
async def test_an_unpaid_subscription_is_answered_again_and_replaced_for_another_plan(
    env: PayEnv,
) -> None:
    s = await subscriber(env)
    first = (await s.post("/payment/create-subscription", {"plan": "basic"})).json()
    again = (await s.post("/payment/create-subscription", {"plan": "basic"})).json()
    assert again["subscription_id"] == first["subscription_id"]
    assert again["client_secret"] == first["client_secret"]
    sub = await s.subscription()
    assert sub is not None and sub["status"] == "incomplete"
    assert sub["client_secret"] == first["client_secret"]

    other = (await s.post("/payment/create-subscription", {"plan": "pro"})).json()
    assert other["subscription_id"] != first["subscription_id"]
    old = await env.server.v1.subscriptions.retrieve_async(first["subscription_id"])
    assert old.status == "canceled"
    await s.pay(other["client_secret"], "pm_card_visa")
    await s.wait_subscription("paid", status="active", plan="pro")
    await s.wait_allotments(1)


@pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True)
async def test_cancel_at_period_end_then_resume_then_cancel_ends_it(env: PayEnv) -> None:
    s = await subscriber(env)
    await s.subscribe("basic")
    await s.wait_subscription("paid", status="active")
    r = await s.post("/payment/cancel-subscription")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True
    r = await s.post("/payment/resume-subscription")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is False
    r = await s.post("/payment/cancel-subscription")
    assert r.json()["cancel_at_period_end"] is True

    r = await s.post("/payment/customer-portal")
    assert r.status_code == 409 and r.json()["error"]["code"] == "portal_unavailable"

    await s.advance(32)
    sub = await s.wait_subscription("ended", status="canceled")
    assert sub["client_secret"] is None
    env.settle()
    assert [a for _, a in await s.allotments()] == [300]  # the paid month only
    r = await s.post("/payment/cancel-subscription")
    assert r.status_code == 404
    # Ended, a new subscription may start.
    r = await s.post("/payment/create-subscription", {"plan": "basic"})
    assert r.status_code == 200 and r.json()["subscription_id"] != sub["id"]


@pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True)
async def test_admin_sees_a_users_subscription(env: PayEnv) -> None:
    from sqlalchemy import update

    s = await subscriber(env)
    admin = await env.user()
    async with env.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == int(admin["user"]["id"])).values(is_admin=True)
        )
    path = f"/api/admin/users/{s.user_id}/subscription"
    r = await env.http.get(path, headers=admin["headers"])
    assert r.status_code == 200 and r.json() == {"subscription": None}
    await s.subscribe("pro")
    await s.wait_subscription("paid", status="active")
    r = await env.http.get(path, headers=admin["headers"])
    assert r.json()["subscription"]["plan"] == "pro"
    r = await env.http.get(path, headers=s.headers)
    assert r.status_code == 403


@pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True)
async def test_racing_creates_make_one_subscription(env: PayEnv) -> None:
    import asyncio

    s = await subscriber(env)
    answers = await asyncio.gather(*(
        s.post("/payment/create-subscription", {"plan": "basic"}) for _ in range(6)
    ))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert len({r.json()["subscription_id"] for r in answers}) == 1
    row = await s.row()
    listed = await env.server.v1.subscriptions.list_async(
        {"customer": row.customer_id, "status": "all"}
    )
    assert len(listed.data) == 1
