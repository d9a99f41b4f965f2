"""Every test card end to end: browser confirm at Stripe → webhook → balance."""

from __future__ import annotations

import pytest
import stripe

from payments.kit import DECLINES, PayEnv

pytestmark = pytest.mark.anyio

STANDARD_TOKENS = 500


@pytest.mark.parametrize("pm", ["pm_card_visa", "pm_card_mastercard"])
async def test_a_paid_card_credits_the_tier_once(env: PayEnv, pm: str) -> None:
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "standard")
    assert (intent["amount"], intent["currency"], intent["tokens"]) == (2000, "usd", 500)

    pi = await env.pay(intent, pm)

    assert pi.status == "succeeded"
    await env.wait_balance(user, start + STANDARD_TOKENS, "the webhook's credit")
    env.settle()
    assert await env.balance(user) == start + STANDARD_TOKENS
    shown = await env.payment(user, intent["payment_intent_id"])
    assert (shown["status"], shown["tokens_credited"]) == ("succeeded", 500)
    assert await env.purchase_entries(intent["payment_intent_id"]) == [("purchase", 500)]


@pytest.mark.parametrize("pm", sorted(DECLINES))
async def test_a_declined_card_credits_nothing_and_the_intent_takes_another_card(
    env: PayEnv, pm: str
) -> None:
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "starter")

    with pytest.raises(stripe.CardError) as declined:
        await env.pay(intent, pm)

    assert (declined.value.error.decline_code or declined.value.code) == DECLINES[pm]
    env.settle()
    shown = await env.payment(user, intent["payment_intent_id"])
    assert (shown["status"], shown["last_error_code"]) == ("failed", DECLINES[pm])
    assert await env.balance(user) == start
    # The same intent, another card: paid once, credited once.
    await env.pay(intent, "pm_card_visa")
    await env.wait_balance(user, start + 100, "credit after the retry with a good card")


@pytest.mark.parametrize("pm", ["pm_card_authenticationRequired",
                                "pm_card_authenticationRequiredOnSetup"])
async def test_3d_secure_completed_credits_once(env: PayEnv, pm: str) -> None:
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "premium")

    pi = await env.pay(intent, pm)
    assert pi.status == "requires_action"
    env.settle()
    shown = await env.payment(user, intent["payment_intent_id"])
    assert (shown["status"], shown["tokens_credited"]) == ("requires_action", 0)
    assert await env.balance(user) == start

    env.sim.authenticate(intent["payment_intent_id"], "complete")

    await env.wait_balance(user, start + 1500, "credit after 3D Secure")
    env.settle()
    assert await env.purchase_entries(intent["payment_intent_id"]) == [("purchase", 1500)]


async def test_3d_secure_failed_credits_nothing(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "starter")
    assert (await env.pay(intent, "pm_card_authenticationRequired")).status == "requires_action"

    env.sim.authenticate(intent["payment_intent_id"], "fail")
    env.settle()

    shown = await env.payment(user, intent["payment_intent_id"])
    assert shown["status"] == "failed"
    assert shown["last_error_code"] == "payment_intent_authentication_failure"
    assert await env.balance(user) == start
    assert await env.purchase_entries(intent["payment_intent_id"]) == []


@pytest.mark.parametrize("outcome", ["won", "lost"])
async def test_a_disputed_payment_is_clawed_back_and_given_back_only_when_won(
    env: PayEnv, outcome: str
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard", "pm_card_createDispute")

    # Credited, then the dispute's withdrawn funds take the tokens back.
    env.settle()
    assert await env.balance(user) == start
    assert await env.purchase_entries(pi_id) == [("purchase", 500), ("purchase_reversal", -500)]
    shown = await env.payment(user, pi_id)
    assert (shown["dispute_status"], shown["reversed_tokens"]) == ("funds_withdrawn", 500)

    dispute = (await env.raw_stripe("GET", "/v1/disputes", params={"payment_intent": pi_id}))
    env.sim.close_dispute(dispute["data"][0]["id"], outcome)
    env.settle()

    shown = await env.payment(user, pi_id)
    assert shown["dispute_status"] == outcome
    if outcome == "won":
        assert await env.balance(user) == start + 500
        assert shown["reversed_tokens"] == 0
        assert [t for t, _ in await env.purchase_entries(pi_id)] == [
            "purchase", "purchase_reversal", "purchase_reinstatement"]
    else:
        assert await env.balance(user) == start
        assert shown["reversed_tokens"] == 500
