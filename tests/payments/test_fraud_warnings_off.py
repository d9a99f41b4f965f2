"""With ``EFW_AUTO_REFUND`` off, an early fraud warning is recorded and nothing is refunded."""

from __future__ import annotations

import pytest

from payments.kit import PayEnv, payment_settings
from stripe_sim import SimServer
from tokenbank.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def pay_settings(db_url: str, sim: SimServer) -> Settings:
    return payment_settings(db_url, sim, efw_auto_refund=False)


async def test_a_warning_without_auto_refund_keeps_the_purchase(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)

    pi_id = await env.buy(user, "starter", "pm_card_createIssuerFraudRecord")

    await env.wait_balance(user, start + 100)
    env.settle()
    warned = await env.events(type_="radar.early_fraud_warning.created")
    assert [e["data"]["object"]["payment_intent"] for e in warned] == [pi_id]
    assert (await env.server.v1.refunds.list_async({"payment_intent": pi_id})).data == []
    assert await env.balance(user) == start + 100
    assert await env.purchase_entries(pi_id) == [("purchase", 100)]
