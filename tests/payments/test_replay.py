"""Replaying an event: the operator's "process again" and ``tokenbank webhooks replay``."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from payments.kit import PayEnv
from payments.test_reconcile import lost_purchase, tokenbank_cli
from tokenbank.auth.models import User

pytestmark = pytest.mark.anyio


async def _succeeded_event(env: PayEnv, pi_id: str) -> str:
    (event,) = await env.events(pi_id, "payment_intent.succeeded")
    return str(event["id"])


async def test_admin_process_again_credits_a_lost_event_once(env: PayEnv) -> None:
    user, pi_id, start = await lost_purchase(env)
    admin = await env.user()
    async with env.db.transaction() as s:
        await s.execute(update(User).where(User.id == admin["user"]["id"]).values(is_admin=True))
    event_id = await _succeeded_event(env, pi_id)

    for _ in range(3):
        r = await env.http.post(f"/api/admin/webhooks/{event_id}/process", headers=admin["headers"])
        assert r.status_code == 200, r.text
        assert r.json()["payment_intent_id"] == pi_id
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]

    inbox = (await env.http.get("/api/admin/webhooks", headers=admin["headers"])).json()
    assert [(e["id"], e["status"]) for e in inbox if e["id"] == event_id] == [(event_id, "handled")]
    forbidden = await env.http.post(
        f"/api/admin/webhooks/{event_id}/process", headers=user["headers"]
    )
    assert forbidden.status_code == 403
    bad = await env.http.post("/api/admin/webhooks/not-an-event/process", headers=admin["headers"])
    assert bad.status_code == 422
    unknown = await env.http.post(
        "/api/admin/webhooks/evt_doesnotexist/process", headers=admin["headers"]
    )
    assert unknown.status_code == 404


async def test_cli_replay_credits_once(env: PayEnv) -> None:
    user, pi_id, start = await lost_purchase(env)
    event_id = await _succeeded_event(env, pi_id)
    first = await asyncio.to_thread(tokenbank_cli, env, "webhooks", "replay", event_id)
    again = await asyncio.to_thread(tokenbank_cli, env, "webhooks", "replay", event_id)
    assert first.returncode == 0, first.stderr
    assert f"{event_id}: handled ({pi_id})" in first.stdout
    assert again.returncode == 0
    assert await env.balance(user) == start + 500
    assert await env.purchase_entries(pi_id) == [("purchase", 500)]
