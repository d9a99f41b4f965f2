"""A test bench for payments: the real app over HTTP, the local Stripe server, the SDK.

The app runs under uvicorn on a free port (the local Stripe server must reach it with
webhooks); the test acts as the browser (confirming with the publishable key and the
client secret) and as the operator (refunds with the secret key), all through the
official ``stripe`` SDK.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
import stripe
from sqlalchemy.pool import NullPool

from stripe_sim import SimConfig, SimServer
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.payments.flows import sync_payment
from tokenbank.payments.models import WebhookEvent
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.payments.sync import SyncOutcome

from conftest import make_settings
from support import register_user, wait_for

SECRET_KEY = "sk_test_local"
PUBLISHABLE_KEY = "pk_test_local"
WEBHOOK_SECRET = "whsec_test_secret"
RETURN_URL = "http://127.0.0.1/payment/return"

DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
    "pm_card_chargeDeclinedIncorrectCvc": "incorrect_cvc",
}


def sim_config(**overrides: Any) -> SimConfig:
    """The local Stripe server's settings for the payments bench (``overrides`` win):
    webhooks retried quickly, a few times."""
    values: dict[str, Any] = {
        "webhook_secret": WEBHOOK_SECRET,
        "api_key": SECRET_KEY,
        "publishable_key": PUBLISHABLE_KEY,
        "webhook_backoff_base_s": 0.05,
        "webhook_backoff_max_s": 0.5,
        "webhook_max_attempts": 8,
    }
    return SimConfig(**(values | overrides))


def payment_settings(db_url: str, sim: SimServer, **overrides: Any) -> Settings:
    """Test settings talking to the local Stripe server (``overrides`` win)."""
    values: dict[str, Any] = {
        "stripe_secret_key": SECRET_KEY,
        "stripe_publishable_key": PUBLISHABLE_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": sim.url,
        "stripe_js_url": f"{sim.url}/v3/",
        # The webhook worker: polls often and backs off briefly, so tests settle quickly.
        "webhook_poll_interval_s": 0.2,
        "webhook_backoff_base_s": 0.2,
        "webhook_backoff_max_s": 1.0,
    }
    return make_settings(db_url, **(values | overrides))


def dead_url() -> str:
    """An address on 127.0.0.1 where nothing listens (a Stripe outage)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def inbox_idle(database_url: str, timeout_s: float = 20.0) -> None:
    """Wait (without an event loop) until no webhook event is received or being applied."""
    from sqlalchemy import create_engine, text

    from tokenbank.db import sync_url

    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with engine.connect() as conn:
                waiting = conn.execute(text(
                    "SELECT count(*) FROM webhook_events "
                    "WHERE status IN ('received', 'processing')"
                )).scalar_one()
            if waiting == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{waiting} webhook event(s) still waiting after {timeout_s}s")
            time.sleep(0.05)
    finally:
        engine.dispose()


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=timestamp or int(time.time())
    )


@dataclass
class PayEnv:
    sim: SimServer
    http: httpx.AsyncClient
    db: Database
    settings: Settings
    server: stripe.StripeClient
    browser: stripe.StripeClient

    # --- people and money -------------------------------------------------------------

    async def user(self) -> dict[str, Any]:
        return await register_user(self.http, db=self.db)

    async def balance(self, user: dict[str, Any]) -> int:
        r = await self.http.get("/api/payment/user/tokens", headers=user["headers"])
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])

    async def wait_balance(self, user: dict[str, Any], expected: int, what: str = "") -> None:
        async def reached() -> bool:
            return await self.balance(user) == expected

        await wait_for(reached, timeout_s=15, what=what or f"balance {expected}")

    async def create(
        self, user: dict[str, Any], tier: str = "standard", key: str | None = None
    ) -> dict[str, Any]:
        headers = dict(user["headers"]) | ({"Idempotency-Key": key} if key else {})
        r = await self.http.post(
            "/api/payment/create-payment-intent", json={"tier": tier}, headers=headers
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def pay(self, intent: dict[str, Any], pm: str) -> stripe.PaymentIntent:
        """Confirm as the browser does: publishable key + client secret."""
        return await self.browser.v1.payment_intents.confirm_async(
            intent["payment_intent_id"],
            {
                "payment_method": pm,
                "client_secret": intent["client_secret"],
                "return_url": RETURN_URL,
            },
        )

    async def buy(self, user: dict[str, Any], tier: str = "standard", pm: str = "pm_card_visa"
                  ) -> str:
        intent = await self.create(user, tier)
        pi = await self.pay(intent, pm)
        assert pi.status == "succeeded", pi.status
        return str(intent["payment_intent_id"])

    async def refund(self, pi_id: str, amount: int | None = None) -> None:
        params: dict[str, Any] = {"payment_intent": pi_id}
        if amount is not None:
            params["amount"] = amount
        await self.server.v1.refunds.create_async(params)  # type: ignore[arg-type]

    async def payment(self, user: dict[str, Any], pi_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/payment/payments/{pi_id}", headers=user["headers"])
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def confirm(self, user: dict[str, Any], pi_id: str) -> httpx.Response:
        return await self.http.post(
            "/api/payment/confirm-payment", json={"payment_intent_id": pi_id},
            headers=user["headers"],
        )

    async def sync(self, pi_id: str) -> SyncOutcome:
        """The one sync that webhooks, reconciliation and replays run, on its own gateway.

        confirm-payment answers a credited payment from our row without asking Stripe, so
        tests that move money after the credit sync this way.
        """
        gateway = StripeGateway(self.settings)
        try:
            return await sync_payment(self.db, gateway, self.settings, pi_id)
        finally:
            await gateway.aclose()

    # --- webhooks ---------------------------------------------------------------------

    def settle(self, timeout_s: float = 20.0) -> None:
        """Wait until the local Stripe server has nothing queued or in flight and the app's
        webhook worker has applied every event it acknowledged."""
        self.sim.wait_webhooks_idle(timeout_s)
        if self.settings.webhook_worker:
            inbox_idle(self.settings.database_url, timeout_s)

    async def events(self, pi_id: str | None = None, type_: str | None = None
                     ) -> list[dict[str, Any]]:
        """Events as Stripe stores them (raw JSON, oldest first), optionally for one intent."""
        params: dict[str, Any] = {"limit": 100}
        if type_:
            params["type"] = type_
        r = await self.raw_stripe("GET", "/v1/events", params=params)
        found = [
            e for e in r["data"]
            if pi_id is None or pi_id in (
                e["data"]["object"].get("id"), e["data"]["object"].get("payment_intent")
            )
        ]
        return list(reversed(found))

    async def raw_stripe(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.sim.url, timeout=30) as c:
            r = await c.request(
                method, path, headers={"Authorization": f"Bearer {SECRET_KEY}"}, **kwargs
            )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def post_event(
        self,
        event: dict[str, Any] | bytes,
        *,
        secret: str = WEBHOOK_SECRET,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """Deliver an event ourselves, signed as Stripe signs it."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        sig = signature if signature is not None else sign(body, secret, timestamp)
        return await self.http.post(
            "/api/payment/webhook",
            content=body,
            headers={"Stripe-Signature": sig, "Content-Type": "application/json"},
        )

    async def inbox_row(self, event_id: str) -> WebhookEvent | None:
        """The event's row in the webhook inbox, as it is now."""
        from sqlalchemy import select

        async with self.db.transaction() as session:
            return (await session.execute(
                select(WebhookEvent).where(WebhookEvent.id == event_id)
            )).scalar_one_or_none()

    async def wait_event(
        self, event_id: str, *statuses: str, timeout_s: float = 20.0
    ) -> WebhookEvent:
        """Wait until the inbox shows the event in one of ``statuses`` (the worker applies
        recorded events after the 2xx)."""
        wanted = statuses or ("handled",)
        found: list[WebhookEvent] = []

        async def reached() -> bool:
            row = await self.inbox_row(event_id)
            found[:] = [row] if row is not None else []
            return row is not None and row.status in wanted

        await wait_for(reached, timeout_s=timeout_s, what=f"event {event_id} {'/'.join(wanted)}")
        return found[0]

    async def wait_inbox_done(self, timeout_s: float = 20.0) -> None:
        """Wait until the worker has nothing left to apply (no event received or claimed)."""
        from sqlalchemy import func, select

        async def done() -> bool:
            async with self.db.transaction() as session:
                waiting = (await session.execute(
                    select(func.count()).select_from(WebhookEvent).where(
                        WebhookEvent.status.in_(("received", "processing"))
                    )
                )).scalar_one()
            return waiting == 0

        await wait_for(done, timeout_s=timeout_s, what="the webhook inbox to drain")

    # --- verification -----------------------------------------------------------------

    async def violations(self) -> list[ledger.Violation]:
        async with self.db.transaction() as session:
            return await ledger.check(session)

    async def purchase_entries(self, pi_id: str) -> list[tuple[str, int]]:
        """The ledger entries of one PaymentIntent, oldest first: (type, amount)."""
        from sqlalchemy import select

        from tokenbank.ledger.models import TokenTransaction as T

        async with self.db.transaction() as session:
            rows = (await session.execute(
                select(T.transaction_type, T.amount)
                .where(T.stripe_payment_intent_id == pi_id).order_by(T.id)
            )).all()
        return [(str(t), int(a)) for t, a in rows]
