"""Refunds as Stripe's test cards make them: pending then succeeded, succeeded then
failed (money back on the charge), canceled, requires_action; each step's events."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from sim.sim_kit import ASYNC_DELAY_S, Receiver, event_types, pay, wait_until
from stripe_sim import SimServer, SimServerError
from stripe_sim.config import async_delay_from_env


def refund_status(client: stripe.StripeClient, refund_id: str) -> str:
    return str(client.v1.refunds.retrieve(refund_id).status)


def delivered_types(receiver: Receiver, object_id: str) -> list[str]:
    return [e["type"] for e in receiver.delivered() if e["data"]["object"]["id"] == object_id]


def test_pending_refund_then_succeeded_after_the_delay(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    pi = pay(client, "pm_card_pendingRefund", amount=3000)
    started = time.monotonic()

    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})

    assert (refund.status, refund.pending_reason) == ("pending", "processing")
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    assert charge.amount_refunded == 1000  # a pending refund already counts
    [job] = hooked.later()
    assert job["object"] == refund.id and job["due_in_s"] > 0
    wait_until(lambda: refund_status(client, refund.id) == "succeeded", 10, "refund settles")
    assert time.monotonic() - started >= ASYNC_DELAY_S * 0.9
    settled = client.v1.refunds.retrieve(refund.id)
    assert settled.pending_reason is None
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 1000
    assert event_types(client, types=["refund.*", "charge.refund*"]) == [
        "refund.created",
        "charge.refunded",
        "refund.updated",
        "charge.refund.updated",
    ]
    updated = client.v1.events.list({"type": "refund.updated"}).data[0]
    assert updated.data.object["status"] == "succeeded"
    assert updated.data.previous_attributes is not None
    assert updated.data.previous_attributes["status"] == "pending"
    wait_until(lambda: "charge.refund.updated" in delivered_types(receiver, refund.id), 10)
    assert delivered_types(receiver, refund.id) == [
        "refund.created",
        "refund.updated",
        "charge.refund.updated",
    ]


def test_refund_fail_card_succeeds_then_fails_and_the_money_comes_back(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = pay(client, "pm_card_refundFail", amount=2000)

    refund = client.v1.refunds.create({"payment_intent": pi.id})

    assert refund.status == "succeeded"
    charge_id = str(pi.latest_charge)
    assert client.v1.charges.retrieve(charge_id).amount_refunded == 2000
    wait_until(lambda: refund_status(client, refund.id) == "failed", 10, "refund fails")
    failed = client.v1.refunds.retrieve(refund.id, {"expand": ["failure_balance_transaction"]})
    assert failed.failure_reason == "expired_or_canceled_card"
    txn: Any = failed.failure_balance_transaction
    assert (txn.type, txn.reporting_category, txn.amount, txn.source) == (
        "refund_failure",
        "refund_failure",
        2000,
        refund.id,
    )
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert event_types(client, types=["refund.*", "charge.refund*"]) == [
        "refund.created",
        "charge.refunded",
        "refund.updated",
        "refund.failed",
        "charge.refund.updated",
    ]
    # The charge can be refunded again (and this one fails later too).
    again = client.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
    assert again.status == "succeeded"
    assert sim.run_later() == 1
    assert refund_status(client, again.id) == "failed"


def test_run_later_settles_at_once_and_reset_forgets(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    first = client.v1.refunds.create({"payment_intent": pay(client, "pm_card_pendingRefund").id})
    assert sim.run_later() == 1
    assert refund_status(client, first.id) == "succeeded"

    client.v1.refunds.create({"payment_intent": pay(client, "pm_card_pendingRefund").id})
    assert len(sim.later()) == 1
    sim.reset()
    assert sim.later() == []


def test_cancel_through_the_api_only_for_requires_action(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = pay(client, "pm_card_visa", amount=3000)
    done = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    with pytest.raises(stripe.InvalidRequestError, match="requires_action"):
        client.v1.refunds.cancel(done.id)

    waiting = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    with pytest.raises(SimServerError, match="cannot go from succeeded to requires_action"):
        sim.transition_refund(waiting.id, "requires_action")


def test_requires_action_then_canceled_or_expired_gives_the_money_back(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = pay(client, "pm_card_pendingRefund", amount=3000)
    one = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    two = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    sim.transition_refund(one.id, "requires_action")
    sim.transition_refund(two.id, "requires_action")

    canceled = client.v1.refunds.cancel(one.id)
    expired = client.v1.test_helpers.refunds.expire(two.id)

    assert (canceled.status, expired.status) == ("canceled", "canceled")
    assert client.v1.charges.retrieve(str(pi.latest_charge)).amount_refunded == 0
    sim.run_later()  # the pending refunds' own later step no longer applies
    assert refund_status(client, one.id) == "canceled"


def test_dashboard_cancel_of_a_card_refund(client: stripe.StripeClient, sim: SimServer) -> None:
    pi = pay(client, "pm_card_pendingRefund", amount=2000)
    refund = client.v1.refunds.create({"payment_intent": pi.id})

    canceled = sim.transition_refund(refund.id, "canceled")

    assert canceled["status"] == "canceled"
    assert client.v1.charges.retrieve(str(pi.latest_charge)).amount_refunded == 0
    assert event_types(client, types=["refund.updated", "charge.refund.updated"]) == [
        "refund.updated",
        "charge.refund.updated",
    ]
    with pytest.raises(SimServerError, match="cannot go from canceled"):
        sim.transition_refund(refund.id, "succeeded")


def test_async_delay_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_SIM_ASYNC_DELAY_S", raising=False)
    assert async_delay_from_env() == 2.0
    monkeypatch.setenv("STRIPE_SIM_ASYNC_DELAY_S", "0.25")
    assert async_delay_from_env() == 0.25
    monkeypatch.setenv("STRIPE_SIM_ASYNC_DELAY_S", "soon")
    with pytest.raises(ValueError, match="STRIPE_SIM_ASYNC_DELAY_S"):
        async_delay_from_env()
