"""SEPA Direct Debit with Stripe's test IBANs: ``processing`` first, then succeeded or
failed some time later, each step with its events."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sim.sim_kit import ASYNC_DELAY_S, event_types, wait_until
from stripe_sim import SimServer

MANDATE = {
    "customer_acceptance": {
        "type": "online",
        "online": {"ip_address": "127.0.0.1", "user_agent": "test"},
    }
}


def debit(client: stripe.StripeClient, pm: str, **extra: Any) -> stripe.PaymentIntent:
    pi = client.v1.payment_intents.create(
        {
            "amount": 1500,
            "currency": "eur",
            "payment_method_types": ["card", "sepa_debit"],
            "metadata": {"user_id": "7"},
        }
    )
    params: dict[str, Any] = {"payment_method": pm, "mandate_data": MANDATE, **extra}
    return client.v1.payment_intents.confirm(pi.id, params)  # type: ignore[arg-type]


def intent_status(client: stripe.StripeClient, pi_id: str) -> str:
    return str(client.v1.payment_intents.retrieve(pi_id).status)


def test_debit_is_processing_then_succeeds(client: stripe.StripeClient) -> None:
    pi = debit(client, "pm_success_de")

    assert pi.status == "processing"
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    assert (charge.status, charge.paid, charge.balance_transaction) == ("pending", False, None)
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.type == "sepa_debit"
    wait_until(lambda: intent_status(client, pi.id) == "succeeded", 10, "the debit settles")
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.status, charge.paid) == ("succeeded", True)
    assert charge.balance_transaction is not None
    assert client.v1.payment_intents.retrieve(pi.id).amount_received == 1500
    assert event_types(client)[-4:] == [
        "charge.pending",
        "payment_intent.processing",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


def test_failed_debit_returns_the_intent_to_requires_payment_method(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = debit(client, "pm_insufficientFunds_at")
    assert pi.status == "processing"

    assert sim.run_later() == 1

    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error is not None
    assert failed.last_payment_error.code == "insufficient_funds"
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    assert (charge.status, charge.failure_code) == ("failed", "insufficient_funds")
    assert event_types(client)[-2:] == ["charge.failed", "payment_intent.payment_failed"]
    assert client.v1.balance_transactions.list({"source": charge.id}).data == []


def test_generic_failure_and_the_delayed_ibans(client: stripe.StripeClient, sim: SimServer) -> None:
    failed = debit(client, "pm_failed_de")
    delayed = debit(client, "pm_successDelayed_de")

    due = {job["object"]: job["due_in_s"] for job in sim.later()}
    assert due[delayed.id] > ASYNC_DELAY_S  # Stripe: "at least three minutes" later
    wait_until(lambda: intent_status(client, failed.id) == "requires_payment_method", 10)
    assert intent_status(client, delayed.id) == "processing"
    wait_until(lambda: intent_status(client, delayed.id) == "succeeded", 10)


def test_debit_needs_eur_a_mandate_and_an_intent_that_allows_it(
    client: stripe.StripeClient,
) -> None:
    card_only = client.v1.payment_intents.create(
        {"amount": 1500, "currency": "eur", "payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as not_allowed:
        client.v1.payment_intents.confirm(
            card_only.id,
            {"payment_method": "pm_success_de", "mandate_data": MANDATE},  # type: ignore[typeddict-item]
        )
    assert not_allowed.value.code == "payment_intent_incompatible_payment_method"

    usd = client.v1.payment_intents.create(
        {"amount": 1500, "currency": "usd", "payment_method_types": ["sepa_debit"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as wrong_currency:
        client.v1.payment_intents.confirm(
            usd.id,
            {"payment_method": "pm_success_de", "mandate_data": MANDATE},  # type: ignore[typeddict-item]
        )
    assert wrong_currency.value.param == "currency"

    eur = client.v1.payment_intents.create(
        {"amount": 1500, "currency": "eur", "payment_method_types": ["sepa_debit"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as no_mandate:
        client.v1.payment_intents.confirm(eur.id, {"payment_method": "pm_success_de"})
    assert no_mandate.value.param == "mandate_data"
    assert intent_status(client, eur.id) == "requires_payment_method"


def test_sepa_payment_method_from_an_iban(client: stripe.StripeClient) -> None:
    billing = {"name": "Jenny Rosen", "email": "jenny@example.com"}
    pm = client.v1.payment_methods.create(
        {
            "type": "sepa_debit",
            "sepa_debit": {"iban": "DE89 3704 0044 0532 0130 00"},
            "billing_details": billing,
        }
    )
    assert pm.type == "sepa_debit"
    assert pm.sepa_debit is not None
    assert (pm.sepa_debit.last4, pm.sepa_debit.country) == ("3000", "DE")
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.payment_methods.create(
            {
                "type": "sepa_debit",
                "sepa_debit": {"iban": "DE89370400440532013001"},
                "billing_details": billing,
            }
        )
    assert bad.value.code == "invalid_bank_account_iban"
    with pytest.raises(stripe.InvalidRequestError) as nameless:
        client.v1.payment_methods.create(
            {"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}}
        )
    assert nameless.value.param == "billing_details[name]"
    assert debit(client, pm.id).status == "processing"


def ach(client: stripe.StripeClient, pm: str) -> stripe.PaymentIntent:
    pi = client.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "payment_method_types": ["card", "us_bank_account"]}
    )
    return client.v1.payment_intents.confirm(
        pi.id,
        {"payment_method": pm, "mandate_data": MANDATE},  # type: ignore[typeddict-item]
    )


def test_ach_debit_processing_then_succeeded(client: stripe.StripeClient) -> None:
    pi = ach(client, "pm_usBankAccount_success")

    assert pi.status == "processing"
    charge = client.v1.charges.retrieve(str(pi.latest_charge))
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.type == "us_bank_account"
    wait_until(lambda: intent_status(client, pi.id) == "succeeded", 10, "the debit settles")
    assert client.v1.charges.retrieve(charge.id).status == "succeeded"


@pytest.mark.parametrize(
    ("pm", "code"),
    [
        ("pm_usBankAccount_accountClosed", "account_closed"),
        ("pm_usBankAccount_insufficientFunds", "insufficient_funds"),
        ("pm_usBankAccount_debitNotAuthorized", "debit_not_authorized"),
    ],
)
def test_ach_debit_failures(
    client: stripe.StripeClient, sim: SimServer, pm: str, code: str
) -> None:
    pi = ach(client, pm)
    assert pi.status == "processing"

    sim.run_later()

    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error is not None
    assert failed.last_payment_error.code == code
    assert client.v1.charges.retrieve(str(pi.latest_charge)).failure_code == code


def test_ach_is_usd_only_and_needs_the_test_payment_methods(client: stripe.StripeClient) -> None:
    eur = client.v1.payment_intents.create(
        {"amount": 2000, "currency": "eur", "payment_method_types": ["us_bank_account"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as wrong:
        client.v1.payment_intents.confirm(
            eur.id,
            {"payment_method": "pm_usBankAccount_success", "mandate_data": MANDATE},  # type: ignore[typeddict-item]
        )
    assert wrong.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError, match="pm_usBankAccount_success"):
        client.v1.payment_methods.create(
            {
                "type": "us_bank_account",
                "us_bank_account": {
                    "account_number": "000123456789",
                    "routing_number": "110000000",
                },
            }
        )


def test_a_debit_refund_is_pending_then_succeeds(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pi = debit(client, "pm_success_at")
    sim.run_later()
    assert intent_status(client, pi.id) == "succeeded"

    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 500})

    assert refund.status == "pending"
    assert sim.run_later() == 1
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
