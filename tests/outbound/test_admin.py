"""The operator's side: endpoints made, listed and removed through the admin API and the
CLI (the secret shown once), the delivery log filtered, a retry from the log; the URL
rules hold at the edge; only admins get in."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from outbound.receiver import receiver
from tokenbank.auth.models import User
from tokenbank.config import Settings
from tokenbank.outbound import service
from tokenbank.outbound.models import EventType

from conftest import app_client, make_settings
from support import register_user

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Delivery is driven by the test (retry); the local receiver is allowed explicitly.
    return make_settings(db_url, outbound_webhook_allow_local=True)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c


async def _admin(client: httpx.AsyncClient) -> dict[str, str]:
    admin = await register_user(client)
    async with client.app.state.db.transaction() as s:  # type: ignore[attr-defined]
        await s.execute(
            update(User).where(User.id == admin["user"]["id"]).values(is_admin=True)  # type: ignore[index]
        )
    headers: dict[str, str] = admin["headers"]  # type: ignore[assignment]
    return headers


async def test_endpoints_and_the_delivery_log(client: httpx.AsyncClient) -> None:
    headers = await _admin(client)
    with receiver(500, 200) as r:
        made = await client.post(
            "/api/admin/webhook-endpoints",
            json={"url": r.url, "enabled_events": ["purchase.succeeded"], "description": "crm"},
            headers=headers,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        endpoint = made.json()["endpoint"]
        assert secret.startswith("whsec_") and len(secret) > 40
        assert endpoint["enabled_events"] == ["purchase.succeeded"]
        listed = (await client.get("/api/admin/webhook-endpoints", headers=headers)).json()
        assert [e["id"] for e in listed["items"]] == [endpoint["id"]]
        assert secret not in str(listed)  # shown once, at creation only
        assert listed["items"][0]["secret_prefix"] == secret[:10]
        assert "purchase.refunded" in listed["event_types"]

        db = client.app.state.db  # type: ignore[attr-defined]
        async with db.transaction() as session:
            event_id = await service.emit(session, EventType.PURCHASE_SUCCEEDED, {"id": 1})
        log = (await client.get("/api/admin/webhook-deliveries", headers=headers)).json()
        (item,) = log["items"]
        assert item["event_id"] == event_id and item["status"] == "pending"
        assert item["log"] == [] and log["next_before"] is None

        # The operator sends it now: the receiver answers 500, then 200 to the next retry.
        first = await client.post(
            f"/api/admin/webhook-deliveries/{item['id']}/retry", headers=headers
        )
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "failed" and first.json()["last_status_code"] == 500
        second = (
            await client.post(f"/api/admin/webhook-deliveries/{item['id']}/retry", headers=headers)
        ).json()
        assert second["status"] == "delivered"
        assert [a["status_code"] for a in second["log"]] == [500, 200]
        assert r.event_ids() == [event_id, event_id]

        by_status = await client.get(
            "/api/admin/webhook-deliveries", params={"status": "delivered"}, headers=headers
        )
        assert [d["id"] for d in by_status.json()["items"]] == [item["id"]]
        other = await client.get(
            "/api/admin/webhook-deliveries",
            params={"endpoint_id": endpoint["id"] + 1},
            headers=headers,
        )
        assert other.json()["items"] == []

        gone = await client.delete(
            f"/api/admin/webhook-endpoints/{endpoint['id']}", headers=headers
        )
        assert gone.status_code == 204
        again = await client.delete(
            f"/api/admin/webhook-endpoints/{endpoint['id']}", headers=headers
        )
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "webhook_endpoint_not_found"
        listed = (await client.get("/api/admin/webhook-endpoints", headers=headers)).json()
        assert listed["items"] == []
        # The log outlives the endpoint.
        log = (await client.get("/api/admin/webhook-deliveries", headers=headers)).json()
        assert [d["id"] for d in log["items"]] == [item["id"]]
    missing = await client.post("/api/admin/webhook-deliveries/999999/retry", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "webhook_delivery_not_found"


async def test_rolling_an_endpoints_secret(client: httpx.AsyncClient) -> None:
    headers = await _admin(client)
    made = await client.post(
        "/api/admin/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]},
        headers=headers,
    )
    endpoint_id, first = made.json()["endpoint"]["id"], made.json()["secret"]
    assert made.json()["endpoint"]["previous_secret_expires_at"] is None

    path = f"/api/admin/webhook-endpoints/{endpoint_id}/roll-secret"
    rolled = await client.post(path, json={"expires_in_hours": 2}, headers=headers)
    assert rolled.status_code == 200, rolled.text
    body = rolled.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != first
    assert body["endpoint"]["secret_prefix"] == body["secret"][:10]
    until = body["previous_secret_expires_at"]
    assert body["endpoint"]["previous_secret_expires_at"] == until
    listed = (await client.get("/api/admin/webhook-endpoints", headers=headers)).json()
    assert listed["items"][0]["previous_secret_expires_at"] == until
    assert body["secret"] not in str(listed) and first not in str(listed)

    default = await client.post(path, headers=headers)  # no body: a day
    assert default.status_code == 200
    for bad in ({"expires_in_hours": 169}, {"expires_in_hours": -1}, {"hours": 1}):
        r = await client.post(path, json=bad, headers=headers)
        assert r.status_code == 422, bad
    gone = await client.post(
        "/api/admin/webhook-endpoints/999999/roll-secret", json={}, headers=headers
    )
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "webhook_endpoint_not_found"


async def test_refusals_at_the_edge(db_url: str) -> None:
    async with app_client(make_settings(db_url)) as client:  # APP_ENV=test: no local URLs
        headers = await _admin(client)
        for url in ("https://127.0.0.1/hook", "http://8.8.8.8/hook", "https://[::1]/h"):
            r = await client.post(
                "/api/admin/webhook-endpoints",
                json={"url": url, "enabled_events": ["*"]},
                headers=headers,
            )
            assert r.status_code == 422, url
            assert r.json()["error"]["code"] == "webhook_url_refused"
        r = await client.post(
            "/api/admin/webhook-endpoints",
            json={"url": "https://8.8.8.8/hook", "enabled_events": ["purchase.exploded"]},
            headers=headers,
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_event_type"
        listed = (await client.get("/api/admin/webhook-endpoints", headers=headers)).json()
        assert listed["items"] == []

        user = await register_user(client)
        for method, path in (
            ("GET", "/api/admin/webhook-endpoints"),
            ("POST", "/api/admin/webhook-endpoints"),
            ("DELETE", "/api/admin/webhook-endpoints/1"),
            ("GET", "/api/admin/webhook-deliveries"),
            ("POST", "/api/admin/webhook-deliveries/1/retry"),
            ("POST", "/api/admin/webhook-endpoints/1/roll-secret"),
        ):
            body = {"url": "https://8.8.8.8/h", "enabled_events": ["*"]}
            kwargs = {"json": body} if method == "POST" else {}
            r = await client.request(method, path, headers=user["headers"], **kwargs)
            assert r.status_code == 403, (method, path)


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": db_url, "APP_ENV": "test"}
    return subprocess.run(
        [sys.executable, "-m", "tokenbank.cli", "webhooks", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_cli_add_list_remove(db_url: str) -> None:
    import json

    added = _cli(db_url, "add", "--url", "https://8.8.8.8/hooks",
                 "--events", "purchase.succeeded,purchase.refunded")
    assert added.returncode == 0, added.stderr
    row_line, secret = added.stdout.strip().splitlines()
    row = json.loads(row_line)
    assert secret.startswith("whsec_")
    assert row["enabled_events"] == ["purchase.refunded", "purchase.succeeded"]
    listed = _cli(db_url, "list")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [row["id"]]
    assert secret not in listed.stdout
    refused = _cli(db_url, "add", "--url", "https://10.1.2.3/hooks")
    assert refused.returncode == 2 and "webhook_url_refused" in refused.stderr
    rolled = _cli(db_url, "roll-secret", str(row["id"]), "--expires-in-hours", "48")
    assert rolled.returncode == 0, rolled.stderr
    rolled_line, new_secret = rolled.stdout.strip().splitlines()
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert json.loads(rolled_line)["secret_prefix"] == new_secret[:10]
    assert json.loads(rolled_line)["previous_secret_expires_at"] is not None
    assert "keeps signing beside it until" in rolled.stderr
    too_long = _cli(db_url, "roll-secret", str(row["id"]), "--expires-in-hours", "169")
    assert too_long.returncode != 0
    assert _cli(db_url, "remove", str(row["id"])).returncode == 0
    assert _cli(db_url, "list").stdout.strip() == ""
    again = _cli(db_url, "remove", str(row["id"]))
    assert again.returncode == 2 and "webhook_endpoint_not_found" in again.stderr
