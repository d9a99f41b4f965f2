"""Stripe's retry schedule for failed renewals (the account's custom schedule: retry N
days after each failed attempt) and what the last failed retry does to the subscription:
mark it ``unpaid`` (later invoices are not attempted) or cancel it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from sim.conftest import WEBHOOK_SECRET
from sim.sim_kit import event_types
from sim.test_billing import DAY, advance, clocked_customer, invoices_of, month, plan, subscribe
from stripe_sim import SimConfig, SimServer


@pytest.fixture(scope="module", params=["unpaid", "cancel"])
def retrying(request: pytest.FixtureRequest) -> Iterator[SimServer]:
    config = SimConfig(
        webhook_secret=WEBHOOK_SECRET,
        async_delay_s=0.05,
        invoice_retry_days=[3, 5],
        after_retries=request.param,
    )
    with SimServer(config) as server:
        yield server


@pytest.fixture
def sim(retrying: SimServer) -> SimServer:
    retrying.reset()
    return retrying


def test_retries_follow_the_schedule_then_the_subscription_is_marked(
    client: stripe.StripeClient, sim: SimServer, request: pytest.FixtureRequest
) -> None:
    after_retries = request.node.callspec.params["retrying"]
    price = plan(client, "basic", 499)
    clock, cus, good_pm = clocked_customer(client)
    sub = subscribe(client, cus, price)
    bad = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": bad.id}})

    advance(client, sim, clock.id, month(1) + 60)
    renewal = invoices_of(client, sub.id)[-1]
    assert renewal.attempt_count == 1 and renewal.next_payment_attempt == month(1) + 3 * DAY
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"

    advance(client, sim, clock.id, month(1) + 4 * DAY)  # the first retry, 3 days later
    renewal = client.v1.invoices.retrieve(renewal.id)
    assert renewal.attempt_count == 2
    assert renewal.next_payment_attempt == month(1) + 8 * DAY  # 5 days after that
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"

    advance(client, sim, clock.id, month(1) + 9 * DAY)  # the last retry fails too
    renewal = client.v1.invoices.retrieve(renewal.id)
    assert renewal.attempt_count == 3 and renewal.next_payment_attempt is None
    assert renewal.status == "open"
    after = client.v1.subscriptions.retrieve(sub.id)
    failures = [t for t in event_types(client) if t == "invoice.payment_failed"]
    assert len(failures) == 3
    if after_retries == "unpaid":
        assert after.status == "unpaid"
        # Invoicing goes on, but nothing is attempted.
        advance(client, sim, clock.id, month(2) + 60)
        later = invoices_of(client, sub.id)[-1]
        assert later.id != renewal.id and later.status == "open" and later.attempt_count == 0
        assert client.v1.subscriptions.retrieve(sub.id).status == "unpaid"
        # Paying the latest invoice makes it active again.
        paid = client.v1.invoices.pay(later.id, {"payment_method": good_pm})
        assert paid.status == "paid"
        assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    else:
        assert after.status == "canceled"
        assert "customer.subscription.deleted" in event_types(client)


def test_a_retry_that_succeeds_makes_it_active(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    price = plan(client, "basic", 499)
    clock, cus, good_pm = clocked_customer(client)
    sub = subscribe(client, cus, price)
    bad = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": bad.id}})
    advance(client, sim, clock.id, month(1) + 60)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    # The customer fixes the card before the retry.
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": good_pm}})
    advance(client, sim, clock.id, month(1) + 4 * DAY)
    renewal = invoices_of(client, sub.id)[-1]
    assert renewal.status == "paid" and renewal.attempt_count == 2
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
