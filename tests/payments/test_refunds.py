"""Refunds and disputes take tokens back by exactly the money returned, whatever the order."""

from __future__ import annotations

import asyncio
import json

import pytest

from payments.kit import PayEnv
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InsufficientTokens

pytestmark = pytest.mark.anyio


async def test_partial_then_full_refund_repeated_and_out_of_order(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard")  # 500 tokens for $20
    await env.wait_balance(user, start + 500)

    await env.refund(pi_id, 500)  # $5 of $20: 125 tokens
    await env.wait_balance(user, start + 375, "the partial reversal")
    env.settle()
    early_events = await env.events(pi_id)
    await env.refund(pi_id)  # the rest
    await env.wait_balance(user, start, "the full reversal")
    env.settle()

    # Old events again: Stripe's redeliveries (same ids) and late copies (new ids),
    # newest first, racing nothing but each other.
    for event in reversed(early_events):
        env.sim.resend_event(event["id"])
        late = dict(event, id=f"{event['id']}_late")
        assert (await env.post_event(late)).status_code == 200
    env.settle()

    shown = await env.payment(user, pi_id)
    assert (shown["reversed_tokens"], shown["amount_refunded"]) == (500, 2000)
    assert await env.balance(user) == start
    assert await env.purchase_entries(pi_id) == [
        ("purchase", 500), ("purchase_reversal", -125), ("purchase_reversal", -375)]


async def test_events_arriving_newest_first_still_sum_to_the_truth(env: PayEnv) -> None:
    env.sim.set_faults(drop_all=True)
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard")
    await env.refund(pi_id, 500)
    env.settle()
    env.sim.set_faults()
    events = await env.events(pi_id)
    assert [e["type"] for e in events][-1] == "charge.refunded"

    for event in reversed(events):
        assert (await env.post_event(event)).status_code == 200
    env.settle()

    assert await env.balance(user) == start + 375
    assert await env.purchase_entries(pi_id) == [("purchase", 500), ("purchase_reversal", -125)]


@pytest.mark.parametrize(
    ("refunds_cents", "reversed_tokens"),
    [
        ([1], [1]),  # 1 cent of 100 tokens for $5 is 0.2 tokens: rounded up, never kept
        ([1, 249], [1, 50]),
        ([250, 1, 249], [50, 51, 100]),
    ],
)
async def test_partial_refunds_round_up_and_never_exceed_the_purchase(
    env: PayEnv, refunds_cents: list[int], reversed_tokens: list[int]
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter")

    for cents, expected in zip(refunds_cents, reversed_tokens, strict=True):
        await env.refund(pi_id, cents)
        await env.wait_balance(user, start + 100 - expected, f"{expected} tokens reversed")

    env.settle()
    assert (await env.payment(user, pi_id))["reversed_tokens"] == reversed_tokens[-1]


async def test_a_refund_after_spending_leaves_a_negative_balance_that_blocks_spending(
    env: PayEnv,
) -> None:
    user = await env.user()
    uid = user["user"]["id"]
    start = await env.balance(user)
    pi_id = await env.buy(user, "starter")
    await env.wait_balance(user, start + 100)
    async with env.db.transaction() as session:
        await ledger.spend(session, uid, start + 95, "AI replies", idempotency_key="spent-1")

    await env.refund(pi_id)

    await env.wait_balance(user, 5 - 100, "the reversal below zero")
    tokens = (await env.http.get("/api/payment/user/tokens", headers=user["headers"])).json()
    assert tokens["available"] == -95
    with pytest.raises(InsufficientTokens) as refused:
        async with env.db.transaction() as session:
            await ledger.spend(session, uid, 1, "one more reply", idempotency_key="spent-2")
    assert refused.value.status_code == 402
    # Topping up brings spending back.
    await env.buy(user, "starter")
    await env.wait_balance(user, 5)
    async with env.db.transaction() as session:
        await ledger.spend(session, uid, 5, "a reply", idempotency_key="spent-3")
    assert await env.balance(user) == 0


async def test_a_withdrawn_then_won_dispute_leaves_the_balance_where_it_was(env: PayEnv) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "premium", "pm_card_createDispute")
    env.settle()
    assert await env.balance(user) == start
    disputes = await env.raw_stripe("GET", "/v1/disputes", params={"payment_intent": pi_id})
    dispute_events = await env.events(pi_id, "charge.dispute.*")

    env.sim.close_dispute(disputes["data"][0]["id"], "won")
    env.settle()
    # The old "funds withdrawn" news arrives again, late: Stripe's current state wins.
    for event in dispute_events:
        late = json.loads(json.dumps(event))
        late["id"] = f"{event['id']}_again"
        assert (await env.post_event(late)).status_code == 200
    env.settle()

    assert await env.balance(user) == start + 1500
    shown = await env.payment(user, pi_id)
    assert (shown["dispute_status"], shown["reversed_tokens"]) == ("won", 0)


async def test_many_syncs_at_once_after_a_refund_reverse_it_once(env: PayEnv) -> None:
    env.sim.set_faults(drop_all=True)  # only the syncs below move anything here
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard")
    assert (await env.confirm(user, pi_id)).json()["tokens_added"] == 500
    await env.refund(pi_id, 1000)  # half

    # confirm-payment does not ask Stripe about a credited payment; the sync that
    # webhooks, reconciliation and replays share runs twelve times at once instead.
    outcomes = await asyncio.gather(*(env.sync(pi_id) for _ in range(12)))

    assert {o.payment.reversed_tokens for o in outcomes if o.payment} == {250}
    assert sum(o.reversed_tokens for o in outcomes) == 250
    assert await env.balance(user) == start + 250
    assert await env.purchase_entries(pi_id) == [("purchase", 500), ("purchase_reversal", -250)]
