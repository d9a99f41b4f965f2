"""``create_sim_app`` works as a plain ASGI app, even without lifespan events."""

from __future__ import annotations

import asyncio

import httpx
import stripe

from sim.sim_kit import WEBHOOK_SECRET, Receiver
from stripe_sim import SimConfig, create_sim_app


def test_asgi_app_without_lifespan_still_delivers_webhooks(receiver: Receiver) -> None:
    receiver.clear()
    app = create_sim_app(
        SimConfig(webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, api_key="sk_test_asgi")
    )

    async def scenario() -> tuple[int, bool]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            created = await http.post(
                "/v1/payment_intents",
                data={"amount": "1500", "currency": "usd", "payment_method_types[]": "card"},
                headers={"Authorization": "Bearer sk_test_asgi"},
            )
            idle = await http.post(
                "/_sim/webhooks/wait_idle",
                json={"timeout_s": 5},
                headers={"Authorization": "Bearer sk_test_asgi"},
            )
            return created.status_code, bool(idle.json()["idle"])

    status, idle = asyncio.run(scenario())

    assert (status, idle) == (200, True)
    [event] = receiver.delivered()
    assert event["type"] == "payment_intent.created"
    verified = stripe.Webhook.construct_event(
        receiver.received[0].body, receiver.received[0].headers["stripe-signature"], WEBHOOK_SECRET
    )
    assert verified.data.object["amount"] == 1500
