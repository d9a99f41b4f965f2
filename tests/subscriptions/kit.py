"""Subscribing as the page does, moving the user's test clock, reading our books."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from payments.kit import PayEnv
from tokenbank.ledger.models import TokenTransaction
from tokenbank.subscriptions.models import Subscription, SubscriptionInvoice

from support import wait_for

CLOCKS = {"subscription_test_clocks": True}
DAY = 86400


@dataclass
class Subscriber:
    env: PayEnv
    user: dict[str, Any]

    @property
    def user_id(self) -> int:
        return int(self.user["user"]["id"])

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.user["headers"])

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self.env.http.post(f"/api{path}", json=body, headers=self.headers)

    async def subscribe(self, plan: str = "basic", pm: str = "pm_card_visa") -> dict[str, Any]:
        """create-subscription, then confirm the first invoice's intent as the page does."""
        r = await self.post("/payment/create-subscription", {"plan": plan})
        assert r.status_code == 200, r.text
        started: dict[str, Any] = r.json()
        assert started["status"] == "incomplete" and started["client_secret"]
        await self.pay(started["client_secret"], pm)
        return started

    async def pay(self, client_secret: str, pm: str) -> Any:
        pi_id = client_secret.split("_secret_")[0]
        return await self.env.browser.v1.payment_intents.confirm_async(
            pi_id,
            {"payment_method": pm, "client_secret": client_secret,
             "return_url": "http://127.0.0.1/subscription"},
        )

    async def subscription(self) -> dict[str, Any] | None:
        r = await self.env.http.get("/api/payment/user/subscription", headers=self.headers)
        assert r.status_code == 200, r.text
        found: dict[str, Any] | None = r.json()["subscription"]
        return found

    async def wait_subscription(self, what: str, **expected: Any) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        async def reached() -> bool:
            sub = await self.subscription()
            seen[:] = [sub] if sub else []
            return sub is not None and all(sub.get(k) == v for k, v in expected.items())

        await wait_for(reached, timeout_s=20, what=f"{what}: {expected} (last {seen})")
        return seen[0]

    async def advance(self, days: int) -> None:
        r = await self.post("/dev/advance-clock", {"days": days})
        assert r.status_code == 200, r.text

    async def allotments(self) -> list[tuple[str, int]]:
        """The user's allotment-related ledger entries, oldest first: (key, amount)."""
        async with self.env.db.transaction() as s:
            rows = (await s.execute(
                select(TokenTransaction.idempotency_key, TokenTransaction.amount)
                .where(TokenTransaction.user_id == self.user_id,
                       TokenTransaction.idempotency_key.like("allotment%"))
                .order_by(TokenTransaction.id)
            )).all()
        return [(str(k), int(a)) for k, a in rows]

    async def invoices(self) -> list[SubscriptionInvoice]:
        async with self.env.db.transaction() as s:
            rows = (await s.execute(
                select(SubscriptionInvoice)
                .where(SubscriptionInvoice.user_id == self.user_id)
                .order_by(SubscriptionInvoice.created_at, SubscriptionInvoice.id)
            )).scalars().all()
        return list(rows)

    async def row(self) -> Subscription:
        async with self.env.db.transaction() as s:
            found = (await s.execute(
                select(Subscription).where(Subscription.user_id == self.user_id)
            )).scalars().first()
        assert found is not None
        return found

    async def wait_allotments(self, count: int) -> list[tuple[str, int]]:
        seen: list[tuple[str, int]] = []

        async def reached() -> bool:
            seen[:] = await self.allotments()
            return len(seen) >= count

        await wait_for(reached, timeout_s=20, what=f"{count} allotment entries (have {seen})")
        return seen


async def subscriber(env: PayEnv) -> Subscriber:
    return Subscriber(env, await env.user())
