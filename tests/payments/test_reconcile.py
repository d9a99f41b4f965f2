"""Reconciliation catches up with Stripe when webhooks are lost, and changes nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from payments.kit import SECRET_KEY, PayEnv, dead_url
from tokenbank.app import create_app
from tokenbank.payments.errors import StripeUnavailable
from tokenbank.payments.flows import reconcile
from tokenbank.payments.reconcile import ReconcileReport
from tokenbank.payments.stripe_client import StripeGateway

pytestmark = pytest.mark.anyio


@pytest.fixture
async def gateway(env: PayEnv) -> AsyncIterator[StripeGateway]:
    g = StripeGateway(env.settings)
    yield g
    await g.aclose()


async def run(env: PayEnv, gateway: StripeGateway) -> ReconcileReport:
    return await reconcile(env.db, gateway, env.settings)


async def lost_purchase(env: PayEnv, tier: str = "standard") -> tuple[dict[str, Any], str, int]:
    """A purchase paid at Stripe whose webhooks were all lost."""
    env.sim.set_faults(drop_all=True)
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, tier)
    env.settle()
    assert await env.balance(user) == start
    return user, pi_id, start


async def test_reconcile_credits_a_payment_whose_webhooks_were_lost_once(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user, pi_id, start = await lost_purchase(env)
    unpaid = await env.create(user, "starter")  # still open: checked, nothing to do

    first = await run(env, gateway)

    assert await env.balance(user) == start + 500
    assert first.credited_tokens == 500
    (change,) = first.changes
    assert (change.payment_intent_id, change.status_before, change.status_after) == (
        pi_id, "requires_payment_method", "succeeded")
    assert first.checked == 2
    assert any("credited 500 tokens" in line for line in first.lines())

    second = await run(env, gateway)

    assert second.changes == [] and second.credited_tokens == 0
    assert "nothing changed" in second.lines()[-1]
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]
    assert (await env.payment(user, unpaid["payment_intent_id"]))["tokens_credited"] == 0


async def test_concurrent_reconciles_credit_once(env: PayEnv, gateway: StripeGateway) -> None:
    user, pi_id, start = await lost_purchase(env)
    others = [StripeGateway(env.settings) for _ in range(3)]
    try:
        reports = await asyncio.gather(*(run(env, g) for g in [gateway, *others]))
    finally:
        for g in others:
            await g.aclose()

    assert sum(r.credited_tokens for r in reports) == 500
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]


async def test_reconcile_takes_back_a_refund_whose_webhooks_were_lost(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "premium")
    await env.wait_balance(user, start + 1500)
    env.settle()
    env.sim.set_faults(drop_all=True)
    await env.refund(pi_id, 2500)  # half of $50
    env.settle()
    assert await env.balance(user) == start + 1500

    report = await run(env, gateway)

    assert report.reversed_tokens == 750
    assert await env.balance(user) == start + 750
    assert (await run(env, gateway)).changes == []


async def test_reconcile_adopts_only_genuine_purchases_it_has_no_row_for(
    env: PayEnv, gateway: StripeGateway
) -> None:
    user = await env.user()
    uid = str(user["user"]["id"])
    start = await env.balance(user)
    env.sim.set_faults(drop_all=True)

    async def paid(amount: int, metadata: dict[str, str]) -> str:
        pi = await env.server.v1.payment_intents.create_async({
            "amount": amount, "currency": "usd", "payment_method": "pm_card_visa",
            "confirm": True, "return_url": "http://127.0.0.1/done", "metadata": metadata,
        })
        assert pi.status == "succeeded"
        return pi.id

    purchase = {"user_id": uid, "tier": "starter", "tokens": "100", "type": "token_purchase"}
    genuine = await paid(500, purchase)
    underpaid = await paid(50, purchase)
    inflated = await paid(500, purchase | {"tokens": "100000"})
    nobody = await paid(500, purchase | {"user_id": "999999"})
    not_ours = await paid(500, {"order": "42"})
    env.settle()

    report = await run(env, gateway)

    assert await env.balance(user) == start + 100
    assert [c.payment_intent_id for c in report.changes] == [genuine]
    assert report.changes[0].adopted
    skipped = dict(report.skipped)
    assert set(skipped) == {underpaid, inflated, nobody}
    assert not_ours not in skipped
    shown = await env.payment(user, genuine)
    assert (shown["tier"], shown["tokens_credited"], shown["status"]) == (
        "starter", 100, "succeeded")
    assert (await run(env, gateway)).changes == []


async def test_the_app_reconciles_periodically_by_itself(env: PayEnv) -> None:
    user, pi_id, start = await lost_purchase(env, "starter")
    periodic = env.settings.model_copy(
        update={"background_jobs": True, "reconcile_interval_s": 0.2, "sweeper_interval_s": 0}
    )
    app = create_app(periodic)

    async with app.router.lifespan_context(app):
        await env.wait_balance(user, start + 100, "the periodic reconcile")

    assert await env.purchase_entries(pi_id) == [("purchase", 100)]


def tokenbank_cli(env: PayEnv, *args: str) -> subprocess.CompletedProcess[str]:
    variables = {
        "APP_ENV": "development",
        "DATABASE_URL": env.settings.database_url,
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_API_BASE": env.sim.url,
    }
    return subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", *args], env=os.environ | variables,
        capture_output=True, text=True, timeout=120, check=False,
    )


async def test_the_cli_reconciles_prints_what_changed_and_shows_a_payment(env: PayEnv) -> None:
    user, pi_id, start = await lost_purchase(env)

    first = await asyncio.to_thread(tokenbank_cli, env, "payments", "reconcile", "--since", "7d")
    second = await asyncio.to_thread(tokenbank_cli, env, "payments", "reconcile")
    shown = await asyncio.to_thread(tokenbank_cli, env, "payments", "show", pi_id)

    assert first.returncode == 0, first.stderr
    assert f"{pi_id} user {user['user']['id']} (standard)" in first.stdout
    assert "credited 500 tokens" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout and "credited 0 token(s)" in second.stdout
    assert await env.balance(user) == start + 500
    assert shown.returncode == 0, shown.stderr
    both = json.loads(shown.stdout)
    assert (both["ours"]["status"], both["ours"]["tokens_credited"]) == ("succeeded", 500)
    assert (both["stripe"]["status"], both["stripe"]["amount"]) == ("succeeded", 2000)
    assert (both["stripe"]["refunds"], both["stripe"]["returned_cents"]) == ([], 0)
    assert "client_secret" not in both["stripe"] and "_secret_" not in shown.stdout


async def test_reconcile_during_a_stripe_outage_fails_loudly_and_changes_nothing(
    env: PayEnv,
) -> None:
    user, pi_id, start = await lost_purchase(env)
    down = StripeGateway(env.settings.model_copy(update={"stripe_api_base": dead_url()}))
    try:
        with pytest.raises(StripeUnavailable):
            await reconcile(env.db, down, env.settings)
    finally:
        await down.aclose()

    assert await env.balance(user) == start

