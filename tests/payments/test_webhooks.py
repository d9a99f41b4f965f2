"""The webhook endpoint and its inbox: signatures, duplicates, forgeries, outages, the
worker's retries and dead letters, events that can never be applied."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from payments.kit import PayEnv, dead_url, payment_settings, sign
from tokenbank.app import create_app
from tokenbank.auth.models import User
from tokenbank.config import Settings
from tokenbank.payments.flows import WebhookWorker
from tokenbank.payments.models import Payment, WebhookEvent
from tokenbank.payments.stripe_client import StripeGateway

from support import wait_for

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def other_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second app process on the same database, with different settings."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as c:
            yield c


async def inbox(env: PayEnv) -> list[WebhookEvent]:
    async with env.db.transaction() as session:
        return list((await session.execute(select(WebhookEvent))).scalars())


async def paid_without_webhooks(env: PayEnv, tier: str = "standard") -> tuple[dict[str, Any], str]:
    """A user and an intent paid at Stripe whose webhooks never arrived."""
    env.sim.set_faults(drop_all=True)
    user = await env.user()
    pi_id = await env.buy(user, tier)
    env.settle()
    env.sim.set_faults()
    return user, pi_id


async def succeeded_event(env: PayEnv, pi_id: str) -> dict[str, Any]:
    (event,) = await env.events(pi_id, "payment_intent.succeeded")
    return event


async def test_the_same_event_five_times_at_once_credits_once(env: PayEnv) -> None:
    user, pi_id = await paid_without_webhooks(env)
    start = await env.balance(user)
    event = await succeeded_event(env, pi_id)

    answers = await asyncio.gather(*(env.post_event(event) for _ in range(5)))

    assert [r.status_code for r in answers] == [200] * 5
    assert sorted(r.json()["status"] for r in answers) == ["duplicate"] * 4 + ["received"]
    row = await env.wait_event(event["id"], "handled")
    assert row.attempts == 1
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]


async def test_stripe_duplicating_and_shuffling_every_event_credits_once(env: PayEnv) -> None:
    env.sim.set_faults(duplicates=5, shuffle=True, shuffle_window=6, seed=7)
    user = await env.user()
    start = await env.balance(user)
    pi_id = await env.buy(user, "standard")
    await env.refund(pi_id, 500)  # later events shuffled in with the earlier ones

    await env.wait_balance(user, start + 500 - 125, "credit and the partial reversal")
    env.settle()
    delivered = [d for d in env.sim.deliveries() if d["outcome"] == "delivered"]
    assert len(delivered) >= 5 * 4  # created, charge.succeeded, succeeded, refund events...
    assert await env.balance(user) == start + 375
    assert await env.purchase_entries(pi_id) == [("purchase", 500), ("purchase_reversal", -125)]


async def test_a_forged_but_signed_success_for_an_unpaid_intent_credits_nothing(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "premium")
    env.settle()
    forged = {
        "id": "evt_forged_success",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": intent["payment_intent_id"], "object": "payment_intent", "status": "succeeded",
            "amount": 5000, "amount_received": 5000, "currency": "usd",
            "metadata": {"user_id": str(user["user"]["id"]), "tier": "premium",
                         "tokens": "1500", "type": "token_purchase"},
        }},
    }

    r = await env.post_event(forged)

    assert (r.status_code, r.json()["status"]) == (200, "received"), r.text
    await env.wait_event("evt_forged_success", "handled")
    assert await env.balance(user) == start
    shown = await env.payment(user, intent["payment_intent_id"])
    assert (shown["status"], shown["tokens_credited"]) == ("requires_payment_method", 0)


async def test_a_bad_signature_is_refused_with_400_and_changes_nothing(env: PayEnv) -> None:
    user, pi_id = await paid_without_webhooks(env)
    start = await env.balance(user)
    body = json.dumps(await succeeded_event(env, pi_id)).encode()
    now = int(time.time())
    tolerance = env.settings.stripe_webhook_tolerance_s
    cases = {
        "missing": {},
        "wrong_secret": {"Stripe-Signature": sign(body, "whsec_someone_else")},
        "tampered": {"Stripe-Signature": sign(body.replace(b"succeeded", b"succeeded "))},
        "too_old": {"Stripe-Signature": sign(body, timestamp=now - tolerance - 10)},
        "in_the_future": {"Stripe-Signature": sign(body, timestamp=now + tolerance + 60)},
        "garbage": {"Stripe-Signature": "t=abc,v1=,,=="},
        "empty": {"Stripe-Signature": ""},
    }

    for case, headers in cases.items():
        r = await env.http.post("/api/payment/webhook", content=body, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_signature"), case

    assert await inbox(env) == []
    assert await env.balance(user) == start
    # The same body, properly signed, is creditable: the refusals were the signature's doing.
    assert (await env.post_event(body)).status_code == 200
    await env.wait_balance(user, start + 500)


async def test_a_signed_body_that_is_not_an_event_is_refused_with_400(env: PayEnv) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"id": "evt_1"}', b'{"id": 1, "type": "x"}',
                 b"\xff\xfe"):
        signature = sign(body.decode("utf-8", "replace").encode())

        r = await env.http.post(
            "/api/payment/webhook", content=body, headers={"Stripe-Signature": signature}
        )

        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_payload"), body
    assert await inbox(env) == []


async def test_without_a_webhook_secret_every_event_is_refused(
    env: PayEnv, db_url: str
) -> None:
    user, pi_id = await paid_without_webhooks(env)
    start = await env.balance(user)
    event = await succeeded_event(env, pi_id)
    body = json.dumps(event).encode()
    unset = payment_settings(db_url, env.sim, stripe_webhook_secret=None)

    async with other_app(unset) as other:
        r = await other.post(
            "/api/payment/webhook", content=body, headers={"Stripe-Signature": sign(body)}
        )

    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_signature"
    assert await inbox(env) == []
    assert await env.balance(user) == start


async def test_unknown_event_types_are_acknowledged_and_ignored(env: PayEnv) -> None:
    event = {"id": "evt_customer_1", "object": "event", "type": "customer.created",
             "data": {"object": {"id": "cus_1", "object": "customer"}}}

    first, again = await env.post_event(event), await env.post_event(event)

    assert (first.status_code, first.json()["status"]) == (200, "ignored")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    (row,) = await inbox(env)
    assert (row.id, row.status) == ("evt_customer_1", "ignored")


async def test_an_intent_that_is_not_a_token_purchase_is_ignored(env: PayEnv) -> None:
    pi = await env.server.v1.payment_intents.create_async({
        "amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
        "return_url": "http://127.0.0.1/done", "metadata": {"order": "shop-42"},
    })
    assert pi.status == "succeeded"
    env.settle()
    await env.wait_inbox_done()

    async with env.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Payment))).scalar() == 0
    rows = [e for e in await inbox(env) if e.stripe_payment_intent_id == pi.id]
    assert rows and all(e.status == "ignored" for e in rows)


NO_WORKER = pytest.mark.parametrize("pay_settings", [{"webhook_worker": False}], indirect=True)


def worker_for(env: PayEnv, **overrides: Any) -> WebhookWorker:
    """A webhook worker of our own (the app under test runs none: ``NO_WORKER``)."""
    settings = env.settings.model_copy(update=overrides)
    return WebhookWorker(env.db, StripeGateway(settings), settings)


@NO_WORKER
async def test_a_stripe_outage_still_acknowledges_and_the_worker_retries_after_a_backoff(
    env: PayEnv,
) -> None:
    user, pi_id = await paid_without_webhooks(env)
    start = await env.balance(user)
    event = await succeeded_event(env, pi_id)

    r = await env.post_event(event)  # no Stripe call in the request: Stripe being away is fine

    assert (r.status_code, r.json()["status"]) == (200, "received")
    outage = worker_for(env, stripe_api_base=dead_url(), webhook_backoff_base_s=30,
                        webhook_backoff_max_s=60)
    assert await outage.drain() == 1
    row = await env.inbox_row(event["id"])
    assert row is not None
    assert (row.status, row.attempts) == ("failed", 1)
    assert "stripe_unavailable" in (row.last_error or "")
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - row.received_at > timedelta(seconds=25)
    assert await env.balance(user) == start

    healthy = worker_for(env)
    assert await healthy.drain() == 0  # not due before its backoff ends
    async with env.db.transaction() as session:  # ...which we skip rather than wait out
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == event["id"])
            .values(next_attempt_at=row.received_at)
        )
    assert await healthy.drain() == 1

    row = await env.inbox_row(event["id"])
    assert row is not None and (row.status, row.attempts, row.last_error) == ("handled", 2, None)
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]
    await asyncio.gather(outage.gateway.aclose(), healthy.gateway.aclose())


@NO_WORKER
async def test_an_event_that_keeps_failing_becomes_a_dead_letter_an_operator_processes_again(
    env: PayEnv,
) -> None:
    user, pi_id = await paid_without_webhooks(env)
    start = await env.balance(user)
    event = await succeeded_event(env, pi_id)
    assert (await env.post_event(event)).status_code == 200
    outage = worker_for(env, stripe_api_base=dead_url(), webhook_max_attempts=3,
                        webhook_backoff_base_s=0.05, webhook_backoff_max_s=0.05)

    async def dead() -> bool:
        await outage.drain()
        row = await env.inbox_row(event["id"])
        return row is not None and row.status == "dead"

    await wait_for(dead, timeout_s=10, what="three failed attempts")
    row = await env.inbox_row(event["id"])
    assert row is not None and (row.attempts, row.next_attempt_at) == (3, None)
    healthy = worker_for(env)
    assert await healthy.drain() == 0  # a dead letter waits for an operator
    assert await env.balance(user) == start

    admin = await env.user()
    async with env.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == admin["user"]["id"]).values(is_admin=True)
        )
    listed = await env.http.get("/api/admin/webhooks?status=dead", headers=admin["headers"])
    assert [(e["id"], e["attempts"]) for e in listed.json()] == [(event["id"], 3)]
    again = await env.http.post(
        f"/api/admin/webhooks/{event['id']}/process", headers=admin["headers"]
    )

    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["payment_intent_id"]) == ("handled", pi_id)
    assert await env.balance(user) == start + 500
    row = await env.inbox_row(event["id"])
    assert row is not None and (row.status, row.attempts) == ("handled", 4)
    await asyncio.gather(outage.gateway.aclose(), healthy.gateway.aclose())


async def test_an_event_that_can_never_be_applied_is_acknowledged_and_unprocessable_not_retried(
    env: PayEnv,
) -> None:
    user = await env.user()
    start = await env.balance(user)
    refused_id = {"id": "evt_bad_id", "object": "event", "type": "payment_intent.succeeded",
                  "data": {"object": {"id": "pi_../x", "object": "payment_intent"}}}
    missing = {"id": "evt_missing", "object": "event", "type": "charge.refunded",
               "data": {"object": {"id": "ch_nothere", "object": "charge",
                                   "payment_intent": "pi_doesnotexist"}}}

    first = await env.post_event(refused_id)
    second = await env.post_event(missing)

    assert (first.status_code, first.json()["status"]) == (200, "unprocessable")
    assert (second.status_code, second.json()["status"]) == (200, "received")
    row = await env.wait_event("evt_missing", "unprocessable")
    assert row.attempts == 1 and "payment_not_found" in (row.last_error or "")
    row = await env.wait_event("evt_bad_id", "unprocessable")
    assert row.attempts == 0 and "refuses" in (row.last_error or "")
    again = await env.post_event(missing)  # Stripe delivering it again changes nothing
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert (await env.wait_event("evt_missing", "unprocessable")).attempts == 1
    assert await env.balance(user) == start


async def test_a_failing_endpoint_is_retried_by_stripe_until_it_credits(env: PayEnv) -> None:
    env.sim.set_faults(fail_first_n=2)
    user = await env.user()
    start = await env.balance(user)

    pi_id = await env.buy(user, "starter")

    await env.wait_balance(user, start + 100, "credit after Stripe's retries")
    env.settle()
    assert await env.purchase_entries(pi_id) == [("purchase", 100)]



@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": 50}, "amount_mismatch"),
        ({"metadata": {"tokens": "150000"}}, "metadata_mismatch"),
        ({"metadata": {"user_id": "1"}}, "metadata_mismatch"),
    ],
)
async def test_an_intent_changed_behind_our_back_is_paid_but_never_credited(
    env: PayEnv, change: dict[str, Any], code: str
) -> None:
    victim = await env.user()  # user 1: someone whose account a tampered intent names
    user = await env.user()
    start, victim_start = await env.balance(user), await env.balance(victim)
    intent = await env.create(user, "premium")
    await env.server.v1.payment_intents.update_async(intent["payment_intent_id"], change)

    await env.pay(intent, "pm_card_visa")
    env.settle()
    confirmed = await env.confirm(user, intent["payment_intent_id"])

    assert confirmed.json()["credited"] is False
    shown = await env.payment(user, intent["payment_intent_id"])
    assert (shown["status"], shown["tokens_credited"], shown["last_error_code"]) == (
        "succeeded", 0, code)
    assert await env.balance(user) == start
    assert await env.balance(victim) == victim_start
    assert await env.purchase_entries(intent["payment_intent_id"]) == []


async def test_with_stripe_slowed_to_2_s_a_call_webhooks_are_acknowledged_before_any_sync_and_all_applied(  # noqa: E501
    env: PayEnv,
) -> None:
    env.sim.set_faults(drop_all=True)  # this test delivers the events itself
    user = await env.user()
    start = await env.balance(user)
    bought = [await env.buy(user, "starter") for _ in range(2)]
    await env.refund(bought[0], 200)  # 40 of its 100 tokens back
    env.settle()
    env.sim.set_faults()
    events = [e for pi in bought for e in await env.events(pi)]
    assert {"payment_intent.succeeded", "charge.refunded"} <= {e["type"] for e in events}

    env.sim.set_api_faults(latency_s=2.0)  # every Stripe call now takes at least 2 s
    try:
        answers = await asyncio.gather(*(env.post_event(e) for e in events))
        # Read at once: had any answer waited for its event's sync (one Stripe call at
        # least, so 2 s), its event would already be applied here.
        rows = [await env.inbox_row(e["id"]) for e in events]
        balance_at_answer = await env.balance(user)

        assert [(r.status_code, r.json()["status"]) for r in answers] == [
            (200, "received")] * len(events)
        assert all(row is not None and row.status in ("received", "processing") for row in rows)
        assert balance_at_answer == start
        await env.wait_balance(user, start + 200 - 40, "every event applied at 2 s a call")
        await env.wait_inbox_done(timeout_s=120)
    finally:
        env.sim.set_api_faults()
    rows = [await env.inbox_row(e["id"]) for e in events]
    assert all(row is not None and row.status in ("handled", "ignored") for row in rows)
    assert sorted(await env.purchase_entries(bought[0])) == sorted(
        [("purchase", 100), ("purchase_reversal", -40)])
    assert await env.purchase_entries(bought[1]) == [("purchase", 100)]


@NO_WORKER
async def test_an_event_whose_workers_keep_dying_is_given_up_not_retried_forever(
    env: PayEnv,
) -> None:
    user, pi_id = await paid_without_webhooks(env)
    start = await env.balance(user)
    event = await succeeded_event(env, pi_id)
    assert (await env.post_event(event)).status_code == 200
    worker = worker_for(env, webhook_max_attempts=3)
    # What three workers killed while applying it leave behind: its claim ran out three times.
    async with env.db.transaction() as session:
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id == event["id"]).values(
                status="processing", attempts=3, claim_token="dead-worker",
                claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )

    assert await worker.drain() == 1

    row = await env.inbox_row(event["id"])
    assert row is not None and (row.status, row.attempts) == ("dead", 4)
    assert "worker stopped" in (row.last_error or "")
    assert await env.balance(user) == start
    assert await worker.drain() == 0
    await worker.gateway.aclose()
