"""The service API's contract, on SQLite and PostgreSQL: every endpoint, its scopes, its
idempotency (replays, concurrent replays, a key reused for something else), customers
isolated from each other, and a revoked key refused at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tokenbank.ledger import service as ledger
from v1.kit import balance, make_customer, make_key

from conftest import app_client
from support import record_statements, register_user

pytestmark = pytest.mark.anyio


async def test_customers_are_created_on_first_use_and_updated_after(
    client: httpx.AsyncClient,
) -> None:
    key = await make_key(client)
    r = await client.put("/api/v1/customers/auth0|42", json={"email": "Ada@Example.com"},
                         headers=key)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["created"] is True and first["email"] == "ada@example.com"
    assert first["external_id"] == "auth0|42" and first["name"] is None
    r = await client.put("/api/v1/customers/auth0|42", json={"name": "Ada"}, headers=key)
    assert r.json()["created"] is False
    assert (r.json()["email"], r.json()["name"]) == ("ada@example.com", "Ada")
    r = await client.put("/api/v1/customers/auth0|42", headers=key)  # no body: unchanged
    assert r.status_code == 200 and r.json()["name"] == "Ada"
    assert await balance(client, key, "auth0|42") == {
        "external_id": "auth0|42", "balance": 0, "reserved": 0, "available": 0}
    r = await client.get("/api/v1/customers/nobody/balance", headers=key)
    assert r.status_code == 404 and r.json()["error"]["code"] == "customer_not_found"
    r = await client.post("/api/v1/customers/nobody/charges", headers=key,
                          json={"amount": 1, "idempotency_key": "k"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "customer_not_found"


async def test_a_customer_cannot_sign_in_and_no_sign_up_can_take_its_name(
    client: httpx.AsyncClient,
) -> None:
    key = await make_key(client)
    await client.put("/api/v1/customers/7", headers=key)
    from tokenbank.v1.service import username_for
    name = username_for("7")
    for password in ("", "x" * 8):
        r = await client.post("/api/auth/login", json={"username": name, "password": password or "p"})
        assert r.status_code in (401, 422)
    r = await client.post("/api/auth/register", json={
        "username": name, "email": f"{name[1:]}@customers.invalid", "password": "s3cret-pass"})
    assert r.status_code == 422


async def test_concurrent_puts_make_one_customer(client: httpx.AsyncClient) -> None:
    key = await make_key(client)
    answers = await asyncio.gather(*[
        client.put("/api/v1/customers/racer", json={"name": "R"}, headers=key) for _ in range(8)])
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["created"] for a in answers) == 1
    r = await client.post("/api/v1/customers/racer/grants", headers=key,
                          json={"amount": 5, "idempotency_key": "g", "reason": "welcome"})
    assert r.json()["balance"]["balance"] == 5


async def test_grant_and_charge_are_idempotent_and_refuse_overdraft(
    client: httpx.AsyncClient,
) -> None:
    key = await make_key(client)
    cid = await make_customer(client, key)
    grant = {"amount": 10, "idempotency_key": "promo-1", "reason": "promo"}
    first = (await client.post(f"/api/v1/customers/{cid}/grants", json=grant, headers=key)).json()
    again = (await client.post(f"/api/v1/customers/{cid}/grants", json=grant, headers=key)).json()
    assert first["transaction"]["id"] == again["transaction"]["id"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["balance"]["balance"] == 10
    assert first["transaction"]["transaction_type"] == "grant"
    r = await client.post(f"/api/v1/customers/{cid}/grants", headers=key,
                          json={**grant, "amount": 11})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"

    charge = {"amount": 4, "idempotency_key": "reply-1", "description": "a reply"}
    r1 = await client.post(f"/api/v1/customers/{cid}/charges", json=charge, headers=key)
    r2 = await client.post(f"/api/v1/customers/{cid}/charges", json=charge, headers=key)
    assert r1.status_code == r2.status_code == 200
    assert r1.json()["transaction"]["id"] == r2.json()["transaction"]["id"]
    assert r2.json()["balance"]["balance"] == 6
    r = await client.post(f"/api/v1/customers/{cid}/charges", headers=key,
                          json={"amount": 7, "idempotency_key": "reply-2"})
    assert r.status_code == 402
    assert r.json()["error"] | {"message": None} == {
        "code": "insufficient_tokens", "message": None, "balance": 6, "required": 7}
    # The same key, used for a grant and for a charge, names two different writes.
    r = await client.post(f"/api/v1/customers/{cid}/charges", headers=key,
                          json={"amount": 1, "idempotency_key": "promo-1"})
    assert r.status_code == 200 and r.json()["balance"]["balance"] == 5
    r = await client.post(f"/api/v1/customers/{cid}/charges", headers=key,
                          json={"amount": 2, "idempotency_key": "reply-1"})
    assert r.status_code == 409
    assert (await balance(client, key, cid))["balance"] == 5


async def test_hold_commit_less_release_the_rest(client: httpx.AsyncClient) -> None:
    key = await make_key(client)
    cid = await make_customer(client, key, tokens=20)
    body = {"amount": 8, "idempotency_key": "gen-1", "ttl_s": 120, "description": "answer"}
    r = await client.post(f"/api/v1/customers/{cid}/holds", json=body, headers=key)
    assert r.status_code == 200, r.text
    hold = r.json()
    assert (hold["status"], hold["amount"], hold["external_id"]) == ("pending", 8, cid)
    assert (await balance(client, key, cid)) | {"external_id": None} == {
        "external_id": None, "balance": 20, "reserved": 8, "available": 12}
    replay = (await client.post(f"/api/v1/customers/{cid}/holds", json=body, headers=key)).json()
    assert replay["id"] == hold["id"] and replay["replayed"] is True
    r = await client.post(f"/api/v1/customers/{cid}/holds", headers=key,
                          json={**body, "amount": 9})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"

    r = await client.post(f"/api/v1/holds/{hold['id']}/commit", json={"amount": 3}, headers=key)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["charged"], done["released"], done["available"]) == (3, 5, 17)
    assert done["hold"]["status"] == "committed" and done["replayed"] is False
    assert done["transaction"] | {"id": 0, "created_at": 0} == {
        "id": 0, "created_at": 0, "transaction_type": "deduction", "amount": -3,
        "balance_after": 17, "description": "answer", "hold_id": hold["id"]}
    again = (await client.post(f"/api/v1/holds/{hold['id']}/commit", json={"amount": 3},
                               headers=key)).json()
    assert again["transaction"]["id"] == done["transaction"]["id"] and again["replayed"]
    r = await client.post(f"/api/v1/holds/{hold['id']}/commit", json={"amount": 4}, headers=key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
    r = await client.post(f"/api/v1/holds/{hold['id']}/release", headers=key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "reservation_not_pending"
    assert await balance(client, key, cid) == {
        "external_id": cid, "balance": 17, "reserved": 0, "available": 17}

    h2 = (await client.post(f"/api/v1/customers/{cid}/holds", headers=key,
                            json={"amount": 5, "idempotency_key": "gen-2"})).json()
    r = await client.post(f"/api/v1/holds/{h2['id']}/commit", json={"amount": 6}, headers=key)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_amount"
    first = (await client.post(f"/api/v1/holds/{h2['id']}/release", headers=key)).json()
    second = (await client.post(f"/api/v1/holds/{h2['id']}/release", headers=key)).json()
    assert (first["released"], second["released"]) == (True, False)
    assert second["hold"]["status"] == "released"
    r = await client.post(f"/api/v1/holds/{h2['id']}/commit", headers=key)
    assert r.status_code == 409
    full = (await client.post(f"/api/v1/customers/{cid}/holds", headers=key,
                              json={"amount": 17, "idempotency_key": "gen-3"})).json()
    r = await client.post(f"/api/v1/customers/{cid}/holds", headers=key,
                          json={"amount": 1, "idempotency_key": "gen-4"})
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_tokens"
    done = (await client.post(f"/api/v1/holds/{full['id']}/commit", headers=key)).json()
    assert (done["charged"], done["released"], done["available"]) == (17, 0, 0)
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        assert await ledger.check(session) == []


async def test_racing_holds_never_hold_more_than_the_balance(client: httpx.AsyncClient) -> None:
    """Each hold locks its customer's account in the statement that finds the customer:
    holds racing on one account still take turns, and never overdraw it."""
    key = await make_key(client)
    cid = await make_customer(client, key, tokens=20)
    answers = await asyncio.gather(*[
        client.post(f"/api/v1/customers/{cid}/holds", headers=key,
                    json={"amount": 3, "idempotency_key": f"race-{n}"})
        for n in range(10)])
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 6 + [402] * 4, [a.text for a in answers]
    assert await balance(client, key, cid) == {
        "external_id": cid, "balance": 20, "reserved": 18, "available": 2}
    held = [a.json()["id"] for a in answers if a.status_code == 200]
    commits = await asyncio.gather(*[
        client.post(f"/api/v1/holds/{h}/commit", headers=key) for h in held])
    assert all(c.status_code == 200 for c in commits), [c.text for c in commits]
    assert await balance(client, key, cid) == {
        "external_id": cid, "balance": 2, "reserved": 0, "available": 2}
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        assert await ledger.check(session) == []


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_hold_and_its_commit_are_nine_statements(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every round trip costs both processes CPU: a hold is the key's read, BEGIN, the
    customer's look-up that also locks its account, the hold, COMMIT; a commit is the
    key's read with the hold's, BEGIN, the commit, COMMIT. The rate limit is off here
    (with it, a Redis call or a transaction of its own per request)."""
    key = await make_key(client)
    cid = await make_customer(client, key, tokens=20)
    sent = record_statements(monkeypatch)
    r = await client.post(f"/api/v1/customers/{cid}/holds", headers=key,
                          json={"amount": 2, "idempotency_key": "counted"})
    assert r.status_code == 200, r.text
    assert sent == ["SELECT", "BEGIN", "WITH", "WITH", "COMMIT"]
    sent.clear()
    r = await client.post(f"/api/v1/holds/{r.json()['id']}/commit", headers=key)
    assert r.status_code == 200 and r.json()["available"] == 18, r.text
    assert sent == ["SELECT", "BEGIN", "WITH", "COMMIT"]


async def test_concurrent_replays_write_once(client: httpx.AsyncClient) -> None:
    key = await make_key(client)
    cid = await make_customer(client, key, tokens=100)
    hold = {"amount": 7, "idempotency_key": "same-hold"}
    charge = {"amount": 3, "idempotency_key": "same-charge"}
    grant = {"amount": 2, "idempotency_key": "same-grant", "reason": "r"}
    answers = await asyncio.gather(
        *[client.post(f"/api/v1/customers/{cid}/holds", json=hold, headers=key)
          for _ in range(6)],
        *[client.post(f"/api/v1/customers/{cid}/charges", json=charge, headers=key)
          for _ in range(6)],
        *[client.post(f"/api/v1/customers/{cid}/grants", json=grant, headers=key)
          for _ in range(6)],
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers[:6]}) == 1
    assert len({a.json()["transaction"]["id"] for a in answers[6:12]}) == 1
    assert len({a.json()["transaction"]["id"] for a in answers[12:]}) == 1
    assert await balance(client, key, cid) == {
        "external_id": cid, "balance": 99, "reserved": 7, "available": 92}
    hold_id = answers[0].json()["id"]
    commits = await asyncio.gather(*[
        client.post(f"/api/v1/holds/{hold_id}/commit", headers=key) for _ in range(6)])
    assert all(c.status_code == 200 for c in commits), [c.text for c in commits]
    assert len({c.json()["transaction"]["id"] for c in commits}) == 1
    assert await balance(client, key, cid) == {
        "external_id": cid, "balance": 92, "reserved": 0, "available": 92}


async def test_transactions_are_the_customers_own_newest_first(client: httpx.AsyncClient) -> None:
    key = await make_key(client)
    alice, bob = await make_customer(client, key, 10), await make_customer(client, key, 5)
    for i in range(3):
        await client.post(f"/api/v1/customers/{alice}/charges", headers=key,
                          json={"amount": 1, "idempotency_key": f"c{i}", "description": f"#{i}"})
    seen, before = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"before": before} if before else {})
        page = (await client.get(f"/api/v1/customers/{alice}/transactions", params=params,
                                 headers=key)).json()
        seen += [(t["transaction_type"], t["amount"]) for t in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [("deduction", -1)] * 3 + [("grant", 10)]
    bob_items = (await client.get(f"/api/v1/customers/{bob}/transactions", headers=key)).json()
    assert [t["amount"] for t in bob_items["items"]] == [5]


async def test_holds_of_others_are_not_found(client: httpx.AsyncClient) -> None:
    """Only holds of the host's customers exist here: a chat user's hold is 404, as is an
    unknown id; and nothing of theirs changes."""
    key = await make_key(client)
    user = await register_user(client)
    uid = int(user["user"]["id"])
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        theirs = await ledger.reserve(session, uid, 1, idempotency_key="chat-1", ttl_s=60)
    for path in (f"/api/v1/holds/{theirs.id}/commit", f"/api/v1/holds/{theirs.id}/release",
                 "/api/v1/holds/999999/commit", "/api/v1/holds/999999/release"):
        r = await client.post(path, headers=key)
        assert r.status_code == 404 and r.json()["error"]["code"] == "hold_not_found", path
    r = await client.get(f"/api/v1/holds/{theirs.id}", headers=key)
    assert r.status_code == 404
    tokens = (await client.get("/api/payment/user/tokens", headers=user["headers"])).json()
    assert tokens["reserved"] == 1


ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("PUT", "/api/v1/customers/{cid}", None, "write"),
    ("GET", "/api/v1/customers/{cid}/balance", None, "read"),
    ("GET", "/api/v1/customers/{cid}/transactions", None, "read"),
    ("GET", "/api/v1/customers/{cid}/subscription", None, "read"),
    ("GET", "/api/v1/holds/{hold}", None, "read"),
    ("POST", "/api/v1/customers/{cid}/holds", {"amount": 1, "idempotency_key": "s1"}, "charge"),
    ("POST", "/api/v1/holds/{hold}/commit", {}, "charge"),
    ("POST", "/api/v1/holds/{hold}/release", None, "charge"),
    ("POST", "/api/v1/customers/{cid}/charges", {"amount": 1, "idempotency_key": "s2"},
     "charge"),
    ("POST", "/api/v1/customers/{cid}/grants",
     {"amount": 1, "idempotency_key": "s3", "reason": "r"}, "grant"),
    ("POST", "/api/v1/customers/{cid}/purchases",
     {"tier": "starter", "idempotency_key": "s4", "return_url": "https://host.test/back"},
     "checkout"),
]


async def test_every_endpoint_needs_a_key_with_its_scope(client: httpx.AsyncClient) -> None:
    admin_key = await make_key(client)
    cid = await make_customer(client, admin_key, tokens=10)
    hold = (await client.post(f"/api/v1/customers/{cid}/holds", headers=admin_key,
                              json={"amount": 1, "idempotency_key": "h"})).json()
    user = await register_user(client)
    for method, template, body, needs in ENDPOINTS:
        path = template.format(cid=cid, hold=hold["id"])
        kw: dict[str, Any] = {} if body is None else {"json": body}
        r = await client.request(method, path, **kw)
        assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_required", path
        r = await client.request(method, path, headers=user["headers"], **kw)  # a user's JWT
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", path
        r = await client.request(method, path, headers={"Authorization": "Bearer tbk_nope"}, **kw)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", path
        for scope in ("read", "charge", "grant", "checkout"):
            allowed = scope == needs or (needs == "write" and scope != "read")
            r = await client.request(method, path, headers=await make_key(client, scope), **kw)
            if allowed:
                assert r.json().get("error", {}).get("code") != "insufficient_scope", (path, scope)
            else:
                assert r.status_code == 403, (path, scope, r.text)
                assert r.json()["error"]["code"] == "insufficient_scope"
    # Refused calls changed nothing; each allowed one did its work once: the grant +1,
    # the commit of the first hold -1, the charge -1, and the new hold holds 1.
    assert await balance(client, admin_key, cid) == {
        "external_id": cid, "balance": 9, "reserved": 1, "available": 8}


async def test_a_revoked_key_is_refused_at_once_in_every_process(settings: Any) -> None:
    """Two app processes' worth of state (two apps on one database): revoked through one
    admin route, the key's very next request to the other is refused."""
    async with app_client(settings) as one, app_client(settings) as two:
        admin = await register_user(one)
        async with one.app.state.db.transaction() as session:  # type: ignore[attr-defined]
            from sqlalchemy import update

            from tokenbank.auth.models import User
            await session.execute(update(User).where(User.id == admin["user"]["id"])
                                  .values(is_admin=True))
        made = await one.post("/api/admin/api-keys", headers=admin["headers"],
                              json={"name": "backend", "scopes": ["read", "charge"]})
        assert made.status_code == 201, made.text
        key_id, secret = made.json()["key"]["id"], made.json()["secret"]
        assert secret.startswith("tbk_") and made.json()["key"]["prefix"] == secret[:12]
        key = {"Authorization": f"Bearer {secret}"}
        assert (await two.put("/api/v1/customers/c1", headers=key)).status_code == 200
        assert (await two.get("/api/v1/customers/c1/balance", headers=key)).status_code == 200
        listed = (await one.get("/api/admin/api-keys", headers=admin["headers"])).json()
        assert [k["id"] for k in listed["items"]] == [key_id]
        assert "secret" not in listed["items"][0] and listed["items"][0]["active"]

        r = await one.post(f"/api/admin/api-keys/{key_id}/revoke", headers=admin["headers"])
        assert r.status_code == 200 and r.json()["active"] is False
        r = await two.get("/api/v1/customers/c1/balance", headers=key)
        assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_revoked"
        r = await one.post(f"/api/admin/api-keys/{key_id}/rotate", headers=admin["headers"])
        assert r.status_code == 409 and r.json()["error"]["code"] == "api_key_not_active"


async def test_rotation_gives_a_new_secret_and_ends_the_old(client: httpx.AsyncClient) -> None:
    admin = await register_user(client)
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        from sqlalchemy import update

        from tokenbank.auth.models import User
        await session.execute(update(User).where(User.id == admin["user"]["id"])
                              .values(is_admin=True))
    made = (await client.post("/api/admin/api-keys", headers=admin["headers"],
                              json={"name": "n", "scopes": ["read"]})).json()
    old = {"Authorization": f"Bearer {made['secret']}"}
    await client.put("/api/v1/customers/x", headers=await make_key(client, "charge"))
    assert (await client.get("/api/v1/customers/x/balance", headers=old)).status_code == 200
    r = await client.post(f"/api/admin/api-keys/{made['key']['id']}/rotate",
                          headers=admin["headers"])
    assert r.status_code == 201, r.text
    rotated = r.json()
    assert rotated["key"]["scopes"] == ["read"] and rotated["key"]["name"] == "n"
    assert rotated["key"]["rotated_from_id"] == made["key"]["id"]
    new = {"Authorization": f"Bearer {rotated['secret']}"}
    assert (await client.get("/api/v1/customers/x/balance", headers=old)).status_code == 401
    assert (await client.get("/api/v1/customers/x/balance", headers=new)).status_code == 200
    r = await client.post("/api/admin/api-keys", headers=admin["headers"],
                          json={"name": "n", "scopes": ["root"]})
    assert r.status_code == 422
    user = await register_user(client)
    r = await client.get("/api/admin/api-keys", headers=user["headers"])
    assert r.status_code == 403


async def test_each_key_has_its_own_rate_limit(db_url: str) -> None:
    from conftest import make_settings

    settings = make_settings(db_url, rate_limit_enabled=True, rate_limit_api_key_per_min=3)
    async with app_client(settings) as client:
        busy, calm = await make_key(client), await make_key(client)
        await client.put("/api/v1/customers/c", headers=busy)
        codes = [(await client.get("/api/v1/customers/c/balance", headers=busy)).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        r = await client.get("/api/v1/customers/c/balance", headers=busy)
        assert r.json()["error"]["code"] == "rate_limited" and "Retry-After" in r.headers
        assert (await client.get("/api/v1/customers/c/balance", headers=calm)).status_code == 200


async def test_an_expired_hold_cannot_be_committed(client: httpx.AsyncClient) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from tokenbank.ledger.models import TokenReservation
    from tokenbank.types import utcnow

    key = await make_key(client)
    cid = await make_customer(client, key, tokens=5)
    hold = (await client.post(f"/api/v1/customers/{cid}/holds", headers=key,
                              json={"amount": 2, "idempotency_key": "late", "ttl_s": 60})).json()
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        await session.execute(update(TokenReservation).where(TokenReservation.id == hold["id"])
                              .values(expires_at=utcnow() - timedelta(seconds=1)))
    r = await client.post(f"/api/v1/holds/{hold['id']}/commit", headers=key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "reservation_expired"
    assert (await balance(client, key, cid))["balance"] == 5
    r = await client.post(f"/api/v1/holds/{hold['id']}/release", headers=key)
    assert r.status_code == 200 and r.json()["released"] is True  # the sweeper's work, now
    assert await balance(client, key, cid) == {
        "external_id": cid, "balance": 5, "reserved": 0, "available": 5}
