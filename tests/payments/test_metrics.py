"""/metrics after a purchase and a reply: the counters moved by exactly what happened."""

from __future__ import annotations

import re

import pytest

from payments.kit import PayEnv

pytestmark = pytest.mark.anyio


def parse(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def metrics(env: PayEnv) -> dict[str, float]:
    r = await env.http.get("/metrics")
    assert r.status_code == 200
    return parse(r.text)


async def test_counters_move_after_a_purchase_and_a_reply(env: PayEnv) -> None:
    user = await env.user()
    before = await metrics(env)
    start = await env.balance(user)
    await env.buy(user, "starter")
    await env.wait_balance(user, start + 100)
    env.settle()
    chat = (await env.http.post("/api/chats", json={}, headers=user["headers"])).json()
    r = await env.http.post(f"/api/chats/{chat['id']}/generate", json={"content": "hi"},
                            headers=user["headers"])
    assert r.status_code == 200, r.text
    after = await metrics(env)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert delta("tokenbank_purchases_total") == 1
    assert delta("tokenbank_tokens_purchased_total") == 100
    assert delta("tokenbank_replies_charged_total") == 1
    assert delta("tokenbank_tokens_spent_total") == 1
    handled = 'tokenbank_webhook_events_total{outcome="handled",type="payment_intent.succeeded"}'
    assert delta(handled) == 1
    latency = [k for k in after if k.startswith("tokenbank_request_duration_seconds_count")
               and 'route="/api/chats/{chat_id}/generate"' in k]
    assert latency, "generate latency is recorded under its route template"
    assert not any(re.search(r'route="/api/chats/\d+', k) for k in after)
