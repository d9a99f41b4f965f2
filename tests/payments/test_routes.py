"""Tiers, config, creating intents, confirming, showing payments."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from sqlalchemy import func, select

from payments.kit import PayEnv, dead_url, payment_settings
from tokenbank.app import create_app
from tokenbank.config import Settings
from tokenbank.payments.models import Payment

from conftest import make_settings
from support import register_user

pytestmark = pytest.mark.anyio


async def payment_rows(env: PayEnv) -> int:
    async with env.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(Payment))).scalar_one())


async def test_pricing_tiers_are_the_configured_packs(env: PayEnv) -> None:
    r = await env.http.get("/api/payment/pricing-tiers")

    assert r.status_code == 200
    tiers = r.json()
    assert {k: (v["tokens"], v["price"], v["currency"]) for k, v in tiers.items()} == {
        "starter": (100, 500, "usd"),
        "standard": (500, 2000, "usd"),
        "premium": (1500, 5000, "usd"),
    }
    assert all(v["description"] for v in tiers.values())


async def test_config_tells_the_browser_how_to_pay(env: PayEnv) -> None:
    config = (await env.http.get("/api/payment/config")).json()

    assert config["publishable_key"] == "pk_test_local"
    assert config["mode"] == "simulated"
    assert config["stripe_js_url"] == f"{env.sim.url}/v3/"
    numbers = {c["number"].replace(" ", "") for c in config["test_cards"]}
    assert {"4242424242424242", "4000000000000002", "4000002760003184"} <= numbers


@pytest.mark.parametrize(
    ("keys", "mode", "shows_cards"),
    [
        # Live keys run only in production (with everything production asks for).
        ({"stripe_secret_key": "sk_live_" + "a1B2" * 8, "stripe_publishable_key": "pk_live_" + "a1B2" * 8,
          "stripe_webhook_secret": "whsec_" + "Zm9vYmFy" * 5, "app_env": "production",
          "jwt_secret": "8c1f0e6b2d4a9c7e5f3b1d0a8e6c4b2f9d7e5c3a1b0f8e6d", "log_level": "WARNING",
          "app_origin": "https://chat.example.com", "smtp_host": "smtp.example.com"},
         "live", False),
        ({"stripe_secret_key": "sk_test_abc", "stripe_publishable_key": "pk_test_abc"}, "test",
         True),
    ],
)
async def test_config_in_stripes_own_modes(
    db_url: str, keys: dict[str, str], mode: str, shows_cards: bool
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # a production app sets up logging
    try:
        app = create_app(make_settings(db_url, **keys))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as c:
        config = (await c.get("/api/payment/config")).json()

    assert config["mode"] == mode
    assert config["stripe_js_url"] == "https://js.stripe.com/v3/"
    assert bool(config["test_cards"]) is shows_cards


async def test_the_intent_gets_its_amount_and_metadata_from_the_server(env: PayEnv) -> None:
    user = await env.user()

    intent = await env.create(user, "premium")

    pi = await env.server.v1.payment_intents.retrieve_async(intent["payment_intent_id"])
    assert (pi.amount, pi.currency) == (5000, "usd")
    assert pi.automatic_payment_methods is not None and pi.automatic_payment_methods.enabled
    metadata = pi.metadata.to_dict()
    assert metadata["user_id"] == str(user["user"]["id"])
    assert (metadata["tier"], metadata["tokens"], metadata["type"]) == (
        "premium", "1500", "token_purchase")
    assert metadata["payment_id"].isdigit()
    assert intent["publishable_key"] == "pk_test_local"
    assert intent["client_secret"].startswith(intent["payment_intent_id"])
    shown = await env.payment(user, intent["payment_intent_id"])
    assert (shown["tier"], shown["tokens"], shown["amount"], shown["currency"]) == (
        "premium", 1500, 5000, "usd")
    assert (shown["status"], shown["tokens_credited"]) == ("requires_payment_method", 0)


@pytest.mark.parametrize("body", [{"tier": "gold"}, {"tier": "STARTER"}])
async def test_an_unknown_tier_is_refused_and_nothing_is_recorded(
    env: PayEnv, body: dict[str, str]
) -> None:
    user = await env.user()

    r = await env.http.post("/api/payment/create-payment-intent", json=body,
                            headers=user["headers"])

    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_tier"
    assert await payment_rows(env) == 0


async def test_a_price_in_the_request_is_ignored(env: PayEnv) -> None:
    user = await env.user()

    r = await env.http.post("/api/payment/create-payment-intent",
                            json={"tier": "starter", "amount": 1, "price": 1},
                            headers=user["headers"])

    assert r.status_code == 200 and r.json()["amount"] == 500


async def test_the_same_idempotency_key_returns_the_same_intent_and_one_row(env: PayEnv) -> None:
    user = await env.user()

    answers = await asyncio.gather(*(env.create(user, "standard", key="buy-1") for _ in range(4)))
    later = await env.create(user, "standard", key="buy-1")

    ids = {a["payment_intent_id"] for a in [*answers, later]}
    assert len(ids) == 1
    assert {a["client_secret"] for a in [*answers, later]} == {later["client_secret"]}
    assert await payment_rows(env) == 1
    other = await env.create(user, "standard", key="buy-2")
    assert other["payment_intent_id"] not in ids
    assert await payment_rows(env) == 2
    listed = await env.server.v1.payment_intents.list_async({"limit": 100})
    assert len(listed.data) == 2


async def test_an_idempotency_key_reused_for_another_tier_is_refused(env: PayEnv) -> None:
    user = await env.user()
    await env.create(user, "standard", key="buy-1")

    r = await env.http.post("/api/payment/create-payment-intent", json={"tier": "premium"},
                            headers=user["headers"] | {"Idempotency-Key": "buy-1"})

    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert await payment_rows(env) == 1


async def test_another_users_idempotency_key_is_theirs_alone(env: PayEnv) -> None:
    alice, bob = await env.user(), await env.user()

    a = await env.create(alice, "starter", key="same")
    b = await env.create(bob, "starter", key="same")

    assert a["payment_intent_id"] != b["payment_intent_id"]


async def test_confirm_credits_once_and_reports_the_balance(env: PayEnv) -> None:
    env.sim.set_faults(drop_all=True)  # only confirm-payment can credit here
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "starter")

    before = await env.confirm(user, intent["payment_intent_id"])
    assert before.status_code == 200
    assert before.json()["status"] == "requires_payment_method"
    assert (before.json()["tokens_added"], before.json()["credited"]) == (0, False)

    await env.pay(intent, "pm_card_visa")
    first = await env.confirm(user, intent["payment_intent_id"])
    second = await env.confirm(user, intent["payment_intent_id"])

    for r in (first, second):
        body = r.json()
        assert body["status"] == "succeeded"
        assert (body["tokens_added"], body["credited"], body["tokens"]) == (100, True, 100)
        assert body["balance"] == start + 100
        assert body["payment_intent_id"] == intent["payment_intent_id"]
    assert await env.purchase_entries(intent["payment_intent_id"]) == [("purchase", 100)]


async def test_confirm_racing_the_webhooks_credits_exactly_once(env: PayEnv) -> None:
    env.sim.set_faults(duplicates=3)
    user = await env.user()
    start = await env.balance(user)
    intent = await env.create(user, "premium")
    pi_id = intent["payment_intent_id"]

    async def confirm_soon() -> httpx.Response:
        await env.pay(intent, "pm_card_visa")
        return await env.confirm(user, pi_id)

    results = await asyncio.gather(confirm_soon(), *(env.confirm(user, pi_id) for _ in range(12)))
    results += await asyncio.gather(*(env.confirm(user, pi_id) for _ in range(8)))
    env.settle()

    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert results[0].json()["tokens_added"] == 1500
    assert await env.balance(user) == start + 1500
    assert await env.purchase_entries(pi_id) == [("purchase", 1500)]


async def test_someone_elses_or_an_unknown_intent_is_not_found(env: PayEnv) -> None:
    alice, mallory = await env.user(), await env.user()
    pi_id = await env.buy(alice, "starter")

    for r in (
        await env.confirm(mallory, pi_id),
        await env.http.get(f"/api/payment/payments/{pi_id}", headers=mallory["headers"]),
        await env.confirm(mallory, "pi_doesnotexist"),
        await env.http.get("/api/payment/payments/pi_doesnotexist", headers=alice["headers"]),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "payment_not_found"
    listed = (await env.http.get("/api/payment/payments", headers=mallory["headers"])).json()
    assert listed["items"] == []


async def test_payments_are_listed_newest_first_for_their_owner(env: PayEnv) -> None:
    user = await env.user()
    first = await env.create(user, "starter")
    second = await env.create(user, "premium")
    paid = await env.buy(user, "standard")

    page = (await env.http.get("/api/payment/payments", params={"limit": 2},
                               headers=user["headers"])).json()
    rest = (await env.http.get("/api/payment/payments",
                               params={"limit": 2, "before": page["next_before"]},
                               headers=user["headers"])).json()

    assert [p["payment_intent_id"] for p in page["items"] + rest["items"]] == [
        paid, second["payment_intent_id"], first["payment_intent_id"]]
    assert rest["next_before"] is None


async def test_payment_routes_need_a_signed_in_user(env: PayEnv) -> None:
    for method, path in [("POST", "/api/payment/create-payment-intent"),
                         ("POST", "/api/payment/confirm-payment"),
                         ("GET", "/api/payment/payments")]:
        r = await env.http.request(method, path, json={"tier": "starter"})
        assert r.status_code == 401, (path, r.text)


async def test_without_stripe_keys_buying_is_503_not_configured(db_url: str) -> None:
    app = create_app(make_settings(db_url))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as c:
        user = await register_user(c)
        r = await c.post("/api/payment/create-payment-intent", json={"tier": "starter"},
                         headers=user["headers"])
        config = (await c.get("/api/payment/config")).json()

    assert r.status_code == 503 and r.json()["error"]["code"] == "payments_not_configured"
    assert config["configured"] is False


async def test_a_stripe_outage_on_create_is_503_and_a_retry_with_the_key_recovers(
    env: PayEnv, db_url: str
) -> None:
    user = await env.user()
    down = payment_settings(db_url, env.sim, stripe_api_base=dead_url())
    app = create_app(down)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as c:
        r = await c.post("/api/payment/create-payment-intent", json={"tier": "starter"},
                         headers=user["headers"] | {"Idempotency-Key": "try-1"})

    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "stripe_unavailable"
    assert r.headers["Retry-After"]
    again = await env.create(user, "starter", key="try-1")
    assert again["payment_intent_id"].startswith("pi_")
    assert await payment_rows(env) == 1


async def test_creating_intents_is_rate_limited(pay_settings: Settings) -> None:
    limited = pay_settings.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_payment_per_min": 2}
    )
    app = create_app(limited)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as c:
        user = await register_user(c)
        codes = [
            (await c.post("/api/payment/create-payment-intent", json={"tier": "gold"},
                          headers=user["headers"])).status_code
            for _ in range(3)
        ]

    assert codes == [422, 422, 429]
