"""Input an attacker sends: each answer is a 4xx with a machine-readable code, never a 5xx,
and money does not move on an error path.

Webhook signatures and bodies, page paths the file system refuses, chunked bodies over
the limit, admin amounts sent as strings or booleans, a grant retried with one
Idempotency-Key, an admin page among 500 look-alike usernames, the API docs and HSTS in
production, and the caller's id on the request's log lines.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, update

from payments.kit import WEBHOOK_SECRET, sign
from tokenbank.auth.models import User
from tokenbank.config import Settings

from conftest import app_client, make_settings
from support import LogLines, register_user

pytestmark = pytest.mark.anyio


@pytest.fixture
def client_dist(tmp_path: Path) -> Path:
    """A built client: an index page and one asset, as `make setup` leaves them."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>tokenbank</title>")
    (dist / "assets" / "app.js").write_text("console.log('app')")
    return dist


@pytest.fixture
async def web(db_url: str, client_dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        db_url, stripe_webhook_secret=WEBHOOK_SECRET, client_dist=str(client_dist)
    )
    async with app_client(settings) as c:
        yield c


async def _admin(client: httpx.AsyncClient, name: str = "operator") -> dict[str, Any]:
    admin = await register_user(client, name)
    async with client.app.state.db.transaction() as s:  # type: ignore[attr-defined]
        await s.execute(update(User).where(User.id == admin["user"]["id"]).values(is_admin=True))
    return admin


def _error(r: httpx.Response) -> str:
    code: str = r.json()["error"]["code"]
    return code


# --- 13. webhook signatures and bodies --------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    ["t=1,v1=é".encode(), "t=1,v1=\u00e9".encode("latin-1"), b"t=\xff\xfe,v1=\x80"],
    ids=["utf8", "latin1", "raw-bytes"],
)
async def test_a_non_ascii_signature_is_400_invalid_signature(
    web: httpx.AsyncClient, signature: bytes
) -> None:
    r = await web.post(
        "/api/payment/webhook",
        content=b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},  # type: ignore[dict-item]
    )
    assert r.status_code == 400, r.text
    assert _error(r) == "invalid_signature"


# Both stay under the webhook's own body limit, so the depth alone is what is refused.
@pytest.mark.parametrize("opener", [b"[", b'{"":'])
async def test_a_validly_signed_100000_deep_body_is_400_invalid_payload(
    web: httpx.AsyncClient, opener: bytes
) -> None:
    closer = b"]" if opener == b"[" else b"}"
    body = opener * 100_000 + b"1" + closer * 100_000
    r = await web.post(
        "/api/payment/webhook",
        content=body,
        headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text[:200]
    assert _error(r) == "invalid_payload"


# --- 14. page paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/x%00", "/assets/%00", "/assets/app.js%00.png", "/chat/%00/x", "/" + "a" * 5000,
     "/assets/" + "b" * 300, "/x%0a", "/a%5cb"],
    ids=["nul", "asset-nul", "asset-nul-suffix", "nul-segment", "5000-chars", "long-segment",
         "newline", "backslash"],
)
async def test_paths_no_file_system_accepts_are_404_not_a_5xx(
    web: httpx.AsyncClient, path: str
) -> None:
    r = await web.get(path)
    assert r.status_code == 404, (r.status_code, r.text[:200])
    assert _error(r) == "not_found"


async def test_pages_and_assets_still_serve(web: httpx.AsyncClient) -> None:
    assert (await web.get("/chat/12")).text.startswith("<!doctype html>")
    asset = await web.get("/assets/app.js")
    assert asset.status_code == 200 and "console.log" in asset.text
    assert (await web.get("/../../etc/passwd")).status_code in (200, 404)
    assert "root:" not in (await web.get("/assets/../../../../etc/passwd")).text


# --- 16. chunked bodies over the limit ------------------------------------------------------


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b" " * piece


async def _pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    "path", ["/api/auth/register", "/api/auth/login", "/api/payment/webhook", "/api/chats"]
)
async def test_a_chunked_body_over_the_limit_is_413(web: httpx.AsyncClient, path: str) -> None:
    r = await web.post(
        path, content=_chunks(1_500_000), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in r.request.headers  # really chunked
    assert r.status_code == 413, (r.status_code, r.text[:200])
    assert _error(r) == "payload_too_large"


async def test_a_chunked_body_under_the_limit_is_read(web: httpx.AsyncClient) -> None:
    body = json.dumps({"username": "chunky", "password": "nothing-here"}).encode()
    r = await web.post(
        "/api/auth/login", content=_pieces(body[:10], body[10:]),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 401 and _error(r) == "invalid_credentials"


# --- 17. admin grants: strict amounts, Idempotency-Key --------------------------------------


async def _balance(client: httpx.AsyncClient, user: dict[str, Any]) -> int:
    r = await client.get("/api/payment/user/tokens", headers=user["headers"])
    return int(r.json()["balance"])


@pytest.mark.parametrize("amount", ["25", True, False, 25.0, "1e3", None, [5], {"v": 5}])
async def test_admin_amounts_are_whole_numbers_never_coerced(
    web: httpx.AsyncClient, amount: object
) -> None:
    admin = await _admin(web)
    user = await register_user(web, "grantee")
    before = await _balance(web, user)
    r = await web.post(
        f"/api/admin/users/{user['user']['id']}/tokens",
        json={"amount": amount, "reason": "strict types"},
        headers=admin["headers"],
    )
    assert r.status_code == 422, r.text
    assert _error(r) == "validation_error"
    assert await _balance(web, user) == before


async def test_the_same_idempotency_key_grants_once(web: httpx.AsyncClient) -> None:
    admin = await _admin(web)
    user = await register_user(web, "grantee")
    before = await _balance(web, user)
    url = f"/api/admin/users/{user['user']['id']}/tokens"
    headers = admin["headers"] | {"Idempotency-Key": "grant-7f3a"}
    first = await web.post(url, json={"amount": 25, "reason": "goodwill"}, headers=headers)
    again = await web.post(url, json={"amount": 25, "reason": "goodwill"}, headers=headers)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["transaction"] == first.json()["transaction"]
    assert await _balance(web, user) == before + 25

    for different in ({"amount": 26, "reason": "goodwill"}, {"amount": 25, "reason": "other"},
                      {"amount": -25, "reason": "goodwill"}):
        r = await web.post(url, json=different, headers=headers)
        assert r.status_code == 409, r.text
        assert _error(r) == "idempotency_key_reused"
    assert await _balance(web, user) == before + 25

    # Without a key, or with a new one, each request is its own grant.
    await web.post(url, json={"amount": 1, "reason": "more"}, headers=admin["headers"])
    await web.post(url, json={"amount": 1, "reason": "more"}, headers=admin["headers"])
    await web.post(url, json={"amount": 1, "reason": "more"},
                   headers=admin["headers"] | {"Idempotency-Key": "grant-other"})
    assert await _balance(web, user) == before + 28


async def test_concurrent_retries_with_one_key_grant_once(web: httpx.AsyncClient) -> None:
    import asyncio

    admin = await _admin(web)
    user = await register_user(web, "grantee")
    before = await _balance(web, user)
    headers = admin["headers"] | {"Idempotency-Key": "burst-1"}
    rs = await asyncio.gather(*(
        web.post(f"/api/admin/users/{user['user']['id']}/tokens",
                 json={"amount": 10, "reason": "burst"}, headers=headers)
        for _ in range(8)
    ))
    assert all(r.status_code < 500 for r in rs), [r.text for r in rs]
    assert {r.json()["transaction"]["id"] for r in rs if r.status_code == 200} != set()
    assert await _balance(web, user) == before + 10


# --- 10. the admin user page loads by id ----------------------------------------------------


async def test_the_admin_user_page_loads_among_500_look_alikes(web: httpx.AsyncClient) -> None:
    admin = await _admin(web)
    target_id = int(admin["user"]["id"]) + 501
    async with web.app.state.db.transaction() as s:  # type: ignore[attr-defined]
        await s.execute(insert(User), [
            {"username": f"u{target_id}x{i}", "email": f"{target_id}.{i}@example.com",
             "password_hash": "x", "is_admin": False}
            for i in range(500)
        ])
    victim = await register_user(web, f"v{target_id}")
    assert victim["user"]["id"] == target_id  # the look-alikes all sort before the victim
    r = await web.get(f"/api/admin/users/{target_id}", headers=admin["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == f"v{target_id}"
    assert r.json()["user"]["balance"] == 10
    missing = await web.get(f"/api/admin/users/{target_id + 10_000}", headers=admin["headers"])
    assert missing.status_code == 404 and _error(missing) == "user_not_found"


# --- 12. the caller's id on every log line ---------------------------------------------------


async def test_log_lines_carry_the_callers_user_id(
    web: httpx.AsyncClient, log_lines: LogLines
) -> None:
    admin = await _admin(web)
    user = await register_user(web, "grantee")
    r = await web.post(f"/api/admin/users/{user['user']['id']}/tokens",
                       json={"amount": 3, "reason": "logged"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    [line] = [x for x in log_lines.lines if x["logger"] == "tokenbank.admin.service"]
    assert line["user_id"] == admin["user"]["id"]
    assert len(line["request_id"]) >= 8
    assert "+3 tokens for user" in line["msg"]


# --- 9. production: no API docs, HSTS -------------------------------------------------------


def _production(db_url: str, **overrides: Any) -> Settings:
    return make_settings(
        db_url,
        app_env="production",
        jwt_secret=secrets.token_hex(32),
        stripe_secret_key="sk_live_" + "51Hx9aKb2" + "Qz7" * 8,
        stripe_publishable_key="pk_live_" + "51Hx9aKb2" + "Qz7" * 8,
        stripe_webhook_secret="whsec_" + "Zm9vYmFy" * 5,
        app_origin="https://chat.example.com",
        smtp_host="smtp.example.com",
        **overrides,
    )


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """A production app configures the process's logging; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


DOCS = ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"]


@pytest.mark.usefixtures("keep_logging")
async def test_production_hides_the_api_docs_and_sends_hsts(
    db_url: str, client_dist: Path
) -> None:
    async with app_client(_production(db_url, client_dist=str(client_dist))) as c:
        for path in DOCS:
            r = await c.get(path)
            assert r.status_code == 404, (path, r.status_code)
            assert "swagger" not in r.text.lower() and '"openapi"' not in r.text
        for path in ("/login", "/health", "/api/payment/pricing-tiers"):
            r = await c.get(path)
            hsts = r.headers.get("strict-transport-security", "")
            assert hsts.startswith("max-age=") and int(hsts[8:].split(";")[0]) >= 31_536_000


@pytest.mark.usefixtures("keep_logging")
async def test_production_docs_can_be_turned_on(db_url: str) -> None:
    async with app_client(_production(db_url, api_docs_enabled=True)) as c:
        assert (await c.get("/openapi.json")).json()["info"]["title"] == "tokenbank"
        assert (await c.get("/docs")).status_code == 200


async def test_development_keeps_the_docs_and_sends_no_hsts(web: httpx.AsyncClient) -> None:
    assert (await web.get("/openapi.json")).status_code == 200
    assert "strict-transport-security" not in (await web.get("/login")).headers
