"""Purchases through the service API, paid on the hosted page's terms or in a widget: the
price comes from the server's tiers, the link is signed and returns only to the host's
origins, and tokens arrive once, when Stripe (the local server) says the money is in."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import stripe

from payments.kit import PUBLISHABLE_KEY, RETURN_URL, payment_settings, sim_config
from stripe_sim import SimServer
from tokenbank.payments.stripe_client import AsyncHTTPXClient
from v1.kit import balance, make_customer, make_key

from conftest import app_client

pytestmark = pytest.mark.anyio

HOST = "https://host.test"
SECRET = "widget-secret-4f9c1e7a2b6d8f0a3c5e7b9d1f2a4c6e"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(sim_config()) as server:
        yield server


@dataclass
class Shop:
    http: httpx.AsyncClient
    browser: stripe.StripeClient
    key: dict[str, str]

    async def pay(self, payment_intent_id: str, client_secret: str) -> None:
        paid = await self.browser.v1.payment_intents.confirm_async(
            payment_intent_id,
            {"payment_method": "pm_card_visa", "client_secret": client_secret,
             "return_url": RETURN_URL},
        )
        assert paid.status == "succeeded"


@pytest.fixture
async def shop(db_url: str, sim: SimServer) -> AsyncIterator[Shop]:
    sim.reset()
    settings = payment_settings(db_url, sim, widget_allowed_origins=HOST,
                                widget_token_secret=SECRET, webhook_worker=False)
    sdk_http = AsyncHTTPXClient(timeout=30)
    browser = stripe.StripeClient(PUBLISHABLE_KEY, base_addresses={"api": sim.url},
                                  http_client=sdk_http, max_network_retries=0)
    try:
        async with app_client(settings) as http:
            yield Shop(http, browser, await make_key(http))
    finally:
        await sdk_http.close_async()  # type: ignore[no-untyped-call]


def link_token(hosted_url: str) -> dict[str, str]:
    fragment = urlsplit(hosted_url).fragment
    assert fragment.startswith("token=")
    return {"Authorization": f"Bearer {fragment.removeprefix('token=')}"}


async def test_a_hosted_purchase_credits_once_and_returns_to_the_host(shop: Shop) -> None:
    cid = await make_customer(shop.http, shop.key)
    body = {"tier": "starter", "idempotency_key": "buy-1", "return_url": f"{HOST}/billing?x=1"}
    r = await shop.http.post(f"/api/v1/customers/{cid}/purchases", json=body, headers=shop.key)
    assert r.status_code == 200, r.text
    bought = r.json()
    assert (bought["tokens"], bought["amount"], bought["currency"]) == (100, 500, "usd")
    assert bought["hosted_url"].startswith("http://testserver/checkout#token=")
    again = (await shop.http.post(f"/api/v1/customers/{cid}/purchases", json=body,
                                  headers=shop.key)).json()
    assert again["payment_intent_id"] == bought["payment_intent_id"]
    r = await shop.http.post(f"/api/v1/customers/{cid}/purchases", headers=shop.key,
                             json={**body, "tier": "premium"})
    assert r.status_code == 409

    link = link_token(bought["hosted_url"])
    page = (await shop.http.get("/api/v1/checkout", headers=link)).json()
    assert page["client_secret"] == bought["client_secret"]
    assert (page["tokens"], page["amount"], page["return_url"]) == (100, 500, body["return_url"])
    early = (await shop.http.post("/api/v1/checkout/confirm", headers=link)).json()
    assert early["credited"] is False and early["tokens_added"] == 0

    await shop.pay(page["payment_intent_id"], page["client_secret"])
    for _ in range(2):
        done = (await shop.http.post("/api/v1/checkout/confirm", headers=link)).json()
        assert done == {"status": "succeeded", "credited": True, "tokens_added": 100,
                        "return_url": body["return_url"]}
    assert (await balance(shop.http, shop.key, cid))["balance"] == 100


async def test_return_urls_and_links_are_checked(shop: Shop) -> None:
    cid = await make_customer(shop.http, shop.key)
    for bad in ("https://evil.test/back", "javascript:alert(1)", "/relative",
                "https://host.test.evil.test/", "http://host.test/"):
        r = await shop.http.post(f"/api/v1/customers/{cid}/purchases", headers=shop.key,
                                 json={"tier": "starter", "idempotency_key": "b",
                                       "return_url": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "return_url_not_allowed"
    r = await shop.http.post(f"/api/v1/customers/{cid}/purchases", headers=shop.key,
                             json={"tier": "gold", "idempotency_key": "b",
                                   "return_url": f"{HOST}/"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_tier"

    forged = jwt.encode({"sub": "1", "pi": "pi_x", "ret": f"{HOST}/", "typ": "checkout",
                         "iat": int(time.time()), "exp": int(time.time()) + 60},
                        "guessed-secret-0123456789abcdef0123456789", algorithm="HS256")
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, shop.key):
        r = await shop.http.get("/api/v1/checkout", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_checkout_token"


async def test_widget_purchase_and_confirm_are_the_customers_own(shop: Shop) -> None:
    alice, bob = await make_customer(shop.http, shop.key), await make_customer(shop.http, shop.key)
    now = int(time.time())

    def widget(cid: str) -> dict[str, str]:
        t = jwt.encode({"sub": cid, "aud": "tokenbank", "iat": now, "exp": now + 300}, SECRET,
                       algorithm="HS256")
        return {"Authorization": f"Bearer {t}"}

    r = await shop.http.post("/api/v1/widget/purchases", headers=widget(alice),
                             json={"tier": "standard", "idempotency_key": "w1"})
    assert r.status_code == 200, r.text
    intent = r.json()
    assert (intent["tokens"], intent["amount"]) == (500, 2000)
    r = await shop.http.post("/api/v1/widget/confirm", headers=widget(bob),
                             json={"payment_intent_id": intent["payment_intent_id"]})
    assert r.status_code == 404
    await shop.pay(intent["payment_intent_id"], intent["client_secret"])
    r = await shop.http.post("/api/v1/widget/confirm", headers=widget(alice),
                             json={"payment_intent_id": intent["payment_intent_id"]})
    assert r.status_code == 200, r.text
    assert (r.json()["credited"], r.json()["balance"]) == (True, 500)
    assert (await balance(shop.http, shop.key, bob))["balance"] == 0


async def test_concurrent_replays_of_a_purchase_make_one_payment(shop: Shop) -> None:
    import asyncio

    from sqlalchemy import func, select

    from tokenbank.payments.models import Payment

    cid = await make_customer(shop.http, shop.key)
    body = {"tier": "starter", "idempotency_key": "twice", "return_url": f"{HOST}/b"}
    answers = await asyncio.gather(*[
        shop.http.post(f"/api/v1/customers/{cid}/purchases", json=body, headers=shop.key)
        for _ in range(5)])
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["payment_intent_id"] for a in answers}) == 1
    async with shop.http.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        count = (await session.execute(select(func.count()).select_from(Payment))).scalar_one()
    assert count == 1
