"""Schemathesis over the service API (``/api/v1``), authenticated: no 5xx, every response
as documented.

``tokenbank serve`` runs in its own process on PostgreSQL with the local Stripe server
behind it (see ``tests/security/test_fuzz.py`` for why a process of its own, and for the
checks left off and their reasons; the same configuration is used here). Requests carry
an API key with every scope; the widget routes a customer token the host signed; the
hosted-page routes a signed link made by a real purchase. A few customers exist with
tokens, so generated holds, charges and commits reach the ledger, not only 404s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
import schemathesis

from reliability.cluster import app_env, start_sim
from reliability.harness import AppProcess
from security.test_fuzz import CONFIG, _app_schema
from tokenbank.apikeys import service as apikeys
from tokenbank.db import Database

from conftest import _truncate_postgres

pytestmark = pytest.mark.slow

WIDGET_SECRET = "fuzz-widget-secret-8c1d4e7f0a2b5c8d1e4f7a0b3c6d9e2f"
HOST = "https://host.test"

schema = schemathesis.openapi.from_dict(_app_schema(), config=CONFIG).include(
    path_regex="^/api/v1/"
)


@dataclass(frozen=True)
class Target:
    url: str
    key: dict[str, str]
    widget: dict[str, str]
    link: dict[str, str]

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/api/v1/widget/"):
            return self.widget
        if path.startswith("/api/v1/checkout"):
            return self.link
        return self.key


async def _make_key(url: str) -> str:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            made = await apikeys.create_key(session, "fuzz", apikeys.ALL_SCOPES)
        return made.secret
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def target(postgres_url: str) -> Iterator[Target]:
    _truncate_postgres(postgres_url)
    app = AppProcess({})
    sim = start_sim(f"{app.url}/api/payment/webhook")
    app.env |= app_env(postgres_url, sim, BACKGROUND_JOBS="false",
                       WIDGET_TOKEN_SECRET=WIDGET_SECRET, WIDGET_ALLOWED_ORIGINS=HOST,
                       WIDGET_TOKEN_MAX_TTL_S="86400")
    try:
        app.start()
        key = {"Authorization": f"Bearer {asyncio.run(_make_key(postgres_url))}"}
        for cid in ("fuzz", "0", "a"):
            assert httpx.put(f"{app.url}/api/v1/customers/{cid}", headers=key).status_code == 200
            r = httpx.post(f"{app.url}/api/v1/customers/{cid}/grants", headers=key,
                           json={"amount": 1000, "idempotency_key": "seed", "reason": "fuzz"})
            assert r.status_code == 200, r.text
        now = int(time.time())
        widget = jwt.encode({"sub": "fuzz", "aud": "tokenbank", "iat": now, "exp": now + 86400},
                            WIDGET_SECRET, algorithm="HS256")
        r = httpx.post(f"{app.url}/api/v1/customers/fuzz/purchases", headers=key, timeout=30,
                       json={"tier": "starter", "idempotency_key": "link",
                             "return_url": f"{HOST}/back"})
        assert r.status_code == 200, r.text
        link = urlsplit(r.json()["hosted_url"]).fragment.removeprefix("token=")
        yield Target(app.url, key, {"Authorization": f"Bearer {widget}"},
                     {"Authorization": f"Bearer {link}"})
    finally:
        app.stop()
        sim.stop()
        app.remove_log()


@schema.parametrize()
def test_no_5xx_and_every_response_matches_the_schema(
    case: schemathesis.Case, target: Target
) -> None:
    case.call_and_validate(base_url=target.url, headers=target.headers_for(case.path))
