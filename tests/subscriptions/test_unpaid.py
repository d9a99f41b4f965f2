"""An account whose retries end in ``unpaid``: no allotment while the renewal is not paid,
the page says why and can pay it; paid, the allotment follows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments.kit import PayEnv, sim_config
from stripe_sim import SimServer
from subscriptions.kit import CLOCKS, subscriber

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("pay_settings", [CLOCKS], indirect=True),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(sim_config(invoice_retry_days=[2], after_retries="unpaid")) as server:
        yield server


async def test_unpaid_after_the_last_retry_then_paid_in_the_page(env: PayEnv) -> None:
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

    await s.advance(32)
    await s.wait_subscription("renewal failed", status="past_due", problem="payment_failed")
    await s.advance(3)  # the one retry, two days later, fails too
    sub = await s.wait_subscription("retries used up", status="unpaid", problem="payment_failed")
    assert sub["client_secret"]
    env.settle()
    assert [a for _, a in await s.allotments()] == [300]
    renewal = (await s.invoices())[-1]
    assert renewal.status == "open" and renewal.tokens_granted == 0

    paid = await s.pay(sub["client_secret"], "pm_card_visa")
    assert paid.status == "succeeded"
    await s.wait_subscription("paid again", status="active", problem=None)
    assert [a for _, a in await s.wait_allotments(2)] == [300, 300]
