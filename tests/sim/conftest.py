"""A shared simulator on a free port, a real webhook receiver, and SDK clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from sim.sim_kit import ASYNC_DELAY_S, PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, Receiver
from stripe_sim import SimConfig, SimServer


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status = rec.record(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimServer]:
    config = SimConfig(
        webhook_secret=WEBHOOK_SECRET,
        webhook_max_attempts=4,
        webhook_backoff_base_s=0.05,
        webhook_timeout_s=2.0,
        async_delay_s=ASYNC_DELAY_S,
    )
    with SimServer(config) as server:
        yield server


@pytest.fixture
def sim(sim_server: SimServer, receiver: Receiver) -> SimServer:
    """The shared simulator, emptied, with no faults and no webhook endpoint."""
    sim_server.set_webhook(None)
    sim_server.wait_webhooks_idle(5)
    sim_server.reset()
    receiver.clear()
    return sim_server


@pytest.fixture
def hooked(sim: SimServer, receiver: Receiver) -> SimServer:
    """The simulator delivering webhooks to ``receiver``."""
    sim.set_webhook(receiver.url, WEBHOOK_SECRET)
    return sim


@pytest.fixture
def client(sim: SimServer) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": sim.url}, max_network_retries=0)


@pytest.fixture
def browser(sim: SimServer) -> stripe.StripeClient:
    """What Stripe.js can do: a client holding only a publishable key."""
    return stripe.StripeClient(
        PUBLISHABLE_KEY, base_addresses={"api": sim.url}, max_network_retries=0
    )
