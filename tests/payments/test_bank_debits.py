"""Payments that settle later: a US bank debit is ``processing`` until the bank answers.

The browser confirms with a ``us_bank_account`` PaymentMethod (Stripe's test ones); nothing is credited while it is processing; when the bank confirms,
the ``payment_intent.succeeded`` webhook credits the tokens once; when it refuses, nothing
is credited and the payment shows as failed with the bank's reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from payments.kit import PayEnv

pytestmark = pytest.mark.anyio

# Stripe's test PaymentMethods for ACH Direct Debit (routing 110000000, accounts
# 000123456789 and 000222222227).
SUCCEEDS = "pm_usBankAccount_success"
INSUFFICIENT_FUNDS = "pm_usBankAccount_insufficientFunds"


async def pay_by_bank(env: PayEnv, intent: dict[str, Any], payment_method: str) -> str:
    """Confirm as the Payment Element does for a bank account: publishable key, client
    secret, the customer's acceptance of the mandate."""
    pi = await env.browser.v1.payment_intents.confirm_async(
        intent["payment_intent_id"],
        {
            "client_secret": intent["client_secret"],
            "payment_method": payment_method,
            "mandate_data": {"customer_acceptance": {"type": "online", "online": {
                "ip_address": "127.0.0.1", "user_agent": "tests"}}},
        },  # type: ignore[typeddict-item]
    )
    return str(pi.status)


async def test_a_bank_debit_is_credited_by_webhook_when_the_bank_confirms(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "standard")
    pi_id = intent["payment_intent_id"]

    assert await pay_by_bank(env, intent, SUCCEEDS) == "processing"
    confirmed = await env.confirm(user, pi_id)

    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert (body["status"], body["credited"], body["tokens_added"]) == ("processing", False, 0)
    env.settle()
    assert (await env.payment(user, pi_id))["status"] == "processing"
    assert await env.balance(user) == start

    assert env.sim.run_later() >= 1  # the bank confirms ("some time later")
    await env.wait_balance(user, start + 500, "the webhook's credit once the bank confirmed")
    env.settle()
    shown = await env.payment(user, pi_id)
    assert (shown["status"], shown["tokens_credited"]) == ("succeeded", 500)
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]
    again = (await env.confirm(user, pi_id)).json()
    assert (again["status"], again["credited"]) == ("succeeded", True)
    assert await env.balance(user) == start + 500


async def test_a_bank_debit_the_bank_refuses_credits_nothing_and_shows_failed(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "premium")
    pi_id = intent["payment_intent_id"]

    assert await pay_by_bank(env, intent, INSUFFICIENT_FUNDS) == "processing"
    env.settle()
    assert (await env.payment(user, pi_id))["status"] == "processing"

    assert env.sim.run_later() >= 1  # the bank refuses
    env.settle()
    confirmed = (await env.confirm(user, pi_id)).json()

    assert (confirmed["status"], confirmed["credited"]) == ("failed", False)
    shown = await env.payment(user, pi_id)
    assert (shown["status"], shown["tokens_credited"], shown["last_error_code"]) == (
        "failed", 0, "insufficient_funds")
    assert await env.balance(user) == start
    assert await env.purchase_entries(pi_id) == []
    types = [e["type"] for e in await env.events(pi_id)]
    assert "payment_intent.processing" in types and "payment_intent.payment_failed" in types
