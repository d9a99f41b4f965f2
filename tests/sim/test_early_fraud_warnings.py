"""Early fraud warnings: Stripe's warning test card, list/retrieve, ``actionable``."""

from __future__ import annotations

import stripe

from sim.sim_kit import Receiver, event_types, pay, wait_until
from stripe_sim import SimServer


def test_warning_card_creates_an_actionable_warning_and_its_event(
    client: stripe.StripeClient, hooked: SimServer, receiver: Receiver
) -> None:
    pi = pay(client, "pm_card_createIssuerFraudRecord", amount=1500)
    other = pay(client, "pm_card_visa")

    [warning] = client.v1.radar.early_fraud_warnings.list({"payment_intent": pi.id}).data

    assert pi.status == "succeeded"
    assert (warning.object, warning.charge, warning.payment_intent) == (
        "radar.early_fraud_warning",
        pi.latest_charge,
        pi.id,
    )
    assert warning.actionable is True
    assert warning.id.startswith("issfr_")
    assert client.v1.radar.early_fraud_warnings.retrieve(warning.id).id == warning.id
    by_charge = client.v1.radar.early_fraud_warnings.list({"charge": str(pi.latest_charge)})
    assert [w.id for w in by_charge.data] == [warning.id]
    assert client.v1.radar.early_fraud_warnings.list({"payment_intent": other.id}).data == []
    assert "radar.early_fraud_warning.created" in event_types(client)
    wait_until(
        lambda: any(e["type"] == "radar.early_fraud_warning.created" for e in receiver.delivered()),
        10,
        "the webhook",
    )


def test_full_refund_makes_the_warning_not_actionable(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createIssuerFraudRecord", amount=1500)
    client.v1.refunds.create({"payment_intent": pi.id, "amount": 500})
    [warning] = client.v1.radar.early_fraud_warnings.list({"payment_intent": pi.id}).data
    assert warning.actionable is True  # a partial refund leaves it actionable

    client.v1.refunds.create({"payment_intent": pi.id, "reason": "fraudulent"})

    assert client.v1.radar.early_fraud_warnings.retrieve(warning.id).actionable is False
    updated = client.v1.events.list({"type": "radar.early_fraud_warning.updated"}).data
    assert [e.data.object["actionable"] for e in updated] == [False]


def test_expand_the_warning_charge(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createIssuerFraudRecord")
    [warning] = client.v1.radar.early_fraud_warnings.list(
        {"payment_intent": pi.id, "expand": ["data.charge"]}
    ).data
    assert isinstance(warning.charge, stripe.Charge)
    assert warning.charge.amount == 2000
