"""Disputes as Stripe's test cards make them: chargebacks with Stripe's balance
transactions, inquiries that move no money, escalation, several disputes on one
charge, partial disputes, appeals and ``prevented`` (sim-only controls)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sim.sim_kit import event_types, pay, wait_until
from stripe_sim import SimServer, SimServerError


def only_dispute(client: stripe.StripeClient, pi: stripe.PaymentIntent) -> stripe.Dispute:
    [dispute] = client.v1.disputes.list({"payment_intent": pi.id}).data
    return dispute


def dispute_status(client: stripe.StripeClient, dispute_id: str) -> str:
    return str(client.v1.disputes.retrieve(dispute_id).status)


def test_chargeback_balance_transactions_as_stripe_records_them(
    client: stripe.StripeClient,
) -> None:
    pi = pay(client, "pm_card_createDispute", amount=4200)
    dispute = only_dispute(client, pi)

    [withdrawal] = dispute.balance_transactions
    assert (withdrawal.type, withdrawal.reporting_category, withdrawal.source) == (
        "adjustment",
        "dispute",
        dispute.id,
    )
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net) == (-4200, 1500, -5700)
    assert withdrawal.description == f"Chargeback withdrawal for {pi.latest_charge}"
    assert [(f.amount, f.description, f.type) for f in withdrawal.fee_details] == [
        (1500, "Dispute fee", "stripe_fee")
    ]
    assert dispute.payment_method_details is not None
    assert dispute.payment_method_details.card is not None
    assert dispute.payment_method_details.card.case_type == "chargeback"
    assert (dispute.reason, dispute.is_charge_refundable) == ("fraudulent", False)

    won = client.v1.disputes.update(
        dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    reinstated = won.balance_transactions[-1]
    assert (reinstated.reporting_category, reinstated.source, reinstated.amount) == (
        "dispute_reversal",
        dispute.id,
        4200,
    )
    assert reinstated.description == f"Chargeback reversal for {pi.latest_charge}"
    listed = client.v1.balance_transactions.list({"source": dispute.id}).data
    assert sorted(t.amount for t in listed) == [-4200, 4200]


def test_product_not_received_card(client: stripe.StripeClient) -> None:
    dispute = only_dispute(client, pay(client, "pm_card_createDisputeProductNotReceived"))

    assert (dispute.reason, dispute.status, dispute.network_reason_code) == (
        "product_not_received",
        "needs_response",
        "13.1",
    )
    assert [t.amount for t in dispute.balance_transactions] == [-2000]


def test_inquiry_moves_no_money_and_closes_later(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = pay(client, "pm_card_createDisputeInquiry", amount=3000)
    inquiry = only_dispute(client, pi)

    assert (inquiry.status, inquiry.balance_transactions, inquiry.is_charge_refundable) == (
        "warning_needs_response",
        [],
        True,
    )
    assert inquiry.payment_method_details is not None
    assert inquiry.payment_method_details.card is not None
    assert inquiry.payment_method_details.card.case_type == "inquiry"
    assert client.v1.charges.retrieve(str(pi.latest_charge)).disputed is True

    answered = client.v1.disputes.update(
        inquiry.id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )

    assert answered.status == "warning_under_review"
    wait_until(lambda: dispute_status(client, inquiry.id) == "warning_closed", 10, "closes")
    assert client.v1.disputes.retrieve(inquiry.id).balance_transactions == []
    assert client.v1.balance_transactions.list({"source": inquiry.id}).data == []
    assert event_types(client, type="charge.dispute.*") == [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
    ]
    # An inquiry does not stop a refund.
    assert client.v1.refunds.create({"payment_intent": pi.id}).status == "succeeded"


def test_escalated_inquiry_becomes_a_chargeback(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = pay(client, "pm_card_createDisputeInquiry", amount=3000)
    inquiry = only_dispute(client, pi)

    client.v1.disputes.update(
        inquiry.id, {"evidence": {"uncategorized_text": "escalate_inquiry_evidence"}}
    )
    assert sim.run_later() == 1

    chargeback = client.v1.disputes.retrieve(inquiry.id)
    assert chargeback.status == "needs_response"
    assert [t.amount for t in chargeback.balance_transactions] == [-3000]
    assert event_types(client, type="charge.dispute.*") == [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.updated",
        "charge.dispute.funds_withdrawn",
    ]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create({"payment_intent": pi.id})
    assert refused.value.code == "charge_disputed"


def test_accepting_an_inquiry_closes_it(client: stripe.StripeClient) -> None:
    inquiry = only_dispute(client, pay(client, "pm_card_createDisputeInquiry"))
    assert client.v1.disputes.close(inquiry.id).status == "warning_closed"


def test_multiple_disputes_card_opens_two_that_never_exceed_the_charge(
    client: stripe.StripeClient,
) -> None:
    pi = pay(client, "pm_card_createMultipleDisputes", amount=2001)

    found = client.v1.disputes.list({"charge": str(pi.latest_charge)}).data

    assert len(found) == 2
    assert sum(d.amount for d in found) == 2001
    assert all(d.status == "needs_response" for d in found)
    withdrawn = [t.amount for d in found for t in d.balance_transactions]
    assert sorted(withdrawn) == sorted(-d.amount for d in found)
    assert len(client.v1.disputes.list({"payment_intent": pi.id}).data) == 2
    won = client.v1.disputes.update(
        found[0].id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    assert won.status == "won"
    assert dispute_status(client, found[1].id) == "needs_response"  # the other stays open


def test_partial_dispute_by_control(client: stripe.StripeClient, sim: SimServer) -> None:
    pi = pay(client, "pm_card_visa", amount=2000)

    opened = sim.open_dispute(str(pi.latest_charge), amount=700, reason="product_unacceptable")

    dispute = client.v1.disputes.retrieve(opened["id"])
    assert (dispute.amount, dispute.status) == (700, "needs_response")
    assert [t.amount for t in dispute.balance_transactions] == [-700]
    with pytest.raises(SimServerError, match="between 1 and"):
        sim.open_dispute(str(pi.latest_charge), amount=2001)


def test_appeal_of_a_lost_chargeback_then_won(client: stripe.StripeClient, sim: SimServer) -> None:
    dispute = only_dispute(client, pay(client, "pm_card_createDispute", amount=2500))
    client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "losing_evidence"}})
    assert dispute_status(client, dispute.id) == "lost"

    appealed: Any = sim.appeal_dispute(dispute.id)
    assert appealed["status"] == "appeal_needs_response"
    assert [t["amount"] for t in appealed["balance_transactions"]] == [-2500]  # still withdrawn
    answered = client.v1.disputes.update(
        dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )

    assert answered.status == "won"
    assert [t.amount for t in answered.balance_transactions] == [-2500, 2500]
    statuses = [
        e.data.object["status"]
        for e in reversed(client.v1.events.list({"type": "charge.dispute.*", "limit": 20}).data)
    ]
    assert statuses[-4:] == ["appeal_needs_response", "appeal_under_review", "won", "won"]


def test_prevented_dispute_moves_no_money(client: stripe.StripeClient, sim: SimServer) -> None:
    pi = pay(client, "pm_card_visa")

    prevented = sim.open_dispute(str(pi.latest_charge), status="prevented")

    assert (prevented["status"], prevented["balance_transactions"]) == ("prevented", [])
    with pytest.raises(stripe.InvalidRequestError, match="already closed"):
        client.v1.disputes.close(prevented["id"])


def test_a_pending_refund_fails_when_the_inquiry_becomes_a_chargeback(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = pay(client, "pm_card_pendingRefund", amount=3000)
    inquiry = sim.open_dispute(str(pi.latest_charge), inquiry=True)
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    assert refund.status == "pending"  # an inquiry does not stop a refund

    sim.close_dispute(inquiry["id"], "escalate")

    failed = client.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == (
        "failed",
        "charge_for_pending_refund_disputed",
    )
    assert client.v1.charges.retrieve(str(pi.latest_charge)).amount_refunded == 0
    sim.run_later()  # the refund's own "succeeds later" no longer applies
    assert client.v1.refunds.retrieve(refund.id).status == "failed"
