"""Refund and dispute lifecycles as Stripe runs them, end to end, to the exact token.

The app runs as in production, webhooks come from the local Stripe server, and each
lifecycle is driven by Stripe's own test cards through the official SDK. Stripe's "some
time later" steps are run explicitly (``sim.run_later()``): this module's server waits
far longer than any test on its own, so every intermediate state can be looked at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from payments.kit import PayEnv, sim_config
from stripe_sim import SimServer
from tokenbank.auth.models import User

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    # "Later" happens when a test says so.
    with SimServer(sim_config(async_delay_s=3600.0)) as server:
        yield server


async def charge_of(env: PayEnv, pi_id: str) -> str:
    pi = await env.server.v1.payment_intents.retrieve_async(pi_id)
    return str(pi.latest_charge)


async def disputes_of(env: PayEnv, pi_id: str) -> list[Any]:
    page = await env.server.v1.disputes.list_async({"payment_intent": pi_id})
    return sorted(page.data, key=lambda d: d.created)


async def refunds_of(env: PayEnv, pi_id: str) -> list[Any]:
    return list((await env.server.v1.refunds.list_async({"payment_intent": pi_id})).data)


async def later(env: PayEnv) -> None:
    """Stripe's "some time later" happens now; its webhooks are then all delivered."""
    assert env.sim.run_later() >= 1
    env.settle()


async def shown(env: PayEnv, user: dict[str, Any], pi_id: str) -> tuple[Any, ...]:
    p = await env.payment(user, pi_id)
    return p["reversed_tokens"], p["amount_refunded"], p["dispute_status"]


# --- refunds --------------------------------------------------------------------------


async def test_a_pending_refund_takes_the_tokens_at_once_and_its_success_changes_nothing(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard", "pm_card_pendingRefund")  # 500 tokens for $20
    await env.wait_balance(user, start + 500)

    await env.refund(pi_id, 1000)

    [refund] = await refunds_of(env, pi_id)
    assert refund.status == "pending"
    await env.wait_balance(user, start + 250, "half taken back while the refund is pending")
    env.settle()
    assert await shown(env, user, pi_id) == (250, 1000, None)

    await later(env)

    [refund] = await refunds_of(env, pi_id)
    assert refund.status == "succeeded"
    assert await env.balance(user) == start + 250
    assert await env.purchase_entries(pi_id) == [("purchase", 500), ("purchase_reversal", -250)]


async def test_a_refund_that_fails_later_gives_the_tokens_back_once(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter", "pm_card_refundFail")  # 100 tokens for $5
    await env.wait_balance(user, start + 100)
    await env.refund(pi_id)
    await env.wait_balance(user, start, "the refund taking everything back")
    env.settle()

    await later(env)  # the card refund fails days later: the money is ours again

    [refund] = await refunds_of(env, pi_id)
    assert refund.status == "failed"
    await env.wait_balance(user, start + 100, "the failed refund's tokens given back")
    # Every event again (Stripe's redeliveries) and a confirm: nothing moves twice.
    for event in await env.events(pi_id):
        env.sim.resend_event(event["id"])
    env.settle()
    assert (await env.confirm(user, pi_id)).status_code == 200
    assert await env.balance(user) == start + 100
    assert await shown(env, user, pi_id) == (0, 0, None)
    assert await env.purchase_entries(pi_id) == [
        ("purchase", 100), ("purchase_reversal", -100), ("purchase_reinstatement", 100)]


# --- disputes -------------------------------------------------------------------------


async def test_an_inquiry_that_closes_moves_nothing_and_ends_closed(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard", "pm_card_createDisputeInquiry")
    await env.wait_balance(user, start + 500)
    env.settle()
    assert await shown(env, user, pi_id) == (0, 0, "inquiry")

    [inquiry] = await disputes_of(env, pi_id)
    await env.server.v1.disputes.update_async(
        inquiry.id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    env.settle()
    await later(env)

    assert (await env.server.v1.disputes.retrieve_async(inquiry.id)).status == "warning_closed"
    assert await shown(env, user, pi_id) == (0, 0, "closed")
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]


async def test_a_chargeback_withdrawn_then_lost_keeps_the_tokens_taken(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "premium", "pm_card_createDisputeProductNotReceived")
    env.settle()
    assert await env.balance(user) == start
    assert await shown(env, user, pi_id) == (1500, 5000, "funds_withdrawn")

    [dispute] = await disputes_of(env, pi_id)
    await env.server.v1.disputes.close_async(dispute.id)  # accepted: lost
    env.settle()

    assert await shown(env, user, pi_id) == (1500, 5000, "lost")
    assert await env.balance(user) == start
    assert await env.purchase_entries(pi_id) == [("purchase", 1500), ("purchase_reversal", -1500)]


async def test_an_appealed_chargeback_keeps_the_tokens_until_it_is_won(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard", "pm_card_createDispute")
    env.settle()
    [dispute] = await disputes_of(env, pi_id)
    await env.server.v1.disputes.close_async(dispute.id)
    env.settle()

    env.sim.appeal_dispute(dispute.id)
    env.settle()

    assert (await env.server.v1.disputes.retrieve_async(dispute.id)).status == (
        "appeal_needs_response")
    assert await shown(env, user, pi_id) == (500, 2000, "funds_withdrawn")
    assert await env.balance(user) == start

    env.sim.close_dispute(dispute.id, "won")
    env.settle()

    assert await shown(env, user, pi_id) == (0, 0, "won")
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [
        ("purchase", 500), ("purchase_reversal", -500), ("purchase_reinstatement", 500)]


async def test_a_chargeback_won_with_evidence_gives_everything_back(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter", "pm_card_createDispute")
    env.settle()
    assert await env.balance(user) == start
    [dispute] = await disputes_of(env, pi_id)

    await env.server.v1.disputes.update_async(
        dispute.id, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    env.settle()

    assert await shown(env, user, pi_id) == (0, 0, "won")
    assert await env.balance(user) == start + 100


async def test_two_disputes_on_one_charge_each_count(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter", "pm_card_createMultipleDisputes")  # 100 for $5
    env.settle()
    first, second = await disputes_of(env, pi_id)
    assert (first.amount, second.amount) == (250, 250)
    assert await env.balance(user) == start
    assert await shown(env, user, pi_id) == (100, 500, "funds_withdrawn")

    env.sim.close_dispute(first.id, "won")
    env.settle()

    # One won, one still open with its funds withdrawn: half the tokens are back, and
    # the open one is what the payment shows.
    assert await shown(env, user, pi_id) == (50, 250, "funds_withdrawn")
    assert await env.balance(user) == start + 50

    env.sim.close_dispute(second.id, "lost")
    env.settle()

    assert await shown(env, user, pi_id) == (50, 250, "lost")
    assert await env.purchase_entries(pi_id) == [
        ("purchase", 100), ("purchase_reversal", -100), ("purchase_reinstatement", 50)]


async def test_a_closed_inquiry_does_not_hide_an_older_chargeback(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard")
    await env.wait_balance(user, start + 500)
    charge = await charge_of(env, pi_id)
    env.sim.open_dispute(charge, amount=1000)  # a chargeback for half
    inquiry = env.sim.open_dispute(charge, amount=2000, inquiry=True)  # then an inquiry
    env.sim.close_dispute(inquiry["id"], "warning_closed")
    env.settle()

    assert await shown(env, user, pi_id) == (250, 1000, "funds_withdrawn")
    assert await env.balance(user) == start + 250


@pytest.mark.parametrize(
    ("disputed_cents", "taken_tokens"),
    [(1, 1), (251, 51), (250, 50)],  # the rounding of partial refunds: up, never kept
)
async def test_a_partial_dispute_takes_back_its_share(
    env: PayEnv, disputed_cents: int, taken_tokens: int
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter")  # 100 tokens for $5
    await env.wait_balance(user, start + 100)

    env.sim.open_dispute(await charge_of(env, pi_id), amount=disputed_cents)
    env.settle()

    assert await shown(env, user, pi_id) == (taken_tokens, disputed_cents, "funds_withdrawn")
    assert await env.balance(user) == start + 100 - taken_tokens


# --- early fraud warnings ---------------------------------------------------------------


async def test_an_early_fraud_warning_refunds_the_charge_and_takes_the_tokens_back(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)

    pi_id = await env.buy(user, "standard", "pm_card_createIssuerFraudRecord")

    await env.wait_balance(user, start, "the warned purchase refunded")
    env.settle()
    [refund] = await refunds_of(env, pi_id)
    assert (refund.amount, refund.status, refund.reason) == (2000, "succeeded", "fraudulent")
    [warning] = (await env.server.v1.radar.early_fraud_warnings.list_async(
        {"payment_intent": pi_id})).data
    assert refund.metadata["early_fraud_warning"] == warning.id
    # The warning's event again: the refund is made once (idempotency key), nothing moves.
    for event in await env.events(type_="radar.early_fraud_warning.created"):
        late = dict(event, id=f"{event['id']}_again")
        assert (await env.post_event(late)).status_code == 200
    assert len(await refunds_of(env, pi_id)) == 1
    assert await shown(env, user, pi_id) == (500, 2000, None)
    assert await env.purchase_entries(pi_id) == [("purchase", 500), ("purchase_reversal", -500)]


# --- metadata edited after the credit ----------------------------------------------------


async def test_a_refund_after_the_metadata_was_edited_still_takes_the_tokens_back(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter")
    await env.wait_balance(user, start + 100)
    await env.server.v1.payment_intents.update_async(
        pi_id, {"metadata": {"user_id": "1", "tokens": "100000"}}
    )

    await env.refund(pi_id)

    await env.wait_balance(user, start, "the refund taken back despite the metadata")
    env.settle()
    # Operators see why Stripe's intent no longer matches the purchase.
    admin = await env.user()
    async with env.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == admin["user"]["id"]).values(is_admin=True))
    listed = await env.http.get("/api/admin/payments", headers=admin["headers"])
    [row] = [p for p in listed.json() if p["stripe_payment_intent_id"] == pi_id]
    assert (row["stripe_mismatch"], row["reversed_tokens"], row["tokens_credited"]) == (
        "metadata_mismatch", 100, 100)
    assert await env.purchase_entries(pi_id) == [("purchase", 100), ("purchase_reversal", -100)]


async def test_a_won_dispute_after_the_metadata_was_edited_gives_the_tokens_back(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter", "pm_card_createDispute")
    env.settle()
    assert await env.balance(user) == start
    await env.server.v1.payment_intents.update_async(pi_id, {"metadata": {"user_id": "1"}})
    [dispute] = await disputes_of(env, pi_id)

    env.sim.close_dispute(dispute.id, "won")

    await env.wait_balance(user, start + 100, "the won dispute's tokens back")
    env.settle()
    assert await shown(env, user, pi_id) == (0, 0, "won")


async def test_more_refunds_than_a_charge_carries_all_count(env: PayEnv) -> None:
    """A charge brings at most 10 refunds with it; the rest are listed, page by page."""
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter")  # 100 tokens for $5
    await env.wait_balance(user, start + 100)

    for _ in range(12):
        await env.refund(pi_id, 10)
    env.settle()

    assert len(await refunds_of(env, pi_id)) == 10  # Stripe's default page
    synced = (await env.sync(pi_id)).payment
    assert synced is not None and synced.reversed_tokens == 24  # 120 of 500
    assert await env.balance(user) == start + 76


async def test_a_refund_waiting_for_the_customer_counts_until_it_is_canceled(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard", "pm_card_pendingRefund")
    await env.wait_balance(user, start + 500)
    await env.refund(pi_id, 500)  # $5 of $20: 125 tokens
    [refund] = await refunds_of(env, pi_id)
    env.sim.transition_refund(refund.id, "requires_action")
    env.settle()
    assert await env.balance(user) == start + 375

    await env.server.v1.refunds.cancel_async(refund.id)  # the money never left
    env.settle()

    assert (await env.server.v1.refunds.retrieve_async(refund.id)).status == "canceled"
    assert await env.balance(user) == start + 500
    assert await shown(env, user, pi_id) == (0, 0, None)
    assert await env.purchase_entries(pi_id) == [
        ("purchase", 500), ("purchase_reversal", -125), ("purchase_reinstatement", 125)]


async def test_a_prevented_dispute_moves_nothing(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter")
    await env.wait_balance(user, start + 100)

    env.sim.open_dispute(await charge_of(env, pi_id), status="prevented")
    env.settle()

    assert await shown(env, user, pi_id) == (0, 0, "closed")
    assert await env.balance(user) == start + 100
    assert await env.purchase_entries(pi_id) == [("purchase", 100)]


async def test_many_syncs_at_once_after_a_refund_failed_give_the_tokens_back_once(
    env: PayEnv,
) -> None:
    env.sim.set_faults(drop_all=True)  # only confirm-payment syncs here
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard", "pm_card_refundFail")
    assert (await env.confirm(user, pi_id)).json()["tokens_added"] == 500
    await env.refund(pi_id)
    assert (await env.sync(pi_id)).reversed_tokens == 500
    assert env.sim.run_later() == 1  # the refund fails

    outcomes = await asyncio.gather(*(env.sync(pi_id) for _ in range(12)))

    assert {o.payment.reversed_tokens for o in outcomes if o.payment} == {0}
    assert sum(o.reinstated_tokens for o in outcomes) == 500
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [
        ("purchase", 500), ("purchase_reversal", -500), ("purchase_reinstatement", 500)]
