"""The lots over HTTP: the user's own, and an admin's view of anyone's."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from ledger.test_routes import make_admin
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.types import utcnow

from support import register_user

pytestmark = pytest.mark.anyio


async def test_a_user_sees_their_lots_newest_first(client: httpx.AsyncClient) -> None:
    admin = await make_admin(client)
    user = await register_user(client)
    uid = user["user"]["id"]
    r = await client.post(
        f"/api/admin/users/{uid}/tokens",
        headers=admin["headers"],
        json={"amount": 25, "reason": "goodwill"},
    )
    assert r.status_code == 200, r.text
    expires = utcnow() + timedelta(days=60)
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        await ledger.credit_allotment(
            session,
            uid,
            300,
            idempotency_key=keys.allotment("in_1"),
            expires_at=expires,
            description="monthly",
        )
        await ledger.spend(session, uid, 40, "replies", idempotency_key="s")
    r = await client.get("/api/payment/user/lots", headers=user["headers"])
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert set(items[0]) == {
        "id",
        "source",
        "amount",
        "remaining",
        "priority",
        "expires_at",
        "created_at",
    }
    assert [(i["source"], i["amount"], i["remaining"], i["priority"]) for i in items] == [
        ("allotment", 300, 260, 10),
        ("grant", 25, 25, 20),
        ("grant", 10, 10, 20),  # the sign-up bonus
    ]
    assert items[0]["expires_at"] is not None and items[1]["expires_at"] is None
    # The admin sees the same; another user sees only their own (their sign-up bonus).
    r = await client.get(f"/api/admin/users/{uid}/lots", headers=admin["headers"])
    assert r.json()["items"] == items
    other = await register_user(client)
    r = await client.get("/api/payment/user/lots", headers=other["headers"])
    assert [(i["source"], i["amount"]) for i in r.json()["items"]] == [("grant", 10)]
    assert {i["id"] for i in r.json()["items"]}.isdisjoint(i["id"] for i in items)


async def test_active_lots_leave_out_spent_ones(client: httpx.AsyncClient) -> None:
    admin = await make_admin(client)
    user = await register_user(client)
    uid = user["user"]["id"]
    for amount in (5, 7):
        await client.post(
            f"/api/admin/users/{uid}/tokens",
            headers=admin["headers"],
            json={"amount": amount, "reason": "goodwill"},
        )
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        await ledger.spend(session, uid, 10, "replies", idempotency_key="s")  # the oldest
    r = await client.get("/api/payment/user/lots?active=true", headers=user["headers"])
    assert [(i["amount"], i["remaining"]) for i in r.json()["items"]] == [(7, 7), (5, 5)]
    r = await client.get("/api/payment/user/lots", headers=user["headers"])
    assert [(i["amount"], i["remaining"]) for i in r.json()["items"]] == [(7, 7), (5, 5), (10, 0)]


async def test_admin_lots_of_an_unknown_user_is_404_and_users_are_refused(
    client: httpx.AsyncClient,
) -> None:
    admin = await make_admin(client)
    r = await client.get("/api/admin/users/999999/lots", headers=admin["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (404, "user_not_found")
    user = await register_user(client)
    r = await client.get(f"/api/admin/users/{user['user']['id']}/lots", headers=user["headers"])
    assert r.status_code == 403
