"""One Stripe Customer per user, created on first need, however many requests race for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from payments.kit import PayEnv
from tokenbank.config import Settings
from tokenbank.payments.flows import ensure_customer
from tokenbank.payments.models import StripeCustomer
from tokenbank.payments.stripe_client import StripeGateway

pytestmark = pytest.mark.anyio


@pytest.fixture
async def gateway(env: PayEnv) -> AsyncIterator[StripeGateway]:
    g = StripeGateway(env.settings)
    yield g
    await g.aclose()


async def test_racing_first_needs_make_one_customer_named_after_the_user(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user = await env.user()
    user_id = int(user["user"]["id"])
    refs = await asyncio.gather(
        *(ensure_customer(env.db, gateway, env.settings, user_id) for _ in range(8))
    )
    assert len({r.customer_id for r in refs}) == 1
    async with env.db.transaction() as s:
        rows = await s.scalar(select(func.count()).select_from(StripeCustomer))
    assert rows == 1
    customer = await env.server.v1.customers.retrieve_async(refs[0].customer_id)
    assert customer.metadata["user_id"] == str(user_id)
    assert customer.email == user["user"]["email"]
    assert refs[0].test_clock_id is None  # SUBSCRIPTION_TEST_CLOCKS is off by default

    again = await ensure_customer(env.db, gateway, env.settings, user_id)
    assert again == refs[0]


@pytest.mark.parametrize("pay_settings", [{"subscription_test_clocks": True}], indirect=True)
async def test_in_development_with_test_clocks_each_customer_gets_its_own_clock(
    env: PayEnv, gateway: StripeGateway
) -> None:
    first, second = await env.user(), await env.user()
    a = await ensure_customer(env.db, gateway, env.settings, int(first["user"]["id"]))
    b = await ensure_customer(env.db, gateway, env.settings, int(second["user"]["id"]))
    assert a.test_clock_id and b.test_clock_id and a.test_clock_id != b.test_clock_id
    customer = await env.server.v1.customers.retrieve_async(a.customer_id)
    assert customer.test_clock == a.test_clock_id


def test_production_never_honours_test_clocks() -> None:
    settings = Settings(app_env="production", subscription_test_clocks=True)
    assert not settings.test_clocks_enabled
    assert Settings(app_env="development", subscription_test_clocks=True).test_clocks_enabled


async def test_a_clock_asked_for_in_the_next_minute_is_the_one_the_first_call_made(
    env: PayEnv, gateway: StripeGateway
) -> None:
    """Racing first calls share the clock's idempotency key, so they must send Stripe the
    same parameters, even when they straddle a minute."""
    from tokenbank.types import utcnow

    minute = int(utcnow().timestamp()) // 60 * 60
    name, key = "tokenbank user 7", "test-clock:race-7"
    # The first call of the race, made in the minute before this one.
    first = await gateway.client.v1.test_helpers.test_clocks.create_async(
        {"frozen_time": minute - 60, "name": name}, {"idempotency_key": key}
    )
    assert await gateway.create_test_clock(name=name, idempotency_key=key) == first.id
    ids = await asyncio.gather(
        *(gateway.create_test_clock(name=name, idempotency_key=key) for _ in range(6))
    )
    assert set(ids) == {first.id}
