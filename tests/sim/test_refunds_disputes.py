"""Refunds (partial, full, never beyond the charge) and disputes (won, lost)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from sim.sim_kit import event_types, pay
from stripe_sim import SimServer


def test_partial_then_full_refund_updates_the_charge(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa", amount=5000)

    first = client.v1.refunds.create({"payment_intent": pi.id, "amount": 2000})
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    assert (first.amount, first.status, first.charge) == (2000, "succeeded", charge.id)
    assert (charge.amount_refunded, charge.refunded) == (2000, False)

    rest = client.v1.refunds.create({"charge": charge.id, "reason": "requested_by_customer"})
    charge = client.v1.charges.retrieve(charge.id)
    assert rest.amount == 3000
    assert (charge.amount_refunded, charge.refunded) == (5000, True)
    assert "refunds" not in charge  # only when expanded, since API version 2022-11-15
    expanded = client.v1.charges.retrieve(charge.id, {"expand": ["refunds"]})
    assert expanded.refunds is not None
    assert [r.id for r in expanded.refunds.data] == [rest.id, first.id]
    assert [r.id for r in client.v1.refunds.list({"payment_intent": pi.id}).data] == [
        rest.id,
        first.id,
    ]
    assert event_types(client)[-4:] == [
        "refund.created",
        "charge.refunded",
        "refund.created",
        "charge.refunded",
    ]
    refunded_event = client.v1.events.list({"type": "charge.refunded", "limit": 1}).data[0]
    assert refunded_event.data.object["amount_refunded"] == 5000
    assert refunded_event.data.previous_attributes is not None
    assert refunded_event.data.previous_attributes["amount_refunded"] == 2000


def test_over_refund_is_refused(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa", amount=1000)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create({"payment_intent": pi.id, "amount": 1001})
    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")

    client.v1.refunds.create({"payment_intent": pi.id})
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create({"payment_intent": pi.id, "amount": 1})
    assert again.value.code == "charge_already_refunded"
    assert client.v1.charges.retrieve(str(pi.latest_charge)).amount_refunded == 1000


def test_unpaid_intent_cannot_be_refunded(client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd", "payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"payment_intent": pi.id})


def test_concurrent_refunds_never_exceed_the_charge(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_visa", amount=1000)

    def refund(_: int) -> int:
        try:
            return client.v1.refunds.create({"payment_intent": pi.id, "amount": 300}).amount
        except stripe.InvalidRequestError:
            return 0

    with ThreadPoolExecutor(max_workers=10) as pool:
        amounts = list(pool.map(refund, range(10)))

    assert sorted(a for a in amounts if a) == [300, 300, 300]
    assert client.v1.charges.retrieve(str(pi.latest_charge)).amount_refunded == 900


def test_dispute_card_opens_a_dispute_with_funds_withdrawn(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createDispute", amount=2500)
    assert pi.status == "succeeded"

    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    disputes = client.v1.disputes.list({"payment_intent": pi.id}).data
    assert charge.disputed is True
    assert len(disputes) == 1
    dispute = disputes[0]
    assert (dispute.status, dispute.amount, dispute.charge) == ("needs_response", 2500, charge.id)
    assert [t.amount for t in dispute.balance_transactions] == [-2500]
    assert event_types(client)[-3:] == [
        "payment_intent.succeeded",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create({"payment_intent": pi.id})
    assert caught.value.code == "charge_disputed"


def test_dispute_won_reinstates_funds(client: stripe.StripeClient, sim: SimServer) -> None:
    pi = pay(client, "pm_card_createDispute")
    dispute = client.v1.disputes.list({"payment_intent": pi.id}).data[0]

    closed = sim.close_dispute(dispute.id, "won")

    assert closed["status"] == "won"
    assert client.v1.disputes.retrieve(dispute.id).status == "won"
    assert event_types(client, type="charge.dispute.*") == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ]
    reinstated = client.v1.events.list({"type": "charge.dispute.funds_reinstated"}).data[0]
    assert [t["amount"] for t in reinstated.data.object["balance_transactions"]] == [-2000, 2000]
    with pytest.raises(Exception, match="already closed"):
        sim.close_dispute(dispute.id, "lost")


def test_dispute_lost_by_control_or_by_accepting(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    lost_by_bank = client.v1.disputes.list(
        {"payment_intent": pay(client, "pm_card_createDispute").id}
    ).data[0]
    accepted = client.v1.disputes.list(
        {"payment_intent": pay(client, "pm_card_createDispute").id}
    ).data[0]

    sim.close_dispute(lost_by_bank.id, "lost")
    closed = client.v1.disputes.close(accepted.id)

    assert closed.status == "lost"
    assert client.v1.disputes.retrieve(lost_by_bank.id).status == "lost"
    types = event_types(client, type="charge.dispute.*")
    assert types.count("charge.dispute.closed") == 2
    assert "charge.dispute.funds_reinstated" not in types


def test_winning_evidence_wins_as_in_stripe_test_mode(client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_createDispute")
    dispute = client.v1.disputes.list({"payment_intent": pi.id}).data[0]

    client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}})

    assert client.v1.disputes.retrieve(dispute.id).status == "won"
    assert event_types(client, type="charge.dispute.*")[-3:] == [
        "charge.dispute.updated",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ]
