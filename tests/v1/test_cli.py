"""``tokenbank api-keys``: run as an operator would, against a real database; the keys it
prints work (and stop working) against the app on the same database."""

from __future__ import annotations

import json

import httpx
import pytest

from cli.test_cli import tokenbank
from tokenbank.config import Settings

from conftest import app_client

pytestmark = pytest.mark.anyio


async def test_create_list_rotate_revoke(db_url: str, settings: Settings) -> None:
    r = tokenbank(db_url, "api-keys", "create", "--name", "chat backend", "--scope", "charge,read")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    made, secret = json.loads(lines[0]), lines[1]
    assert made["scopes"] == ["charge", "read"] and made["name"] == "chat backend"
    assert secret.startswith("tbk_") and "only time" in r.stderr

    listed = tokenbank(db_url, "api-keys", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.strip().splitlines()]
    assert [k["id"] for k in rows] == [made["id"]] and secret not in listed.stdout

    async with app_client(settings) as client:
        key = {"Authorization": f"Bearer {secret}"}
        assert (await client.put("/api/v1/customers/u1", headers=key)).status_code == 200
        r = await client.post("/api/v1/customers/u1/grants", headers=key,
                              json={"amount": 1, "idempotency_key": "g", "reason": "r"})
        assert r.status_code == 403  # no grant scope

        rotated = tokenbank(db_url, "api-keys", "rotate", str(made["id"]), "--quiet")
        assert rotated.returncode == 0, rotated.stderr
        new_secret = rotated.stdout.strip()
        assert new_secret.startswith("tbk_") and new_secret != secret
        assert (await _balance(client, secret)).status_code == 401
        assert (await _balance(client, new_secret)).status_code == 200

        new_id = max(json.loads(line)["id"] for line in
                     tokenbank(db_url, "api-keys", "list").stdout.strip().splitlines())
        revoked = tokenbank(db_url, "api-keys", "revoke", str(new_id))
        assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked_at"]
        r = await _balance(client, new_secret)
        assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_revoked"

    bad = tokenbank(db_url, "api-keys", "create", "--name", "x", "--scope", "admin")
    assert bad.returncode == 2 and "invalid_scopes" in bad.stderr
    missing = tokenbank(db_url, "api-keys", "revoke", "99999")
    assert missing.returncode == 2 and "api_key_not_found" in missing.stderr


async def _balance(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.get("/api/v1/customers/u1/balance",
                            headers={"Authorization": f"Bearer {secret}"})
