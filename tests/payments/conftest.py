"""One local Stripe server for the session (reset per test) and a real app per test."""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class CountingProxy:
    """Forwards every request to the local Stripe server and remembers its method and path."""

    upstream: str
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def retrievals(self, pi_id: str) -> int:
        with self.lock:
            return sum(
                1 for method, path in self.seen
                if method == "GET" and path.split("?")[0] == f"/v1/payment_intents/{pi_id}"
            )

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()


@pytest.fixture
def proxy(sim: SimServer) -> Iterator[tuple[str, CountingProxy]]:
    counter = CountingProxy(sim.url)
    upstream = httpx.Client(base_url=sim.url, timeout=30)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            with counter.lock:
                counter.seen.append((self.command, self.path))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
            r = upstream.request(self.command, self.path, content=body, headers=headers)
            self.send_response(r.status_code)
            for k, v in r.headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                     "content-encoding"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)

        do_GET = do_POST = do_DELETE = _forward

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counter
    finally:
        server.shutdown()
        server.server_close()
        upstream.close()
