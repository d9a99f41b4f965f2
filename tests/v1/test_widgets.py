"""Widget routes trust the host's login through a short-lived customer token: HS256 with
the shared secret, or RS256 by a key in the host's JWKS (fetched, cached, fetched again
for a new key id). Anything else is 401; CORS opens the widget routes, and only them, to
the host's origins."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from v1.kit import make_customer, make_key

from conftest import app_client, make_settings

pytestmark = pytest.mark.anyio

SECRET = "widget-secret-4f9c1e7a2b6d8f0a3c5e7b9d1f2a4c6e"
HOST = "https://host.test"


def token(sub: str, *, key: Any = SECRET, alg: str = "HS256", ttl_s: int = 300,
          aud: str | None = "tokenbank", kid: str | None = None, age_s: int = 0) -> str:
    now = int(time.time()) - age_s
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl_s}
    if aud is not None:
        claims["aud"] = aud
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


async def test_hs256_tokens_name_one_customer(db_url: str) -> None:
    settings = make_settings(db_url, widget_token_secret=SECRET, widget_allowed_origins=HOST)
    async with app_client(settings) as client:
        key = await make_key(client)
        alice, bob = await make_customer(client, key, 7), await make_customer(client, key, 3)
        r = await client.get("/api/v1/widget/balance", headers=bearer(token(alice)))
        assert r.status_code == 200, r.text
        assert r.json() == {"external_id": alice, "balance": 7, "reserved": 0, "available": 7}
        r = await client.get("/api/v1/widget/transactions", headers=bearer(token(bob)))
        assert [t["amount"] for t in r.json()["items"]] == [3]
        tiers = (await client.get("/api/v1/widget/tiers", headers=bearer(token(bob)))).json()
        assert {t["id"]: t["tokens"] for t in tiers} == {
            "starter": 100, "standard": 500, "premium": 1500}

        refused = {
            "expired": token(alice, age_s=400),
            "too long-lived": token(alice, ttl_s=7200),
            "wrong secret": token(alice, key="another-secret-4f9c1e7a2b6d8f0a3c5e7b9d"),
            "no audience": token(alice, aud=None),
            "another audience": token(alice, aud="someone-else"),
            "alg none": jwt.encode({"sub": alice, "aud": "tokenbank", "iat": int(time.time()),
                                    "exp": int(time.time()) + 60}, None, algorithm="none"),
            "bad subject": token("a/b"),
            "garbage": "not-a-jwt",
        }
        for why, bad in refused.items():
            r = await client.get("/api/v1/widget/balance", headers=bearer(bad))
            assert r.status_code == 401, why
            assert r.json()["error"]["code"] == "invalid_widget_token", why
        r = await client.get("/api/v1/widget/balance", headers=bearer(token("nobody")))
        assert r.status_code == 404 and r.json()["error"]["code"] == "customer_not_found"
        # An API key is not a widget token, and a widget token is not an API key.
        r = await client.get("/api/v1/widget/balance", headers=key)
        assert r.status_code == 401
        r = await client.get(f"/api/v1/customers/{alice}/balance", headers=bearer(token(alice)))
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


async def test_cors_opens_the_widget_routes_only_to_the_hosts_origins(db_url: str) -> None:
    settings = make_settings(db_url, widget_token_secret=SECRET, widget_allowed_origins=HOST)
    async with app_client(settings) as client:
        preflight = {"Origin": HOST, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}
        r = await client.options("/api/v1/widget/balance", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == HOST
        assert "access-control-allow-credentials" not in r.headers
        r = await client.options("/api/v1/widget/balance",
                                 headers=preflight | {"Origin": "https://evil.test"})
        assert r.headers.get("access-control-allow-origin") is None
        r = await client.options("/api/v1/customers/x/balance", headers=preflight)
        assert r.headers.get("access-control-allow-origin") is None
        r = await client.get("/api/v1/widget/tiers", headers={"Origin": HOST})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == HOST


async def test_without_a_secret_or_jwks_widgets_are_off(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/widget/balance", headers=bearer(token("x")))
    assert r.status_code == 404 and r.json()["error"]["code"] == "widgets_not_configured"


class Jwks:
    """The host's JWKS endpoint on a local port; counts how often it is fetched."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.fetches += 1
                body = json.dumps({"keys": [
                    {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
                     "kid": kid, "alg": "RS256", "use": "sig"}
                    for kid, k in outer.keys.items()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def add_key(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()
        thread.join(5)


async def test_rs256_tokens_are_checked_against_the_hosts_jwks_cached(
    db_url: str, jwks: Jwks
) -> None:
    first = jwks.add_key("k1")
    settings = make_settings(db_url, widget_jwks_url=jwks.url, widget_jwks_cache_s=600,
                             widget_jwks_refetch_s=0)
    async with app_client(settings) as client:
        key = await make_key(client)
        cid = await make_customer(client, key, 4)
        for _ in range(3):
            r = await client.get("/api/v1/widget/balance",
                                 headers=bearer(token(cid, key=first, alg="RS256", kid="k1")))
            assert r.status_code == 200, r.text
            assert r.json()["available"] == 4
        assert jwks.fetches == 1  # cached

        second = jwks.add_key("k2")  # the host rotates: a new key id fetches the set again
        r = await client.get("/api/v1/widget/balance",
                             headers=bearer(token(cid, key=second, alg="RS256", kid="k2")))
        assert r.status_code == 200 and jwks.fetches == 2

        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for bad in (token(cid, key=stranger, alg="RS256", kid="k1"),  # not the host's key
                    token(cid, key=stranger, alg="RS256", kid="k9"),  # no such key id
                    token(cid)):  # HS256 without a configured secret
            r = await client.get("/api/v1/widget/balance", headers=bearer(bad))
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_widget_token"


async def test_made_up_key_ids_do_not_make_us_fetch_the_jwks_again(
    db_url: str, jwks: Jwks
) -> None:
    jwks.add_key("k1")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = make_settings(db_url, widget_jwks_url=jwks.url)  # default refetch limit
    async with app_client(settings) as client:
        for i in range(5):
            r = await client.get("/api/v1/widget/balance",
                                 headers=bearer(token("c", key=stranger, alg="RS256",
                                                      kid=f"made-up-{i}")))
            assert r.status_code == 401
    assert jwks.fetches == 1


async def test_an_unreachable_jwks_is_a_503_never_a_pass(db_url: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = make_settings(db_url, widget_jwks_url="http://127.0.0.1:9/jwks.json")
    async with app_client(settings) as client:
        r = await client.get("/api/v1/widget/balance",
                             headers=bearer(token("c", key=key, alg="RS256", kid="k1")))
        assert r.status_code == 503 and r.json()["error"]["code"] == "jwks_unavailable"
