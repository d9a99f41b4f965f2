"""Stripe Billing calls (Products, Prices, Subscriptions, Invoices, test clocks, the
Customer Portal) through the payments gateway's client, each answer turned into a small
frozen snapshot of plain values at once.

Invoices in the pinned API version have no ``payment_intent``: the PaymentIntent of an
invoice is its default ``payments`` entry (includable, asked for with ``expand``), and
the page confirms it with the invoice's ``confirmation_secret``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tokenbank.config import Plan, Settings
from tokenbank.payments.errors import StripeObjectUnusable, StripeRequestRefused
from tokenbank.payments.stripe_client import (
    IntentSnapshot,
    StripeGateway,
    checked_id,
    pages,
    stripe_call,
)
from tokenbank.types import utcnow

#: Every plan's Price carries this lookup key (plus the plan id): the catalog is found,
#: never remembered, so a sync is idempotent and a changed price moves the key.
LOOKUP_PREFIX = "tokenbank_plan_"
#: How long the dev route waits for a test clock to finish advancing.
CLOCK_READY_TIMEOUT_S = 30.0


def lookup_key(plan_id: str) -> str:
    return f"{LOOKUP_PREFIX}{plan_id}"


def plan_of_lookup_key(key: str | None) -> str | None:
    if key and key.startswith(LOOKUP_PREFIX):
        return key[len(LOOKUP_PREFIX) :]
    return None


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SubscriptionSnapshot:
    id: str
    customer_id: str
    status: str
    price_id: str | None
    #: The subscription item whose price a plan change replaces (ours have one).
    item_id: str | None
    metadata: dict[str, str]
    cancel_at_period_end: bool
    current_period_start: datetime | None
    current_period_end: datetime | None
    latest_invoice_id: str | None
    read_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class InvoiceLine:
    price_id: str | None
    amount: int


@dataclass(frozen=True)
class InvoiceSnapshot:
    id: str
    subscription_id: str | None
    customer_id: str
    status: str
    billing_reason: str | None
    amount_due: int
    amount_paid: int
    currency: str
    lines: tuple[InvoiceLine, ...]
    payment_intent_id: str | None
    created: datetime | None
    paid_at: datetime | None
    client_secret: str | None = field(default=None, repr=False)
    #: The invoice's PaymentIntent with its refunds and disputes (None when nothing due).
    intent: IntentSnapshot | None = None
    read_at: datetime = field(default_factory=utcnow)


def subscription_snapshot(sub: dict[str, Any], read_at: datetime) -> SubscriptionSnapshot:
    items = ((sub.get("items") or {}).get("data")) or []
    first = items[0] if items else {}
    price = first.get("price") if isinstance(first, dict) else None
    start = first.get("current_period_start") or sub.get("current_period_start")
    end = first.get("current_period_end") or sub.get("current_period_end")
    return SubscriptionSnapshot(
        id=str(sub["id"]),
        customer_id=str(_id_of(sub.get("customer")) or ""),
        status=str(sub.get("status") or ""),
        price_id=_id_of(price),
        item_id=_id_of(first) if isinstance(first, dict) else None,
        metadata={str(k): str(v) for k, v in (sub.get("metadata") or {}).items()},
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        current_period_start=_ts(start),
        current_period_end=_ts(end),
        latest_invoice_id=_id_of(sub.get("latest_invoice")),
        read_at=read_at,
    )


def _line(line: dict[str, Any]) -> InvoiceLine:
    pricing = line.get("pricing") or {}
    price = (pricing.get("price_details") or {}).get("price") if isinstance(pricing, dict) else None
    return InvoiceLine(price_id=_id_of(price), amount=int(line.get("amount") or 0))


def invoice_snapshot(
    inv: dict[str, Any], read_at: datetime, intent: IntentSnapshot | None = None
) -> InvoiceSnapshot:
    parent = inv.get("parent") or {}
    details = parent.get("subscription_details") or {}
    payments_list = (inv.get("payments") or {}).get("data") or []
    pi_id = None
    for payment in payments_list:
        found = _id_of((payment.get("payment") or {}).get("payment_intent"))
        if found and (pi_id is None or payment.get("is_default")):
            pi_id = found
    secret = inv.get("confirmation_secret")
    lines = ((inv.get("lines") or {}).get("data")) or []
    return InvoiceSnapshot(
        id=str(inv["id"]),
        subscription_id=_id_of(details.get("subscription")),
        customer_id=str(_id_of(inv.get("customer")) or ""),
        status=str(inv.get("status") or ""),
        billing_reason=inv.get("billing_reason"),
        amount_due=int(inv.get("amount_due") or 0),
        amount_paid=int(inv.get("amount_paid") or 0),
        currency=str(inv.get("currency") or "usd").lower(),
        lines=tuple(_line(line) for line in lines),
        payment_intent_id=pi_id,
        created=_ts(inv.get("created")),
        paid_at=_ts((inv.get("status_transitions") or {}).get("paid_at")),
        client_secret=secret.get("client_secret") if isinstance(secret, dict) else None,
        intent=intent,
        read_at=read_at,
    )


class Billing:
    """The Billing half of the Stripe gateway (same client, same typed errors)."""

    def __init__(
        self, gateway: StripeGateway, plans_by_price: dict[str, str | None] | None = None
    ) -> None:
        self.gateway = gateway
        #: Which plan each Price is (a Price's plan never changes, so a shared cache).
        self._plans_by_price = {} if plans_by_price is None else plans_by_price

    @property
    def _client(self) -> Any:
        return self.gateway.client

    async def _raw(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        response = await stripe_call(
            self._client.raw_request_async(method, path, **params), missing_ok=method == "get"
        )
        data: dict[str, Any] = response.data
        return data

    # --- the catalog ----------------------------------------------------------------

    async def ensure_price(self, plan_id: str, plan: Plan) -> tuple[str, bool]:
        """The plan's active Price (found by lookup key), created when missing or when its
        amount or currency changed (the key moves to the new Price). True if created."""
        key = lookup_key(plan_id)
        found = await self._raw("get", "/v1/prices", lookup_keys=[key], active="true")
        for price in found.get("data") or []:
            recurring = price.get("recurring") or {}
            if (
                price.get("unit_amount") == plan.price
                and str(price.get("currency")).lower() == plan.currency.lower()
                and recurring.get("interval") == "month"
                and int(recurring.get("interval_count") or 1) == 1
            ):
                self._plans_by_price[str(price["id"])] = plan_id
                return str(price["id"]), False
        created = await stripe_call(
            self._client.v1.prices.create_async(
                {
                    "currency": plan.currency.lower(),
                    "unit_amount": plan.price,
                    "recurring": {"interval": "month"},
                    "lookup_key": key,
                    "transfer_lookup_key": True,
                    "product_data": {
                        "name": f"tokenbank {plan.name}",
                        "metadata": {"plan": plan_id},
                    },
                    "metadata": {"plan": plan_id, "tokens": str(plan.monthly_tokens)},
                },
                {"idempotency_key": f"plan-price:{plan_id}:{plan.price}:{plan.currency}"},
            )
        )
        self._plans_by_price[created.id] = plan_id
        return created.id, True

    async def plan_of_price(self, price_id: str | None) -> str | None:
        """Which of our plans a Price is (by its lookup key, or its ``plan`` metadata for a
        Price whose key moved on); None for a Price that is none of ours."""
        if price_id is None:
            return None
        if price_id not in self._plans_by_price:
            price = await self._raw("get", f"/v1/prices/{checked_id(price_id, 'price')}")
            plan = plan_of_lookup_key(price.get("lookup_key")) or (
                (price.get("metadata") or {}).get("plan")
            )
            self._plans_by_price[price_id] = plan
        return self._plans_by_price[price_id]

    # --- subscriptions --------------------------------------------------------------

    async def create_subscription(
        self, *, customer_id: str, price_id: str, user_id: int, plan_id: str, idempotency_key: str
    ) -> tuple[SubscriptionSnapshot, InvoiceSnapshot | None]:
        read_at = utcnow()
        sub = await stripe_call(
            self._client.v1.subscriptions.create_async(
                {
                    "customer": customer_id,
                    "items": [{"price": price_id}],
                    "payment_behavior": "default_incomplete",
                    "payment_settings": {"save_default_payment_method": "on_subscription"},
                    "metadata": {"user_id": str(user_id), "plan": plan_id},
                    "expand": ["latest_invoice.confirmation_secret", "latest_invoice.payments"],
                },
                {"idempotency_key": idempotency_key},
            )
        )
        data = sub.to_dict()
        latest = data.get("latest_invoice")
        invoice = invoice_snapshot(latest, read_at) if isinstance(latest, dict) else None
        return subscription_snapshot(data, read_at), invoice

    async def retrieve_subscription(self, sub_id: str) -> SubscriptionSnapshot:
        read_at = utcnow()
        data = await self._raw("get", f"/v1/subscriptions/{checked_id(sub_id, 'subscription')}")
        return subscription_snapshot(data, read_at)

    async def update_subscription(self, sub_id: str, params: dict[str, Any]) -> None:
        await stripe_call(
            self._client.v1.subscriptions.update_async(checked_id(sub_id, "subscription"), params)
        )

    async def cancel_now(self, sub_id: str) -> None:
        try:
            await stripe_call(
                self._client.v1.subscriptions.cancel_async(checked_id(sub_id, "subscription"))
            )
        except StripeRequestRefused:
            pass  # already ended: nothing left to cancel

    async def list_subscriptions(self, customer_id: str) -> list[SubscriptionSnapshot]:
        read_at = utcnow()
        page = await stripe_call(
            self._client.v1.subscriptions.list_async(
                {"customer": customer_id, "status": "all", "limit": 100}
            )
        )
        return [subscription_snapshot(s.to_dict(), read_at) async for s in pages(page)]

    # --- invoices -------------------------------------------------------------------

    async def retrieve_invoice(self, invoice_id: str) -> InvoiceSnapshot:
        """The invoice with its lines, payments and confirmation secret, and its
        PaymentIntent's refunds and disputes."""
        read_at = utcnow()
        data = await self._raw(
            "get",
            f"/v1/invoices/{checked_id(invoice_id, 'invoice')}",
            expand=["payments", "confirmation_secret"],
        )
        snap = invoice_snapshot(data, read_at)
        if snap.payment_intent_id is None:
            return snap
        intent = await self.gateway.retrieve_intent(snap.payment_intent_id)
        return invoice_snapshot(data, read_at, intent)

    async def list_invoices(self, subscription_id: str) -> list[tuple[str, str, int]]:
        """Every invoice of the subscription: (id, status, created)."""
        page = await stripe_call(
            self._client.v1.invoices.list_async({"subscription": subscription_id, "limit": 100})
        )
        return [
            (str(inv.id), str(inv.status or ""), int(inv.created or 0)) async for inv in pages(page)
        ]

    async def invoice_of_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a PaymentIntent pays, if any (``/v1/invoice_payments``)."""
        found = await self._raw(
            "get",
            "/v1/invoice_payments",
            payment={"type": "payment_intent", "payment_intent": payment_intent_id},
        )
        for payment in found.get("data") or []:
            inv = _id_of(payment.get("invoice"))
            if inv:
                return inv
        return None

    # --- the Customer Portal and test clocks ----------------------------------------

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        session = await stripe_call(
            self._client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": return_url}
            )
        )
        return str(session.url)

    async def advance_clock(self, clock_id: str, seconds: int) -> int:
        """Move a test clock forward and wait until Stripe has run everything due."""
        checked_id(clock_id, "test clock")
        clock = await self._raw("get", f"/v1/test_helpers/test_clocks/{clock_id}")
        target = int(clock["frozen_time"]) + seconds
        await stripe_call(
            self._client.v1.test_helpers.test_clocks.advance_async(
                clock_id, {"frozen_time": target}
            )
        )
        deadline = time.monotonic() + CLOCK_READY_TIMEOUT_S
        while True:
            clock = await self._raw("get", f"/v1/test_helpers/test_clocks/{clock_id}")
            if clock.get("status") == "ready":
                return int(clock["frozen_time"])
            if time.monotonic() > deadline:
                raise StripeObjectUnusable("the test clock is still advancing")
            await asyncio.sleep(0.05)  # Stripe offers no way to wait on a clock but polling


def portal_available(settings: Settings) -> bool:
    """The Customer Portal exists only on Stripe itself, not on the local Stripe server."""
    return bool(settings.stripe_secret_key) and not settings.stripe_simulated
