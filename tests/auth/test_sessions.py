"""Sessions: short access tokens, rotating refresh cookie, reuse detection, logout,
sign-out everywhere and password change — each revocation felt on the very next request."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from tokenbank.app import create_app

from conftest import TEST_JWT_SECRET, make_settings
from support import register_user

pytestmark = pytest.mark.anyio

COOKIE = "tb_refresh"


def _bearer(body: dict[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def _refresh_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{COOKIE}=") and "Path=/api/auth/refresh" in header:
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no refresh cookie in {response.headers.get_list('set-cookie')}")


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    client.cookies.clear()
    return await client.post("/api/auth/refresh", headers={"Cookie": f"{COOKIE}={token}"})


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/auth/me", headers=headers)


async def test_access_tokens_are_short_and_name_their_session(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    claims = jwt.decode(user["access_token"], TEST_JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 15 * 60 == user["expires_in"]
    assert isinstance(claims["sid"], str) and claims["sid"]
    # A validly signed token without a session could never be revoked: refused.
    now = int(time.time())
    bare = jwt.encode({"sub": claims["sub"], "iat": now, "exp": now + 60, "typ": "access"},
                      TEST_JWT_SECRET, algorithm="HS256")
    r = await _me(client, {"Authorization": f"Bearer {bare}"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")
    # Nor may a session's id be borrowed for another user.
    other = jwt.encode({**claims, "sub": str(int(claims["sub"]) + 1)}, TEST_JWT_SECRET,
                       algorithm="HS256")
    r = await _me(client, {"Authorization": f"Bearer {other}"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")


async def test_refresh_cookie_is_httponly_strict_and_scoped(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/register", json={
        "username": "cookie", "email": "cookie@example.com", "password": "cookie-pass-1"})
    cookies = [c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    assert sorted(c.split("Path=")[1].split(";")[0] for c in cookies) == [
        "/api/auth/logout", "/api/auth/refresh"]
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain http test client: a Secure cookie would be lost
    assert r.headers["cache-control"] == "no-store"
    assert COOKIE not in r.text  # never in the body


async def test_refresh_cookie_is_secure_over_https(settings: object) -> None:
    app = create_app(settings)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://app.test") as c:
            r = await c.post("/api/auth/register", json={
                "username": "https", "email": "https@example.com", "password": "cookie-pass-1"})
    cookies = [c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    assert cookies and all("Secure" in c for c in cookies)


async def test_refresh_rotates_and_a_reused_token_ends_the_whole_session(
    client: httpx.AsyncClient,
) -> None:
    login = await client.post("/api/auth/register", json={
        "username": "rota", "email": "rota@example.com", "password": "rotate-pass-1"})
    first = _refresh_cookie(login)
    r1 = await _refresh(client, first)
    assert r1.status_code == 200, r1.text
    second = _refresh_cookie(r1)
    assert second != first
    assert (await _me(client, _bearer(r1.json()))).status_code == 200
    r2 = await _refresh(client, second)
    assert r2.status_code == 200
    third = _refresh_cookie(r2)
    # The first token again: someone holds a copy. The whole family ends.
    stolen = await _refresh(client, first)
    assert (stolen.status_code, stolen.json()["error"]["code"]) == (401, "refresh_token_reused")
    legit = await _refresh(client, third)
    assert (legit.status_code, legit.json()["error"]["code"]) == (401, "refresh_token_invalid")
    for body in (login.json(), r1.json(), r2.json()):
        r = await _me(client, _bearer(body))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
    # Other sessions of the same account are untouched.
    other = await client.post("/api/auth/login", json={"username": "rota", "password": "rotate-pass-1"})
    assert (await _me(client, _bearer(other.json()))).status_code == 200


async def test_refresh_without_or_with_a_bad_cookie_is_401(client: httpx.AsyncClient) -> None:
    client.cookies.clear()
    missing = await client.post("/api/auth/refresh")
    forged = await _refresh(client, "x" * 43)
    for r in (missing, forged):
        assert (r.status_code, r.json()["error"]["code"]) == (401, "refresh_token_invalid")


async def test_logout_ends_this_session_only(client: httpx.AsyncClient) -> None:
    a = await client.post("/api/auth/register", json={
        "username": "lola", "email": "lola@example.com", "password": "logout-pass-1"})
    b = await client.post("/api/auth/login", json={"username": "lola", "password": "logout-pass-1"})
    client.cookies.clear()
    out = await client.post("/api/auth/logout", headers={
        **_bearer(a.json()), "Cookie": f"{COOKIE}={_refresh_cookie(a)}"})
    assert out.status_code == 204
    assert any(c.startswith(f'{COOKIE}=""') or "Max-Age=0" in c
               for c in out.headers.get_list("set-cookie"))
    r = await _me(client, _bearer(a.json()))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
    assert (await _refresh(client, _refresh_cookie(a))).status_code == 401
    assert (await _me(client, _bearer(b.json()))).status_code == 200
    assert (await _refresh(client, _refresh_cookie(b))).status_code == 200
    # Signing out with only the cookie (the access token already expired) works too.
    c = await client.post("/api/auth/login", json={"username": "lola", "password": "logout-pass-1"})
    client.cookies.clear()
    out = await client.post("/api/auth/logout",
                            headers={"Cookie": f"{COOKIE}={_refresh_cookie(c)}"})
    assert out.status_code == 204
    assert (await _me(client, _bearer(c.json()))).status_code == 401


async def test_sign_out_everywhere_ends_every_session_of_that_account_only(
    client: httpx.AsyncClient,
) -> None:
    phone = await client.post("/api/auth/register", json={
        "username": "eve", "email": "eve@example.com", "password": "every-pass-1"})
    laptop = await client.post("/api/auth/login", json={"username": "eve", "password": "every-pass-1"})
    stranger = await register_user(client)
    out = await client.post("/api/auth/logout-all", headers=_bearer(laptop.json()))
    assert out.status_code == 204
    for session in (phone, laptop):
        r = await _me(client, _bearer(session.json()))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
        assert (await _refresh(client, _refresh_cookie(session))).status_code == 401
        r = await client.get("/api/payment/user/tokens", headers=_bearer(session.json()))
        assert r.status_code == 401  # every authenticated route, not only /me
    assert (await _me(client, stranger["headers"])).status_code == 200


async def test_change_password_needs_the_current_one_and_ends_every_other_session(
    client: httpx.AsyncClient,
) -> None:
    here = await client.post("/api/auth/register", json={
        "username": "cara", "email": "cara@example.com", "password": "first-pass-1"})
    there = await client.post("/api/auth/login", json={"username": "cara", "password": "first-pass-1"})
    wrong = await client.post("/api/auth/change-password", headers=_bearer(here.json()),
                              json={"current_password": "nope-nope-1", "new_password": "second-pass-2"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "wrong_current_password")
    weak = await client.post("/api/auth/change-password", headers=_bearer(here.json()),
                             json={"current_password": "first-pass-1", "new_password": "short"})
    assert weak.status_code == 422
    changed = await client.post("/api/auth/change-password", headers=_bearer(here.json()),
                                json={"current_password": "first-pass-1",
                                      "new_password": "second-pass-2"})
    assert changed.status_code == 200, changed.text
    # Every access token issued before the change is refused, this browser's old one too.
    for old in (here, there):
        r = await _me(client, _bearer(old.json()))
        assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
        assert (await _refresh(client, _refresh_cookie(old))).status_code == 401
    # This browser goes on with the session the change handed it.
    assert (await _me(client, _bearer(changed.json()))).status_code == 200
    assert (await _refresh(client, _refresh_cookie(changed))).status_code == 200
    old_login = await client.post("/api/auth/login", json={"username": "cara", "password": "first-pass-1"})
    assert old_login.status_code == 401


async def test_guessing_the_current_password_is_throttled(db_url: str) -> None:
    settings = make_settings(db_url, login_free_attempts=3, login_backoff_base_s=600,
                             rate_limit_enabled=True)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            c.app = app  # type: ignore[attr-defined]
            user = await register_user(c, "thief", password="real-pass-1", verify=False)
            codes = []
            for n in range(6):
                r = await c.post("/api/auth/change-password", headers=user["headers"],
                                 json={"current_password": f"guess-{n}-x1",
                                       "new_password": "mine-now-1"})
                codes.append(r.json()["error"]["code"])
    assert codes[:4] == ["wrong_current_password"] * 4
    assert codes[4:] == ["login_locked"] * 2


@pytest.fixture
async def two_apps(db_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two app instances on one database, as behind a load balancer."""
    clients = []
    apps = [create_app(make_settings(db_url)) for _ in range(2)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        for app in apps:
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            client.app = app  # type: ignore[attr-defined]
            clients.append(client)
        try:
            yield clients[0], clients[1]
        finally:
            for client in clients:
                await client.aclose()


async def test_revocation_in_one_process_holds_in_another(
    two_apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two_apps
    user = await register_user(a, "multi", verify=False)
    assert (await _me(b, user["headers"])).status_code == 200
    assert (await a.post("/api/auth/logout-all", headers=user["headers"])).status_code == 204
    r = await _me(b, user["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (401, "session_revoked")
