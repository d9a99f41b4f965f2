"""Rate limits (shared by every app process), security headers, CSP and CORS."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from reliability.harness import AppProcess, free_port
from tokenbank.app import create_app
from tokenbank.config import Settings

from conftest import _truncate_postgres, make_settings

pytestmark = pytest.mark.anyio


def _client(settings: Settings) -> tuple[object, httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return app, httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_login_is_rate_limited_with_retry_after(db_url: str) -> None:
    app, client = _client(
        make_settings(db_url, rate_limit_enabled=True, rate_limit_login_per_min=5)
    )
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        statuses = []
        for _ in range(8):
            r = await client.post("/api/auth/login", json={"username": "x", "password": "y"})
            statuses.append(r.status_code)
        assert statuses == [401] * 5 + [429] * 3
        r = await client.post("/api/auth/login", json={"username": "x", "password": "y"})
        assert r.json()["error"]["code"] == "rate_limited"
        # Refused attempts count too (sliding window), so the wait can reach into the next
        # minute.
        assert 1 <= int(r.headers["retry-after"]) <= 120


async def test_generate_and_payment_limits_are_per_user(db_url: str) -> None:
    app, client = _client(
        make_settings(
            db_url,
            rate_limit_enabled=True,
            rate_limit_payment_per_min=3,
            rate_limit_register_per_min=100,
        )
    )
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        tokens = []
        for name in ("ratea", "rateb"):
            r = await client.post(
                "/api/auth/register",
                json={"username": name, "email": f"{name}@example.com", "password": "limit-pass-1"},
            )
            tokens.append({"Authorization": f"Bearer {r.json()['access_token']}"})
        first = [
            await client.post(
                "/api/payment/create-payment-intent", json={"tier": "nope"}, headers=tokens[0]
            )
            for _ in range(4)
        ]
        assert [r.status_code for r in first][-1] == 429
        other = await client.post(
            "/api/payment/create-payment-intent", json={"tier": "nope"}, headers=tokens[1]
        )
        assert other.status_code != 429


@pytest.mark.parametrize("store", ["database", "redis", "redis_down"])
def test_limits_hold_across_app_processes(
    postgres_url: str, store: str, request: pytest.FixtureRequest
) -> None:
    """Two processes on one database (and one Redis) share the same window: 6 allowed in
    all, not 12 — for sign-in (per address) and for replies (per user). Also when Redis is
    configured but down, and both count in the database instead."""
    _truncate_postgres(postgres_url)
    env = {
        "DATABASE_URL": postgres_url,
        "JWT_SECRET": "x" * 40,
        "RATE_LIMIT_LOGIN_PER_MIN": "6",
        "RATE_LIMIT_GENERATE_PER_MIN": "6",
        "RATE_LIMIT_REGISTER_PER_MIN": "100",
        "SIGNUP_BONUS_TOKENS": "100",
        "BACKGROUND_JOBS": "false",
    }
    if store == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["REDIS_KEY_PREFIX"] = request.getfixturevalue("redis_prefix")
        env["REDIS_TIMEOUT_S"] = "5"  # a busy machine is not an outage
    if store == "redis_down":  # nothing listens there: both processes count in the database
        env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    apps = [AppProcess(env).launch(), AppProcess(env).launch()]
    try:
        for a in apps:
            a.wait_ready()

        async def burst() -> tuple[Counter[int], Counter[int]]:
            async with httpx.AsyncClient(timeout=30) as c:
                logins = await asyncio.gather(
                    *(
                        c.post(
                            f"{apps[i % 2].url}/api/auth/login",
                            json={"username": "nobody", "password": "nothing1"},
                        )
                        for i in range(12)
                    )
                )
                r = await c.post(
                    f"{apps[0].url}/api/auth/register",
                    json={"username": "limited", "email": "l@example.com", "password": "pass-1234"},
                )
                auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
                chat = await c.post(f"{apps[0].url}/api/chats", json={}, headers=auth)
                path = f"/api/chats/{chat.json()['id']}/generate"
                replies = await asyncio.gather(
                    *(
                        c.post(
                            f"{apps[i % 2].url}{path}",
                            json={"content": f"question {i}"},
                            headers=auth,
                        )
                        for i in range(12)
                    )
                )
            return Counter(r.status_code for r in logins), Counter(r.status_code for r in replies)

        logins, replies = asyncio.run(burst())
        assert logins == {401: 6, 429: 6}
        # One user's replies run one at a time (409 while one is in flight) or are refused
        # past the limit; never more than 6 get past the limiter in all.
        assert replies[429] == 6, replies
    finally:
        for a in apps:
            a.stop()


async def test_pages_carry_security_headers_and_a_strict_csp(db_url: str) -> None:
    settings = make_settings(
        db_url, stripe_api_base="http://127.0.0.1:12111", stripe_js_url="http://127.0.0.1:12111/v3/"
    )
    app, client = _client(settings)
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        r = await client.get("/login")
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self' http://127.0.0.1:12111"
    assert directives["frame-ancestors"] == "'none'"
    assert "https://js.stripe.com" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"

    real = make_settings(db_url)
    app, client = _client(real)
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        r = await client.get("/login")
    directives = dict(
        d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";")
    )
    assert directives["script-src"] == "'self' https://js.stripe.com"


async def test_cors_only_for_configured_origins(db_url: str) -> None:
    app, client = _client(make_settings(db_url, cors_origins=["https://chat.example.com"]))
    async with app.router.lifespan_context(app), client:  # type: ignore[attr-defined]
        ok = await client.options(
            "/api/auth/login",
            headers={"Origin": "https://chat.example.com", "Access-Control-Request-Method": "POST"},
        )
        evil = await client.options(
            "/api/auth/login",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        simple = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert ok.headers.get("access-control-allow-origin") == "https://chat.example.com"
    assert "access-control-allow-origin" not in evil.headers
    assert "access-control-allow-origin" not in simple.headers
