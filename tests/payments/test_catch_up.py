"""Reconcile repairs lost webhooks of purchases of any age, from Stripe's events, once;
and an event that can never be applied is acknowledged and recorded, not retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from payments.kit import PayEnv
from tokenbank.payments.flows import reconcile
from tokenbank.payments.models import ReconcileCheckpoint
from tokenbank.payments.reconcile import EVENTS_CHECKPOINT, EVENTS_OVERLAP_S
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.types import utcnow

pytestmark = pytest.mark.anyio

DAY_S = 24 * 3600


@pytest.fixture
async def gateway(env: PayEnv) -> AsyncIterator[StripeGateway]:
    g = StripeGateway(env.settings)
    yield g
    await g.aclose()


async def test_a_60_day_old_purchase_refunded_and_disputed_while_webhooks_were_lost(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user = await env.user()
    start = await env.balance(user)
    env.sim.set_clock_offset(-60 * DAY_S)
    pi_id = await env.buy(user, "premium")  # 1500 tokens for $50, 60 days ago
    await env.wait_balance(user, start + 1500)
    env.settle()
    env.sim.set_clock_offset(0)
    env.sim.set_faults(drop_all=True)  # from now on every webhook is lost
    await env.refund(pi_id, 1000)  # $10 back: 300 tokens
    pi = await env.server.v1.payment_intents.retrieve_async(pi_id)
    env.sim.open_dispute(str(pi.latest_charge), amount=4000)  # the other $40: 1200
    env.settle()
    assert pi.created < (utcnow() - timedelta(days=59)).timestamp()
    assert await env.balance(user) == start + 1500  # nothing reached us

    first = await reconcile(env.db, gateway, env.settings)

    assert await env.balance(user) == start
    [change] = first.changes
    assert (change.payment_intent_id, change.reversed_tokens) == (pi_id, 1500)
    assert first.events_read >= 2
    assert await env.purchase_entries(pi_id) == [("purchase", 1500), ("purchase_reversal", -1500)]
    shown = await env.payment(user, pi_id)
    assert (shown["reversed_tokens"], shown["amount_refunded"], shown["dispute_status"]) == (
        1500, 5000, "funds_withdrawn")

    # Another process, later: the checkpoint comes from the database; nothing changes.
    other = StripeGateway(env.settings)
    try:
        second = await reconcile(env.db, other, env.settings)
    finally:
        await other.aclose()

    assert second.changes == [] and second.errors == []
    assert "nothing changed" in second.lines()[-1]
    assert first.events_since is not None and second.events_since is not None
    assert second.events_since > first.events_since + timedelta(days=29)
    assert await env.balance(user) == start
    assert await env.purchase_entries(pi_id) == [("purchase", 1500), ("purchase_reversal", -1500)]


async def test_the_checkpoint_only_moves_forward_and_a_gap_beyond_30_days_is_reported(
    env: PayEnv, gateway: StripeGateway
) -> None:
    first = await reconcile(env.db, gateway, env.settings)
    async with env.db.transaction() as session:
        stored = (await session.execute(select(ReconcileCheckpoint.created_s))).scalar_one()
    assert abs(stored - (first.since + timedelta(seconds=env.settings.reconcile_window_s)
                         ).timestamp() + EVENTS_OVERLAP_S) < 5
    assert not first.warnings

    # The app was down for 40 days: events from then are gone from Stripe.
    forty_days_ago = int((utcnow() - timedelta(days=40)).timestamp())
    async with env.db.transaction() as session:
        await session.execute(
            update(ReconcileCheckpoint)
            .where(ReconcileCheckpoint.name == EVENTS_CHECKPOINT)
            .values(created_s=forty_days_ago)
        )
    gap = await reconcile(env.db, gateway, env.settings)

    assert any("--since" in w for w in gap.warnings)
    assert any("warning:" in line and "30 days" in line for line in gap.lines())
    # Repaired with --since: no warning, and the checkpoint is current again.
    repaired = await reconcile(
        env.db, gateway, env.settings, since=utcnow() - timedelta(days=41)
    )
    assert not repaired.warnings
    async with env.db.transaction() as session:
        now_stored = (await session.execute(select(ReconcileCheckpoint.created_s))).scalar_one()
    assert now_stored > forty_days_ago + 39 * DAY_S


async def test_reconcile_finds_an_early_fraud_warning_whose_webhook_was_lost(
    env: PayEnv, gateway: StripeGateway
) -> None:
    env.sim.set_faults(drop_all=True)
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard", "pm_card_createIssuerFraudRecord")
    env.settle()
    assert await env.balance(user) == start

    first = await reconcile(env.db, gateway, env.settings)
    second = await reconcile(env.db, gateway, env.settings)

    [refund] = (await env.server.v1.refunds.list_async({"payment_intent": pi_id})).data
    assert (refund.amount, refund.reason) == (2000, "fraudulent")
    assert (first.credited_tokens, first.reversed_tokens) == (500, 500)
    assert second.changes == []
    assert await env.balance(user) == start
    assert await env.purchase_entries(pi_id) == [("purchase", 500), ("purchase_reversal", -500)]
