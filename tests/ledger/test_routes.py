"""Balance, history and admin token routes over HTTP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from tokenbank.auth.models import User

from support import register_user

pytestmark = pytest.mark.anyio


async def make_admin(client: httpx.AsyncClient) -> dict[str, object]:
    admin = await register_user(client)
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        await session.execute(update(User).where(User.id == admin["user"]["id"])  # type: ignore[index]
                              .values(is_admin=True))
    return admin


async def test_history_is_keyset_paginated(client: httpx.AsyncClient) -> None:
    admin = await make_admin(client)
    user = await register_user(client)
    uid = user["user"]["id"]
    for i in range(1, 6):
        r = await client.post(f"/api/admin/users/{uid}/tokens", headers=admin["headers"],
                              json={"amount": i, "reason": f"promo {i}"})
        assert r.status_code == 200, r.text
    seen: list[int] = []
    before = None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        page = (await client.get("/api/payment/user/transactions", params=params,
                                 headers=user["headers"])).json()
        seen += [t["amount"] for t in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [5, 4, 3, 2, 1, 10]


async def test_admin_grant_and_adjust_record_reason_and_type(client: httpx.AsyncClient) -> None:
    admin = await make_admin(client)
    user = await register_user(client)
    uid = user["user"]["id"]
    r = await client.post(f"/api/admin/users/{uid}/tokens", headers=admin["headers"],
                          json={"amount": 25, "reason": "support goodwill"})
    assert r.json()["transaction"]["transaction_type"] == "grant"
    r = await client.post(f"/api/admin/users/{uid}/tokens", headers=admin["headers"],
                          json={"amount": -5, "reason": "double grant fix"})
    assert r.json()["transaction"]["transaction_type"] == "adjustment"
    assert r.json()["balance"]["balance"] == 30
    r = await client.post(f"/api/admin/users/{uid}/tokens", headers=admin["headers"],
                          json={"amount": -100, "reason": "too much"})
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_tokens"
    listed = (await client.get("/api/admin/users", params={"query": user["user"]["username"]},
                               headers=admin["headers"])).json()
    assert [(u["id"], u["balance"]) for u in listed] == [(uid, 30)]


@pytest.mark.parametrize(
    "body",
    [{"amount": 0, "reason": "zero"}, {"amount": 1.5, "reason": "half"},
     {"amount": "ten", "reason": "text"}, {"amount": 10**15, "reason": "huge"},
     {"amount": 5}, {"amount": 5, "reason": ""}],
)
async def test_admin_bad_amounts_are_refused(client: httpx.AsyncClient,
                                             body: dict[str, object]) -> None:
    admin = await make_admin(client)
    user = await register_user(client)
    r = await client.post(f"/api/admin/users/{user['user']['id']}/tokens",
                          headers=admin["headers"], json=body)
    assert r.status_code == 422
    assert r.json()["error"]["code"] in ("validation_error", "invalid_amount")
    bal = (await client.get("/api/user/tokens", headers=user["headers"])).json()["balance"]
    assert bal == 10


async def test_admin_routes_need_an_admin(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    r = await client.get("/api/admin/users", headers=user["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "admin_required")
    r = await client.post(f"/api/admin/users/{user['user']['id']}/tokens",
                          headers=user["headers"], json={"amount": 100, "reason": "self-help"})
    assert r.status_code == 403
    assert (await client.get("/api/admin/users")).status_code == 401


async def test_admin_grant_to_unknown_user_is_404(client: httpx.AsyncClient) -> None:
    admin = await make_admin(client)
    r = await client.post("/api/admin/users/999999/tokens", headers=admin["headers"],
                          json={"amount": 1, "reason": "ghost"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "user_not_found")


async def test_health_and_unknown_api_route(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.json() == {"status": "ok"}
    assert r.headers["x-content-type-options"] == "nosniff"
    r = await client.get("/api/does-not-exist")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


async def test_a_history_item_shows_the_public_fields_of_the_entry_and_no_other(
    client: httpx.AsyncClient,
) -> None:
    """Read from the ledger's record by attribute: its values, and never its idempotency
    key (it holds the admin's id and key) or its actor."""
    admin = await make_admin(client)
    user = await register_user(client)
    uid = user["user"]["id"]
    headers = admin["headers"] | {"Idempotency-Key": "grant-7"}  # type: ignore[operator]
    r = await client.post(f"/api/admin/users/{uid}/tokens", headers=headers,
                          json={"amount": 7, "reason": "a promise kept"})
    assert r.status_code == 200, r.text
    granted = r.json()["transaction"]
    item = (await client.get("/api/payment/user/transactions", params={"limit": 1},
                             headers=user["headers"])).json()["items"][0]
    assert item == granted
    assert set(item) == {"id", "transaction_type", "amount", "balance_after", "description",
                         "stripe_payment_intent_id", "created_at"}
    assert (item["transaction_type"], item["amount"], item["balance_after"]) == ("grant", 7, 17)
    assert item["description"] == "a promise kept"
    balance = (await client.get("/api/user/tokens", headers=user["headers"])).json()
    assert balance == r.json()["balance"] | {"updated_at": balance["updated_at"]}
    assert (balance["balance"], balance["reserved"], balance["available"]) == (17, 0, 17)
