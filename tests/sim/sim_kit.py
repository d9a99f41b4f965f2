"""Helpers for the simulator tests: keys, a webhook receiver, payment shortcuts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stripe

SECRET_KEY = "sk_test_local"
PUBLISHABLE_KEY = "pk_test_local"
WEBHOOK_SECRET = "whsec_test_secret"
# Stripe's "some time later" in the shared test server (the default is 2 s).
ASYNC_DELAY_S = 0.4


def wait_until(condition: Callable[[], Any], timeout_s: float = 5.0, what: str = "") -> Any:
    """Poll ``condition`` until truthy or fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    status: int
    at: float

    @property
    def event(self) -> dict[str, Any]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that records webhook requests."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    # Decides the status code per request: (event, nth attempt of this event id) -> code.
    respond: Callable[[dict[str, Any], int], int] = lambda event, nth: 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrivals: dict[str, int] = field(default_factory=dict)  # requests seen per event id

    def record(self, body: bytes, headers: dict[str, str]) -> int:
        event = json.loads(body)
        with self.lock:
            nth = self.arrivals[event["id"]] = self.arrivals.get(event["id"], 0) + 1
            respond = self.respond
        status = respond(event, nth)  # outside the lock: it may be slow on purpose
        with self.lock:
            self.received.append(Received(body, headers, status, time.monotonic()))
        return status

    def delivered(self) -> list[dict[str, Any]]:
        """Events the receiver accepted (2xx), in arrival order."""
        with self.lock:
            return [r.event for r in self.received if 200 <= r.status < 300]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.arrivals.clear()
            self.respond = lambda event, nth: 200


def new_intent(
    client: stripe.StripeClient, amount: int = 2000, **params: Any
) -> stripe.PaymentIntent:
    body: dict[str, Any] = {
        "amount": amount,
        "currency": "usd",
        "payment_method_types": ["card"],
        "metadata": {"user_id": "7", "tier": "standard"},
    }
    body.update(params)
    return client.v1.payment_intents.create(body)  # type: ignore[arg-type]


def pay(client: stripe.StripeClient, pm: str, amount: int = 2000) -> stripe.PaymentIntent:
    pi = new_intent(client, amount)
    return client.v1.payment_intents.confirm(pi.id, {"payment_method": pm})


def event_types(client: stripe.StripeClient, **filters: Any) -> list[str]:
    """Types of all events so far, oldest first."""
    params: dict[str, Any] = {"limit": 100, **filters}
    events = list(client.v1.events.list(params).auto_paging_iter())  # type: ignore[arg-type]
    return [e.type for e in reversed(events)]
