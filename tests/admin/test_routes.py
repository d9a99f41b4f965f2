"""The operators' API: user detail, payments, webhook inbox, and the chart numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from tokenbank.auth.models import User
from tokenbank.ledger import service as ledger
from tokenbank.payments.models import Payment, WebhookEvent

from support import register_user

pytestmark = pytest.mark.anyio

ADMIN_GETS = [
    "/api/admin/users",
    "/api/admin/users/1",
    "/api/admin/payments",
    "/api/admin/webhooks",
    "/api/admin/stats",
]


async def _admin(client: httpx.AsyncClient) -> dict[str, object]:
    admin = await register_user(client)
    async with client.app.state.db.transaction() as s:  # type: ignore[attr-defined]
        await s.execute(
            update(User)
            .where(User.id == admin["user"]["id"])  # type: ignore[index]
            .values(is_admin=True)
        )
    return admin


async def _buy_and_spend(
    client: httpx.AsyncClient, user_id: int, pi: str, tokens: int, cents: int, spend: int
) -> None:
    async with client.app.state.db.transaction() as s:  # type: ignore[attr-defined]
        s.add(
            Payment(
                user_id=user_id,
                tier="starter",
                tokens=tokens,
                amount_cents=cents,
                currency="usd",
                stripe_payment_intent_id=pi,
                status="succeeded",
                tokens_credited=tokens,
            )
        )
        await ledger.credit_purchase(s, user_id, tokens, pi, "pack")
        for i in range(spend):
            await ledger.spend(s, user_id, 1, "AI reply", idempotency_key=f"{pi}-{i}")


async def test_stats_user_detail_payments_and_inbox(client: httpx.AsyncClient) -> None:
    admin = await _admin(client)
    h = admin["headers"]
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    await _buy_and_spend(client, alice["user"]["id"], "pi_alice", 100, 500, spend=7)
    await _buy_and_spend(client, bob["user"]["id"], "pi_bob", 500, 2000, spend=3)
    async with client.app.state.db.transaction() as s:  # type: ignore[attr-defined]
        s.add(
            WebhookEvent(
                id="evt_1",
                type="payment_intent.succeeded",
                status="failed",
                attempts=2,
                last_error="boom",
                payload={},
            )
        )

    stats = (await client.get("/api/admin/stats", params={"days": 7}, headers=h)).json()
    today = datetime.now(UTC).date().isoformat()
    assert stats["daily"] == [
        {"day": today, "tokens_sold": 600, "tokens_used": 10, "revenue_cents": 2500}
    ]
    assert [(t["username"], t["tokens_used"]) for t in stats["top_spenders"]] == [
        ("alice", 7),
        ("bob", 3),
    ]

    found = (await client.get("/api/admin/users", params={"query": "ali"}, headers=h)).json()
    assert [(u["username"], u["balance"], u["spent"]) for u in found] == [("alice", 103, 7)]

    detail = (await client.get(f"/api/admin/users/{alice['user']['id']}", headers=h)).json()
    assert detail["balance"]["balance"] == 103
    assert [p["stripe_payment_intent_id"] for p in detail["payments"]] == ["pi_alice"]
    assert detail["transactions"][0]["transaction_type"] == "deduction"

    pays = (
        await client.get("/api/admin/payments", params={"status": "succeeded"}, headers=h)
    ).json()
    assert {p["username"] for p in pays} == {"alice", "bob"}
    inbox = (await client.get("/api/admin/webhooks", params={"status": "failed"}, headers=h)).json()
    assert [(e["id"], e["last_error"]) for e in inbox] == [("evt_1", "boom")]


async def test_admin_reads_need_an_admin(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    for path in ADMIN_GETS:
        r = await client.get(path, headers=user["headers"])
        assert (r.status_code, r.json()["error"]["code"]) == (403, "admin_required"), path
        assert (await client.get(path)).status_code == 401, path


async def test_bad_admin_filters_are_422(client: httpx.AsyncClient) -> None:
    admin = await _admin(client)
    for path, params in [
        ("/api/admin/stats", {"days": 0}),
        ("/api/admin/payments", {"status": "bogus"}),
        ("/api/admin/users", {"limit": 100000}),
    ]:
        r = await client.get(path, params=params, headers=admin["headers"])
        assert r.status_code == 422, path
