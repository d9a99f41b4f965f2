"""The operator's webhooks about purchases come from the one sync, in its transaction:
``purchase.succeeded`` once per credited purchase however many webhooks, confirmations and
syncs see it, ``purchase.refunded`` once per reversal — and each reaches a real receiver
signed, naming the customer."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from outbound.receiver import receiver
from payments.kit import PayEnv
from tokenbank.outbound import service
from tokenbank.outbound.flows import Deliverer
from tokenbank.outbound.models import WebhookDelivery
from tokenbank_client import verify_webhook

pytestmark = pytest.mark.anyio


async def _events(env: PayEnv) -> list[dict[str, object]]:
    async with env.db.transaction() as session:
        rows = (
            await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))
        ).scalars().all()
    return [json.loads(r.payload) for r in rows]


async def test_purchase_events_once_each_and_delivered(env: PayEnv) -> None:
    settings = env.settings.model_copy(update={"outbound_webhook_allow_local": True})
    with receiver(200) as r:
        async with env.db.transaction() as session:
            made = await service.create_endpoint(
                session, settings, url=r.url, events=["purchase.succeeded", "purchase.refunded"]
            )
        user = await env.user()
        pi_id = await env.buy(user, "standard")
        env.settle()
        assert (await env.confirm(user, pi_id)).status_code == 200
        await env.sync(pi_id)
        await env.sync(pi_id)
        env.settle()

        events = await _events(env)
        assert [e["type"] for e in events] == ["purchase.succeeded"]
        purchase = events[0]["data"]["object"]  # type: ignore[index]
        assert purchase["payment_intent_id"] == pi_id and purchase["status"] == "succeeded"
        assert purchase["tokens_credited"] == purchase["tokens"] > 0
        assert events[0]["data"]["customer"] == {  # type: ignore[index]
            "user_id": user["user"]["id"], "external_id": None,
        }

        await env.refund(pi_id, amount=100)
        env.settle()
        await env.sync(pi_id)
        await env.refund(pi_id)  # the rest
        env.settle()
        await env.sync(pi_id)
        events = await _events(env)
        assert [e["type"] for e in events] == [
            "purchase.succeeded", "purchase.refunded", "purchase.refunded",
        ]
        first, second = (e["data"]["object"] for e in events[1:])  # type: ignore[index]
        assert first["tokens_taken_back"] > 0
        assert first["tokens_taken_back"] + second["tokens_taken_back"] == purchase["tokens"]
        assert second["reversed_tokens"] == purchase["tokens"]

        deliverer = Deliverer(settings)
        try:
            assert await deliverer.drain(env.db) == 3
        finally:
            await deliverer.aclose()
        # Order is not promised (as with Stripe): each event carries its own state.
        assert sorted(r.event_ids()) == sorted(str(e["id"]) for e in events)
        for rec in r.received:
            verify_webhook(rec.body, rec.headers["tokenbank-signature"], made.secret)
