"""No secret and no card data in the logs, whatever happens.

One ``tokenbank serve`` process with JSON logs: people sign up and sign in (and fail
to), present forged tokens, buy with card numbers typed into the local Stripe server's
PaymentMethod API, get declined, are refunded, chat with a card number in the message;
forged webhooks arrive. Then the whole log file is searched.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx
import pytest
import stripe

from reliability.cluster import (
    JWT_SECRET,
    PASSWORD,
    SECRET_KEY,
    WEBHOOK_SECRET,
    Person,
    StripeClients,
    app_env,
    fresh_database,
    register,
    start_sim,
)
from reliability.harness import AppProcess

pytestmark = pytest.mark.slow

CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


@dataclass
class Secrets:
    """What the scenario handled that must never reach a log line."""

    values: set[str]


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_no_key_secret_card_number_password_or_token_in_the_logs(level: str) -> None:
    with fresh_database("logs") as url:
        app = AppProcess({})
        sim = start_sim(f"{app.url}/api/payment/webhook")
        app.env |= app_env(url, sim, LOG_LEVEL=level, JSON_LOGS="true")
        try:
            app.start()
            secrets = asyncio.run(_handle_secrets(app, sim))
            sim.wait_webhooks_idle(60)
        finally:
            app.stop()
            sim.stop()
        log = app.log.read_text(errors="replace")
        app.remove_log()

    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    # The log did record the scenario (so an empty or wrong file cannot pass).
    assert any("webhook" in entry["msg"] for entry in lines)
    assert any(entry.get("level") == "warning" for entry in lines)
    leaked = sorted(s for s in secrets.values if s in log)
    assert leaked == []
    if level == "INFO":  # the production level: not even a redacted trace of one
        patterns = ["sk_test", "whsec_", "_secret_", CARD, DECLINED_CARD]
        assert [p for p in patterns if p in log] == []
    else:  # the SDK logs whole PaymentIntents at DEBUG: their client secrets were scrubbed
        assert "_secret_[redacted]" in log


async def _handle_secrets(app: AppProcess, sim: object) -> Secrets:
    from stripe_sim import SimServer

    assert isinstance(sim, SimServer)
    clients = StripeClients.for_sim(sim)
    seen: set[str] = {SECRET_KEY, WEBHOOK_SECRET, JWT_SECRET, PASSWORD, CARD, DECLINED_CARD}
    try:
        async with httpx.AsyncClient(base_url=app.url, timeout=60) as http:
            person = await register(http, app.url, "l")
            seen |= {person.token, person.token.rsplit(".", 1)[-1]}
            await _sign_in_and_fail(http, person)
            seen |= await _buy_with_typed_cards(http, clients, person)
            await _chat_with_a_card_number(http, person)
            await _forged_webhooks(http)
    finally:
        await clients.close()
    return Secrets(seen)


async def _sign_in_and_fail(http: httpx.AsyncClient, person: Person) -> None:
    ok = await http.post("/api/auth/login", json={"username": person.name, "password": PASSWORD})
    assert ok.status_code == 200
    wrong = await http.post("/api/auth/login",
                            json={"username": person.name, "password": PASSWORD + "x"})
    assert wrong.status_code == 401
    forged = person.token[:-4] + ("AAAA" if not person.token.endswith("AAAA") else "BBBB")
    for token in (forged, "not.a.jwt", person.token + "x"):
        r = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


async def _buy_with_typed_cards(
    http: httpx.AsyncClient, clients: StripeClients, person: Person
) -> set[str]:
    """A card number typed in the browser, a decline, a success, a confirm, a refund."""
    secrets: set[str] = set()
    r = await http.post("/api/payment/create-payment-intent", json={"tier": "standard"},
                        headers=person.headers | {"Idempotency-Key": "buy-with-a-typed-card"})
    assert r.status_code == 200, r.text
    intent = r.json()
    secrets.add(intent["client_secret"])
    declined = await _card(clients, DECLINED_CARD)
    with pytest.raises(stripe.CardError):
        await clients.pay(intent, declined)
    paid = await clients.pay(intent, await _card(clients, CARD))
    assert paid.status == "succeeded"
    c = await http.post("/api/payment/confirm-payment",
                        json={"payment_intent_id": intent["payment_intent_id"]},
                        headers=person.headers)
    assert (c.status_code, c.json()["tokens_added"]) == (200, 500)
    await clients.refund(intent["payment_intent_id"], 700)
    return secrets


async def _card(clients: StripeClients, number: str) -> str:
    method = await clients.browser.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031,
                                  "cvc": "123"}}
    )
    return str(method.id)


async def _chat_with_a_card_number(http: httpx.AsyncClient, person: Person) -> None:
    chat = await http.post("/api/chats", json={"title": "card"}, headers=person.headers)
    assert chat.status_code == 201
    r = await http.post(f"/api/chats/{chat.json()['id']}/generate",
                        json={"content": f"my card is {CARD} and my key is {SECRET_KEY}"},
                        headers=person.headers)
    assert r.status_code == 200, r.text


async def _forged_webhooks(http: httpx.AsyncClient) -> None:
    body = json.dumps({"id": "evt_forged", "object": "event", "type": "payment_intent.succeeded",
                       "data": {"object": {"id": "pi_forged", "object": "payment_intent"}}})
    for signature in ("t=1,v1=deadbeef", f"t=1,v1={WEBHOOK_SECRET}", ""):
        r = await http.post("/api/payment/webhook", content=body,
                            headers={"Stripe-Signature": signature})
        assert r.status_code == 400
