"""Accounts over HTTP: register, sign in, me; validation; uniform errors; tokens in JWTs."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import jwt
import pytest

from conftest import TEST_JWT_SECRET
from support import register_user, verify_email

pytestmark = pytest.mark.anyio


async def test_register_login_me_and_signup_bonus(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/api/auth/register",
        json={"username": "ada", "email": "Ada@Example.com", "password": "analytical1"},
    )
    assert resp.status_code == 201
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["user"] == {"id": body["user"]["id"], "username": "ada", "email": "ada@example.com",
                            "email_verified": False, "locale": "en"}
    unverified = {"Authorization": f"Bearer {body['access_token']}"}
    tokens = (await client.get("/api/payment/user/tokens", headers=unverified)).json()
    assert tokens["balance"] == 0  # no bonus before the address is verified
    await verify_email(client, body["user"]["id"])
    for login in ("ada", "ada@example.com", "ADA@example.com"):
        r = await client.post("/api/auth/login", json={"username": login, "password": "analytical1"})
        assert r.status_code == 200, login
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = (await client.get("/api/auth/me", headers=headers)).json()
    assert me["username"] == "ada" and me["is_admin"] is False and "created_at" in me
    tokens = (await client.get("/api/payment/user/tokens", headers=headers)).json()
    assert tokens["balance"] == 10 and tokens["available"] == 10 and tokens["reserved"] == 0
    alias = (await client.get("/api/user/tokens", headers=headers)).json()
    assert alias["balance"] == 10
    history = (await client.get("/api/payment/user/transactions", headers=headers)).json()
    assert [(t["transaction_type"], t["amount"]) for t in history["items"]] == [("grant", 10)]


async def test_duplicates_are_409_with_codes(client: httpx.AsyncClient) -> None:
    await register_user(client, "grace")
    r = await client.post("/api/auth/register",
                          json={"username": "grace", "email": "other@example.com",
                                "password": "compiler1"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "username_taken")
    r = await client.post("/api/auth/register",
                          json={"username": "grace2", "email": "GRACE@example.com",
                                "password": "compiler1"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "email_taken")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "a", "email": "a@example.com", "password": "longenough1"}, "username"),
        ({"username": "has space", "email": "a@example.com", "password": "longenough1"},
         "username"),
        ({"username": "okname", "email": "not-an-email", "password": "longenough1"}, "email"),
        ({"username": "okname", "email": "a@example.com", "password": "short1"}, "password"),
        ({"username": "okname", "email": "a@example.com", "password": "nodigitshere"},
         "password"),
        ({"username": "okname", "email": "a@example.com", "password": "x" * 500}, "password"),
        ({"username": "okname", "email": "a@example.com"}, "password"),
        ({"username": 5, "email": "a@example.com", "password": "longenough1"}, "username"),
    ],
)
async def test_bad_registration_is_422_with_a_reason(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    r = await client.post("/api/auth/register", json=body)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith(field)


async def test_malformed_json_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/register", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


async def test_wrong_credentials_are_uniform_401(client: httpx.AsyncClient) -> None:
    await register_user(client, "linus", password="kernel123")
    wrong_password = await client.post("/api/auth/login",
                                       json={"username": "linus", "password": "nope12345"})
    unknown_user = await client.post("/api/auth/login",
                                     json={"username": "nobody", "password": "nope12345"})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json() == unknown_user.json()
    assert wrong_password.json()["error"]["code"] == "invalid_credentials"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_and_expired_tokens_are_401(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    uid = str(user["user"]["id"])
    now = int(time.time())
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': uid, 'iat': now, 'exp': now + 60, 'typ': 'access'})}."
    bad_signature = jwt.encode({"sub": uid, "iat": now, "exp": now + 60, "typ": "access"},
                               "another-secret-entirely-0123456789", algorithm="HS256")
    expired = jwt.encode({"sub": uid, "iat": now - 120, "exp": now - 60, "typ": "access"},
                         TEST_JWT_SECRET, algorithm="HS256")
    for token in (alg_none, bad_signature, expired, "garbage", ""):
        r = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.json()["error"]["code"] in ("invalid_token", "not_authenticated")
    assert (await client.get("/api/auth/me")).status_code == 401


async def test_retried_registration_grants_the_bonus_once(client: httpx.AsyncClient) -> None:
    body = {"username": "retry", "email": "retry@example.com", "password": "again1234"}
    responses = await asyncio.gather(
        *(client.post("/api/auth/register", json=body) for _ in range(5))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409]
    login = await client.post("/api/auth/login",
                              json={"username": "retry", "password": "again1234"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    user_id = login.json()["user"]["id"]
    await asyncio.gather(*(verify_email(client, user_id) for _ in range(3)))
    history = (await client.get("/api/payment/user/transactions", headers=headers)).json()
    assert [t["transaction_type"] for t in history["items"]] == ["grant"]
    assert (await client.get("/api/user/tokens", headers=headers)).json()["balance"] == 10
