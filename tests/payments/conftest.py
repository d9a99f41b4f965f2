"""One local Stripe server for the session (reset per test) and a real app per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stripe

from payments.kit import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    PayEnv,
    payment_settings,
    sim_config,
)
from stripe_sim import SimServer
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.payments.stripe_client import AsyncHTTPXClient

from support import serve_app


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    with SimServer(sim_config()) as server:
        yield server


@pytest.fixture
def pay_settings(db_url: str, sim: SimServer, request: pytest.FixtureRequest) -> Settings:
    """Settings for the test's app; a test may change some with
    ``@pytest.mark.parametrize("pay_settings", [{...}], indirect=True)``."""
    return payment_settings(db_url, sim, **getattr(request, "param", {}))


def sdk_client(key: str, sim: SimServer, http: stripe.HTTPXClient) -> stripe.StripeClient:
    return stripe.StripeClient(
        key, base_addresses={"api": sim.url}, http_client=http, max_network_retries=0
    )


@pytest.fixture
async def env(pay_settings: Settings, sim: SimServer, db: Database) -> AsyncIterator[PayEnv]:
    """The app on a real port receiving the local Stripe server's webhooks.

    After the scenario: webhooks drained, and ``ledger.check`` must find no violation.
    """
    sim.reset()
    sdk_http = AsyncHTTPXClient(timeout=30)
    server, browser = sdk_client(SECRET_KEY, sim, sdk_http), sdk_client(PUBLISHABLE_KEY, sim, sdk_http)
    with serve_app(pay_settings) as base_url:
        sim.set_webhook(f"{base_url}/api/payment/webhook", WEBHOOK_SECRET)
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            bench = PayEnv(sim, http, db, pay_settings, server, browser)
            yield bench
            sim.set_faults()
            bench.settle()
            if pay_settings.webhook_worker:
                await bench.wait_inbox_done()
            assert await bench.violations() == []
        sim.set_webhook(None)
    await sdk_http.close_async()
