"""What one party can do to another's money: nothing.

- Every route of the app is classified (public, the caller's own, someone's resource by
  id, admin); a route added without a class fails here until it is thought about.
- Another user's chat or payment, named by id, is 404 on every route that takes one —
  the same answer as for an id that does not exist — and nothing of theirs changes.
- Listing routes show the caller's own data only; admin routes need an admin (403), and
  every non-public route needs a token (401).
- Prices come from the server alone: a client's amount/price/tokens fields change nothing
  at Stripe.
- A signed webhook replayed later (same bytes, same signature) has no second effect.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import update

from payments.kit import (
    PUBLISHABLE_KEY,
    RETURN_URL,
    SECRET_KEY,
    WEBHOOK_SECRET,
    inbox_idle,
    payment_settings,
    sign,
)
from stripe_sim import SimConfig, SimServer
from tokenbank.app import create_app
from tokenbank.auth.models import User
from tokenbank.db import Database
from tokenbank.payments.stripe_client import AsyncHTTPXClient

from conftest import make_settings
from support import register_user, serve_app, wait_for

pytestmark = pytest.mark.anyio

Route = tuple[str, str]

PUBLIC: set[Route] = {
    ("GET", "/health"),
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("GET", "/api/payment/pricing-tiers"),
    ("GET", "/api/payment/config"),
    ("GET", "/api/payment/subscription-plans"),
    ("POST", "/api/payment/webhook"),  # authenticated by its Stripe signature instead
    ("POST", "/api/auth/refresh"),  # authenticated by the refresh cookie instead
    ("POST", "/api/auth/logout"),  # ends the session its cookie or token names, if any
    ("POST", "/api/auth/verify-email"),  # by the emailed single-use token
    ("POST", "/api/auth/password-reset"),  # answers the same whoever asks
    ("POST", "/api/auth/password-reset/complete"),  # by the emailed single-use token
}
#: About the caller only; no id of anyone's resource in the request.
OWN: set[Route] = {
    ("GET", "/api/auth/me"),
    ("PATCH", "/api/auth/me"),
    ("POST", "/api/auth/logout-all"),
    ("POST", "/api/auth/change-password"),
    ("POST", "/api/auth/verify-email/resend"),
    ("GET", "/api/payment/user/tokens"),
    ("GET", "/api/user/tokens"),
    ("GET", "/api/payment/user/transactions"),
    ("GET", "/api/payment/user/lots"),
    ("GET", "/api/payment/payments"),
    ("POST", "/api/payment/create-payment-intent"),
    ("POST", "/api/payment/create-subscription"),
    ("GET", "/api/payment/user/subscription"),
    ("POST", "/api/payment/update-subscription"),
    ("POST", "/api/payment/cancel-subscription"),
    ("POST", "/api/payment/resume-subscription"),
    ("POST", "/api/payment/customer-portal"),
    ("GET", "/api/chats/config"),
    ("GET", "/api/chats"),
    ("POST", "/api/chats"),
    ("POST", "/api/chats/quote"),  # a draft and a model: no chat yet
    ("POST", "/api/meter/{feature}/reserve"),
    ("POST", "/api/meter/{feature}/charge"),
    ("GET", "/api/payment/saved-payment-methods"),
    ("GET", "/api/payment/auto-topup"),
    ("PUT", "/api/payment/auto-topup"),
    ("GET", "/api/notifications"),
    ("POST", "/api/notifications/read"),
    ("GET", "/api/notifications/settings"),
    ("PUT", "/api/notifications/settings"),
    ("GET", "/api/models"),  # the price book, and the caller's own averages
}
#: Name a user's chat or payment: anyone else gets 404 (see ``_foreign_requests``).
OWNED_BY_ID: set[Route] = {
    ("GET", "/api/chats/{chat_id}/messages"),
    ("POST", "/api/chats/{chat_id}/generate"),
    ("POST", "/api/chats/{chat_id}/generate/stream"),
    ("PATCH", "/api/chats/{chat_id}"),
    ("POST", "/api/chats/{chat_id}/quote"),
    ("GET", "/api/payment/payments/{payment_intent_id}"),
    ("POST", "/api/payment/confirm-payment"),
    ("POST", "/api/chats/{chat_id}/messages/{message_id}/refund"),
    # The reservation's id is in the body; its feature is in the path.
    ("POST", "/api/meter/{feature}/commit"),
    ("POST", "/api/meter/{feature}/release"),
    ("DELETE", "/api/payment/saved-payment-methods/{payment_method_id}"),
}
ADMIN_PREFIX = "/api/admin/"
#: The service API and its widget and hosted-page routes: authenticated by an API key, a
#: customer token the host signed, or a signed payment link instead of a user's token,
#: each refused without one (401, its own code). Scopes, customers kept apart and holds of
#: others are tested route by route in ``tests/v1``.
BY_API_KEY: set[Route] = {
    ("PUT", "/api/v1/customers/{external_id}"),
    ("GET", "/api/v1/customers/{external_id}/balance"),
    ("GET", "/api/v1/customers/{external_id}/subscription"),
    ("GET", "/api/v1/customers/{external_id}/transactions"),
    ("POST", "/api/v1/customers/{external_id}/holds"),
    ("GET", "/api/v1/holds/{hold_id}"),
    ("POST", "/api/v1/holds/{hold_id}/commit"),
    ("POST", "/api/v1/holds/{hold_id}/release"),
    ("POST", "/api/v1/customers/{external_id}/charges"),
    ("POST", "/api/v1/customers/{external_id}/grants"),
    ("POST", "/api/v1/customers/{external_id}/purchases"),
}
BY_CUSTOMER_TOKEN: set[Route] = {
    ("GET", "/api/v1/widget/balance"),
    ("GET", "/api/v1/widget/transactions"),
    ("GET", "/api/v1/widget/tiers"),
    ("POST", "/api/v1/widget/purchases"),
    ("POST", "/api/v1/widget/confirm"),
}
BY_LINK: set[Route] = {
    ("GET", "/api/v1/checkout"),
    ("POST", "/api/v1/checkout/confirm"),
}
SERVICE_CODES = (
    [(r, "api_key_required") for r in sorted(BY_API_KEY)]
    + [(r, "invalid_widget_token") for r in sorted(BY_CUSTOMER_TOKEN)]
    + [(r, "invalid_checkout_token") for r in sorted(BY_LINK)]
)
SERVICE = BY_API_KEY | BY_CUSTOMER_TOKEN | BY_LINK


def _operations() -> set[Route]:
    schema = create_app(make_settings("sqlite:///unused.db")).openapi()
    return {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops}


def test_every_route_is_classified_for_these_checks() -> None:
    operations = _operations()
    admin = {op for op in operations if op[1].startswith(ADMIN_PREFIX)}
    unclassified = operations - PUBLIC - OWN - OWNED_BY_ID - SERVICE - admin
    assert unclassified == set(), "classify the new routes here and test them"
    assert (PUBLIC | OWN | OWNED_BY_ID | SERVICE) <= operations, (
        "a classified route no longer exists")
    assert len(admin) >= 6


# --- a world with two users, an admin, and the local Stripe server ------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    config = SimConfig(webhook_secret=WEBHOOK_SECRET, api_key=SECRET_KEY,
                       publishable_key=PUBLISHABLE_KEY, webhook_backoff_base_s=0.05,
                       webhook_backoff_max_s=0.5)
    with SimServer(config) as server:
        yield server


@dataclass
class World:
    http: httpx.AsyncClient
    sim: SimServer
    tolerance_s: int
    server: stripe.StripeClient
    browser: stripe.StripeClient
    alice: dict[str, Any]
    bob: dict[str, Any]
    admin: dict[str, Any]
    alice_chat: int
    alice_pi: str
    bob_chat: int
    bob_pi: str
    alice_reply: int = 0
    alice_hold: int = 0
    alice_card: str = ""

    async def get(self, path: str, who: dict[str, Any] | None, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=who["headers"] if who else {}, **kw)

    async def state_of_alice(self) -> tuple[Any, ...]:
        """Everything of Alice's that Bob might try to change."""
        messages = (await self.get(f"/api/chats/{self.alice_chat}/messages", self.alice)).json()
        tokens = (await self.get("/api/payment/user/tokens", self.alice)).json()
        payment = (await self.get(f"/api/payment/payments/{self.alice_pi}", self.alice)).json()
        cards = (await self.get("/api/payment/saved-payment-methods", self.alice)).json()
        return (len(messages), tokens["balance"], tokens["reserved"],
                payment["status"], payment["tokens_credited"], len(cards["items"]))

    async def balance(self, who: dict[str, Any]) -> int:
        return int((await self.get("/api/payment/user/tokens", who)).json()["balance"])

    async def buy(self, who: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post("/api/payment/create-payment-intent", json=body,
                                 headers=who["headers"])
        assert r.status_code == 200, r.text
        intent: dict[str, Any] = r.json()
        return intent

    async def pay(self, intent: dict[str, Any]) -> None:
        paid = await self.browser.v1.payment_intents.confirm_async(
            intent["payment_intent_id"],
            {"payment_method": "pm_card_visa", "client_secret": intent["client_secret"],
             "return_url": RETURN_URL},
        )
        assert paid.status == "succeeded"


@pytest.fixture
async def world(db_url: str, sim: SimServer) -> AsyncIterator[World]:
    sim.reset()
    settings = payment_settings(db_url, sim, price_book={"features": {"tts_clip": 1}})
    sdk_http = AsyncHTTPXClient(timeout=30)
    server, browser = (
        stripe.StripeClient(key, base_addresses={"api": sim.url}, http_client=sdk_http,
                            max_network_retries=0)
        for key in (SECRET_KEY, PUBLISHABLE_KEY)
    )
    db = Database(db_url, pool_size=2)
    try:
        with serve_app(settings) as base_url:
            sim.set_webhook(f"{base_url}/api/payment/webhook", WEBHOOK_SECRET)
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                alice, bob, admin = [await register_user(http, db=db) for _ in range(3)]
                async with db.transaction() as s:
                    await s.execute(update(User).where(User.id == admin["user"]["id"])
                                    .values(is_admin=True))
                w = World(http, sim, settings.stripe_webhook_tolerance_s, server, browser,
                          alice, bob, admin, 0, "", 0, "")
                w.alice_chat, w.bob_chat = await _chat(w, alice), await _chat(w, bob)
                r = await http.post(f"/api/chats/{w.alice_chat}/generate",
                                    json={"content": "Alice's question"}, headers=alice["headers"])
                assert r.status_code == 200, r.text
                w.alice_reply = int(r.json()["ai_message"]["id"])
                r = await http.post("/api/meter/tts_clip/reserve",
                                    json={"idempotency_key": "alice-clip"},
                                    headers=alice["headers"])
                assert r.status_code == 200, r.text
                w.alice_hold = int(r.json()["id"])
                intent = await w.buy(alice, {"tier": "starter", "save_card": True})
                await w.pay(intent)
                w.alice_pi = intent["payment_intent_id"]
                cards = (await w.get("/api/payment/saved-payment-methods", alice)).json()
                w.alice_card = cards["items"][0]["id"]
                w.bob_pi = (await w.buy(bob, {"tier": "standard"}))["payment_intent_id"]
                sim.wait_webhooks_idle(20)
                inbox_idle(db_url)
                yield w
            sim.set_webhook(None)
    finally:
        await db.dispose()
        await sdk_http.close_async()  # type: ignore[no-untyped-call]


async def _chat(w: World, who: dict[str, Any]) -> int:
    r = await w.http.post("/api/chats", json={"title": "private"}, headers=who["headers"])
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# --- someone else's resources ------------------------------------------------------------


def _foreign_requests(
    chat_id: int, pi_id: str, message_id: int, hold_id: int, card: str
) -> dict[Route, tuple[str, str, dict[str, Any]]]:
    """For each route that names a resource: the request, and the 404 code expected."""
    ask = {"json": {"content": "Bob asks in Alice's chat"}}
    hold = {"json": {"reservation_id": hold_id}}
    return {
        ("POST", "/api/chats/{chat_id}/messages/{message_id}/refund"):
            (f"/api/chats/{chat_id}/messages/{message_id}/refund", "message_not_found",
             {"json": {"reason": "wrong"}}),
        ("POST", "/api/meter/{feature}/commit"):
            ("/api/meter/tts_clip/commit", "reservation_not_found", hold),
        ("POST", "/api/meter/{feature}/release"):
            ("/api/meter/tts_clip/release", "reservation_not_found", hold),
        ("GET", "/api/chats/{chat_id}/messages"):
            (f"/api/chats/{chat_id}/messages", "chat_not_found", {}),
        ("POST", "/api/chats/{chat_id}/generate"):
            (f"/api/chats/{chat_id}/generate", "chat_not_found", ask),
        ("POST", "/api/chats/{chat_id}/generate/stream"):
            (f"/api/chats/{chat_id}/generate/stream", "chat_not_found", ask),
        ("PATCH", "/api/chats/{chat_id}"):
            (f"/api/chats/{chat_id}", "chat_not_found", {"json": {"title": "Bob's now"}}),
        ("POST", "/api/chats/{chat_id}/quote"):
            (f"/api/chats/{chat_id}/quote", "chat_not_found", ask),
        ("GET", "/api/payment/payments/{payment_intent_id}"):
            (f"/api/payment/payments/{pi_id}", "payment_not_found", {}),
        ("POST", "/api/payment/confirm-payment"):
            ("/api/payment/confirm-payment", "payment_not_found",
             {"json": {"payment_intent_id": pi_id}}),
        ("DELETE", "/api/payment/saved-payment-methods/{payment_method_id}"):
            (f"/api/payment/saved-payment-methods/{card}", "payment_method_not_found", {}),
    }


async def test_another_users_chat_or_payment_is_404_on_every_route_and_stays_untouched(
    world: World,
) -> None:
    w = world
    alice_before, bob_before = await w.state_of_alice(), await w.balance(w.bob)
    theirs = _foreign_requests(w.alice_chat, w.alice_pi, w.alice_reply, w.alice_hold,
                               w.alice_card)
    nobodys = _foreign_requests(10**9, "pi_doesnotexist", 10**9, 10**9, "pm_doesnotexist")
    assert set(theirs) == OWNED_BY_ID

    for route, (path, code, kwargs) in theirs.items():
        r = await w.http.request(route[0], path, headers=w.bob["headers"], **kwargs)
        unknown_path, _, unknown_kwargs = nobodys[route]
        unknown = await w.http.request(route[0], unknown_path, headers=w.bob["headers"],
                                       **unknown_kwargs)
        assert (r.status_code, r.json()["error"]["code"]) == (404, code), (route, r.text)
        # Indistinguishable from an id that does not exist.
        assert r.json() == unknown.json(), route

    assert await w.state_of_alice() == alice_before
    assert await w.balance(w.bob) == bob_before


async def test_listing_routes_show_the_callers_own_data_only(world: World) -> None:
    w = world
    bob_id = w.bob["user"]["id"]
    me = (await w.get("/api/auth/me", w.bob)).json()
    balances = [(await w.get(p, w.bob)).json() for p in
                ("/api/payment/user/tokens", "/api/user/tokens")]
    history = (await w.get("/api/payment/user/transactions", w.bob)).json()
    payments = (await w.get("/api/payment/payments", w.bob)).json()
    chats = (await w.get("/api/chats", w.bob)).json()
    cards = (await w.get("/api/payment/saved-payment-methods", w.bob)).json()
    notes = (await w.get("/api/notifications", w.bob)).json()

    assert cards == {"items": []} and notes["items"] == []
    assert me["id"] == bob_id and [b["user_id"] for b in balances] == [bob_id, bob_id]
    assert [e["transaction_type"] for e in history["items"]] == ["grant"]  # his sign-up bonus
    assert [p["payment_intent_id"] for p in payments["items"]] == [w.bob_pi]
    assert [c["id"] for c in chats] == [w.bob_chat]
    everything = json.dumps([me, balances, history, payments, chats])
    assert w.alice_pi not in everything and "Alice" not in everything


async def test_admin_routes_need_an_admin_and_every_private_route_a_token(world: World) -> None:
    w = world
    alice_before = await w.state_of_alice()
    admin_routes = sorted(op for op in _operations() if op[1].startswith(ADMIN_PREFIX))
    for method, template in admin_routes:
        path = template.format(user_id=w.alice["user"]["id"], event_id="evt_unknown",
                               key_id=1, endpoint_id=1, delivery_id=1)
        body = {"json": {"amount": 50, "reason": "Bob helps himself"}} if method == "POST" else {}
        as_bob = await w.http.request(method, path, headers=w.bob["headers"], **body)
        anonymous = await w.http.request(method, path, **body)
        assert (as_bob.status_code, as_bob.json()["error"]["code"]) == (403, "admin_required"), (
            method, path, as_bob.text)
        assert anonymous.status_code == 401, (method, path)
    assert await w.state_of_alice() == alice_before

    for method, template in admin_routes:  # and the refusals were about the role alone
        path = template.format(user_id=w.alice["user"]["id"], event_id="evt_unknown",
                               key_id=1, endpoint_id=1, delivery_id=1)
        body = {"json": {"amount": 50, "reason": "support"}} if method == "POST" else {}
        as_admin = await w.http.request(method, path, headers=w.admin["headers"], **body)
        assert as_admin.status_code not in (401, 403), (method, path, as_admin.text)

    private = sorted(_operations() - PUBLIC - SERVICE)
    for (method, template), code in SERVICE_CODES:
        path = template.format(external_id="x", hold_id=1)
        r = await w.http.request(method, path, json={})
        assert (r.status_code, r.json()["error"]["code"]) == (401, code), (method, path, r.text)
        # A user's token is none of these (widgets are not configured in this world).
        r = await w.http.request(method, path, json={}, headers=w.alice["headers"])
        assert (r.status_code, r.json()["error"]["code"]) in (
            (401, "invalid_api_key"), (401, code), (404, "widgets_not_configured")
        ), (method, path, r.text)
    for method, template in private:
        path = template.format(user_id=1, event_id="evt_x", chat_id=w.alice_chat,
                               payment_intent_id=w.alice_pi, key_id=1,
                               endpoint_id=1, delivery_id=1,
                               message_id=w.alice_reply, feature="tts_clip",
                               payment_method_id=w.alice_card)
        r = await w.http.request(method, path, json={})
        assert (r.status_code, r.json()["error"]["code"]) == (401, "not_authenticated"), (
            method, path, r.text)


# --- prices and replays -------------------------------------------------------------------


async def test_a_client_cannot_set_the_price_the_tokens_or_the_currency(world: World) -> None:
    w = world
    start = await w.balance(w.alice)
    intent = await w.buy(w.alice, {
        "tier": "starter", "amount": 1, "price": 1, "tokens": 999_999, "currency": "jpy",
        "metadata": {"tokens": "999999", "user_id": str(w.bob["user"]["id"])},
    })

    at_stripe = await w.server.v1.payment_intents.retrieve_async(intent["payment_intent_id"])
    assert (at_stripe.amount, at_stripe.currency) == (500, "usd")
    metadata = at_stripe.metadata.to_dict()
    metadata.pop("payment_id")  # our row's id, for recovery
    assert metadata == {"type": "token_purchase", "tier": "starter", "tokens": "100",
                        "user_id": str(w.alice["user"]["id"])}
    assert (intent["amount"], intent["currency"], intent["tokens"]) == (500, "usd", 100)
    await w.pay(intent)
    r = await w.http.post("/api/payment/confirm-payment", headers=w.alice["headers"],
                          json={"payment_intent_id": intent["payment_intent_id"]})
    assert (r.status_code, r.json()["tokens_added"]) == (200, 100)
    assert await w.balance(w.alice) == start + 100


async def test_a_signed_webhook_replayed_later_has_no_second_effect(world: World) -> None:
    w = world
    w.sim.set_faults(drop_all=True)  # this purchase's news reaches the app only by our hand
    intent = await w.buy(w.alice, {"tier": "standard"})
    await w.pay(intent)
    w.sim.wait_webhooks_idle(20)
    w.sim.set_faults()
    pi_id = intent["payment_intent_id"]
    start = await w.balance(w.alice)
    event = await _stripe_event(w, pi_id, "payment_intent.succeeded")
    body = json.dumps(event).encode()
    captured = {"Stripe-Signature": sign(body), "Content-Type": "application/json"}

    first = await w.http.post("/api/payment/webhook", content=body, headers=captured)
    again = await w.http.post("/api/payment/webhook", content=body, headers=captured)

    assert (first.status_code, first.json()["status"]) == (200, "received")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    await _wait_balance(w, w.alice, start + 500)

    # Refunded in full; the old "succeeded" replayed afterwards gives nothing back.
    await w.server.v1.refunds.create_async({"payment_intent": pi_id})
    await _wait_balance(w, w.alice, start)
    late = await w.http.post("/api/payment/webhook", content=body, headers=captured)
    assert (late.status_code, late.json()["status"]) == (200, "duplicate")
    w.sim.resend_event(event["id"])  # Stripe itself delivering it once more
    w.sim.wait_webhooks_idle(20)
    assert await w.balance(w.alice) == start

    # Once its timestamp is outside the tolerance, the same bytes are refused outright.
    old = int(time.time()) - w.tolerance_s - 1
    stale = await w.http.post("/api/payment/webhook", content=body,
                              headers={"Stripe-Signature": sign(body, timestamp=old)})
    assert (stale.status_code, stale.json()["error"]["code"]) == (400, "invalid_signature")
    assert await w.balance(w.alice) == start


async def _stripe_event(w: World, pi_id: str, event_type: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=w.sim.url, timeout=30) as c:
        r = await c.get("/v1/events", params={"type": event_type, "limit": 100},
                        headers={"Authorization": f"Bearer {SECRET_KEY}"})
    (event,) = [e for e in r.json()["data"] if e["data"]["object"]["id"] == pi_id]
    found: dict[str, Any] = event
    return found


async def _wait_balance(w: World, who: dict[str, Any], expected: int) -> None:
    async def reached() -> bool:
        return await w.balance(who) == expected

    await wait_for(reached, timeout_s=15, what=f"balance {expected}")

