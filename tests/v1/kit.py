"""Helpers for the service API's tests: keys made through the real service, customers
made through the real route."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tokenbank.apikeys import service as apikeys

ALL_SCOPES = ("read", "charge", "grant", "checkout")


async def make_key(client: httpx.AsyncClient, *scopes: str, name: str = "test") -> dict[str, str]:
    """Bearer headers of a new key with ``scopes`` (all of them by default)."""
    async with client.app.state.db.transaction() as session:  # type: ignore[attr-defined]
        made = await apikeys.create_key(session, name, scopes or ALL_SCOPES)
    return {"Authorization": f"Bearer {made.secret}"}


async def make_customer(
    client: httpx.AsyncClient, key: dict[str, str], tokens: int = 0, **body: Any
) -> str:
    """A new customer (its external id), granted ``tokens``."""
    external_id = f"host-user-{uuid.uuid4().hex[:10]}"
    r = await client.put(f"/api/v1/customers/{external_id}", json=body, headers=key)
    assert r.status_code == 200, r.text
    if tokens:
        r = await client.post(
            f"/api/v1/customers/{external_id}/grants",
            json={"amount": tokens, "idempotency_key": f"seed-{external_id}", "reason": "seed"},
            headers=key,
        )
        assert r.status_code == 200, r.text
    return external_id


async def balance(client: httpx.AsyncClient, key: dict[str, str], external_id: str) -> Any:
    r = await client.get(f"/api/v1/customers/{external_id}/balance", headers=key)
    assert r.status_code == 200, r.text
    return r.json()


def new_key() -> str:
    return uuid.uuid4().hex
