"""The subscription flows that ask Stripe: each takes ``Database`` and owns its
transactions (a Stripe call never runs inside one).

- the catalog: :func:`sync_catalog` (``tokenbank stripe sync-catalog``, and start-up in
  development);
- the one sync: :func:`sync_subscription` (webhooks, every change the person makes, and
  reconcile call it; :mod:`tokenbank.subscriptions.service` explains its rules);
- the person's changes: :func:`create_subscription`, :func:`change_plan`,
  :func:`cancel_subscription`, :func:`resume_subscription`, :func:`portal_url`;
- the webhook inbox's applier (:func:`apply_event`, registered with payments' worker) and
  the reconciler (:func:`reconcile_subscriptions`);
- development: :func:`advance_clock`.

Plan changes (documented in docs/operations.md):

- **upgrade** (a plan whose month costs more): ``proration_behavior=always_invoice`` with
  ``payment_behavior=pending_if_incomplete``: Stripe invoices the prorated difference at
  once and charges the saved card; the new price applies only when that invoice is paid
  (then its ``invoice.paid`` grants the difference between the two plans' months). If it
  cannot be paid, nothing changes and ``problem`` offers the invoice to pay in the page.
- **downgrade**: the price changes at Stripe now with ``proration_behavior=none`` (no
  credit, no charge), and the subscription's metadata records the plan paid for and the
  period end (``downgraded_from``, ``downgrade_at``): this period stays on the old plan
  in our books (``plan``), the new one is ``scheduled_plan``, and the renewal invoice is
  billed — and allots — at the new plan. Choosing the old plan again before the period
  ends undoes it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.observability import ALLOTMENTS, TOKENS_ALLOTTED
from tokenbank.payments import flows as payment_flows
from tokenbank.payments.errors import PaymentError, StripeRequestRefused, StripeUnavailable
from tokenbank.payments.models import EventStatus
from tokenbank.payments.reconcile import ReconcileReport
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.subscriptions import repository as repo
from tokenbank.subscriptions import service
from tokenbank.subscriptions.billing import (
    Billing,
    InvoiceSnapshot,
    SubscriptionSnapshot,
    portal_available,
)
from tokenbank.subscriptions.errors import (
    ClockRouteOff,
    PortalUnavailable,
    SubscriptionExists,
    SubscriptionNotFound,
)
from tokenbank.subscriptions.models import SubscriptionStatus
from tokenbank.subscriptions.service import SubscriptionView, SyncOutcome

log = logging.getLogger(__name__)

_PLANS_BY_PRICE: dict[str, str | None] = {}
#: Events about money going back on a charge (refunds, disputes).
MONEY_BACK_PREFIXES = ("charge.refund", "charge.dispute.", "refund.")


def _billing(gateway: StripeGateway) -> Billing:
    return Billing(gateway, _PLANS_BY_PRICE)


# --- the catalog ---------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogEntry:
    plan: str
    price_id: str
    created: bool


async def sync_catalog(gateway: StripeGateway, settings: Settings) -> list[CatalogEntry]:
    """Every configured plan's Product and Price, found by lookup key or created."""
    gateway.require_configured()
    billing = _billing(gateway)
    found = []
    for plan_id, plan in settings.subscription_plans.items():
        price_id, created = await billing.ensure_price(plan_id, plan)
        found.append(CatalogEntry(plan_id, price_id, created))
    return found


# --- the one sync ----------------------------------------------------------------------

AlsoInTransaction = Callable[[AsyncSession, SyncOutcome], Awaitable[None]]


async def sync_subscription(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    subscription_id: str,
    *,
    invoice_ids: Iterable[str] = (),
    snapshot: SubscriptionSnapshot | None = None,
    invoices: Iterable[InvoiceSnapshot] = (),
    also: AlsoInTransaction | None = None,
) -> SyncOutcome:
    """Read the subscription, its latest invoice and ``invoice_ids`` from Stripe, then
    apply them (:func:`tokenbank.subscriptions.service.apply`) in one transaction."""
    billing = _billing(gateway)
    sub = snapshot or await billing.retrieve_subscription(subscription_id)
    snaps = {i.id: i for i in invoices}
    wanted = [*invoice_ids, *([sub.latest_invoice_id] if sub.latest_invoice_id else [])]
    for inv_id in wanted:
        if inv_id not in snaps:
            snaps[inv_id] = await billing.retrieve_invoice(inv_id)
    plans: dict[str, str | None] = {}
    prices = {sub.price_id} | {line.price_id for i in snaps.values() for line in i.lines}
    for price in prices:
        if price is not None:
            plans[price] = await billing.plan_of_price(price)
    latest = snaps.get(sub.latest_invoice_id or "")
    async with db.transaction() as session:
        outcome = await service.apply(session, settings, sub, list(snaps.values()), plans, latest)
        if also is not None:
            await also(session, outcome)
    if outcome.granted:
        ALLOTMENTS.inc(outcome.allotments)
        TOKENS_ALLOTTED.inc(outcome.granted)
    if outcome.granted or outcome.taken_back or outcome.given_back:
        log.info(
            "subscription %s: granted %d, taken back %d, given back %d",
            sub.id, outcome.granted, outcome.taken_back, outcome.given_back,
        )
    return outcome


# --- the person's changes ----------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    subscription: SubscriptionView
    client_secret: str | None


async def _view(db: Database, user_id: int) -> SubscriptionView | None:
    async with db.transaction() as session:
        return await service.current(session, user_id)


async def create_subscription(
    db: Database, gateway: StripeGateway, settings: Settings, *, user_id: int, plan_id: str
) -> Started:
    """Subscribe the user (``default_incomplete``): the page confirms the first invoice's
    PaymentIntent with the returned client secret. One live subscription per user; an
    unpaid (``incomplete``) one for the same plan is answered again, for another plan it
    is canceled first."""
    plan = service.find_plan(settings, plan_id)
    gateway.require_configured()
    billing = _billing(gateway)
    customer = await payment_flows.ensure_customer(db, gateway, settings, user_id)
    async with db.transaction() as session:
        live = [service.view_of(r) for r in await repo.live_for_user(session, user_id)]
        attempt = await repo.count_for_user(session, user_id)
    for existing in live:
        if existing.status != SubscriptionStatus.INCOMPLETE:
            raise SubscriptionExists()
        if existing.plan == plan_id and existing.latest_invoice_id:
            inv = await billing.retrieve_invoice(existing.latest_invoice_id)
            if inv.status == "open":
                await sync_subscription(db, gateway, settings, existing.id, invoices=[inv])
                view = await _view(db, user_id)
                assert view is not None
                return Started(view, inv.client_secret)
        await billing.cancel_now(existing.id)
        await sync_subscription(db, gateway, settings, existing.id)
    price_id, _ = await billing.ensure_price(plan_id, plan)
    try:
        sub, invoice = await billing.create_subscription(
            customer_id=customer.customer_id,
            price_id=price_id,
            user_id=user_id,
            plan_id=plan_id,
            idempotency_key=f"subscription:{user_id}:{attempt}",
        )
    except StripeRequestRefused as exc:
        if isinstance(exc.__cause__, stripe.IdempotencyError):
            raise SubscriptionExists() from exc  # a racing request subscribed to another plan
        raise
    await sync_subscription(
        db,
        gateway,
        settings,
        sub.id,
        snapshot=sub,
        invoices=[invoice] if invoice else [],
    )
    async with db.transaction() as session:
        row = await repo.lock_subscription(session, sub.id)
        view = service.view_of(row) if row else None
    if view is None:  # pragma: no cover - our own plan's price is always one of ours
        raise SubscriptionNotFound()
    return Started(view, invoice.client_secret if invoice else None)


async def _live(db: Database, user_id: int) -> SubscriptionView:
    view = await _view(db, user_id)
    if view is None or not view.live or view.status == SubscriptionStatus.INCOMPLETE:
        raise SubscriptionNotFound()
    return view


async def _item_of(billing: Billing, sub_id: str) -> str:
    item = (await billing.retrieve_subscription(sub_id)).item_id
    if item is None:  # pragma: no cover - every subscription of ours has its one item
        raise SubscriptionNotFound()
    return item


async def change_plan(
    db: Database, gateway: StripeGateway, settings: Settings, *, user_id: int, plan_id: str
) -> SubscriptionView:
    """Upgrade now (prorated, the allotment difference once paid) or downgrade at the
    period end; see the module's notes."""
    target = service.find_plan(settings, plan_id)
    gateway.require_configured()
    view = await _live(db, user_id)
    billing = _billing(gateway)
    current = service.find_plan(settings, view.plan)
    item = await _item_of(billing, view.id)
    undo_downgrade: dict[str, Any] = {
        "items": [{"id": item, "price": (await billing.ensure_price(view.plan, current))[0]}],
        "proration_behavior": "none",
        "metadata": {service.DOWNGRADED_FROM: "", service.DOWNGRADE_AT: ""},
    }
    if plan_id == view.plan:
        if view.scheduled_plan is not None:
            await billing.update_subscription(view.id, undo_downgrade)
    elif target.price > current.price:
        if view.scheduled_plan is not None:
            await billing.update_subscription(view.id, undo_downgrade)
        price_id, _ = await billing.ensure_price(plan_id, target)
        await billing.update_subscription(
            view.id,
            {
                "items": [{"id": item, "price": price_id}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "pending_if_incomplete",
            },
        )
    else:
        price_id, _ = await billing.ensure_price(plan_id, target)
        period_end = view.current_period_end
        await billing.update_subscription(
            view.id,
            {
                "items": [{"id": item, "price": price_id}],
                "proration_behavior": "none",
                "metadata": {
                    service.DOWNGRADED_FROM: view.plan,
                    service.DOWNGRADE_AT: str(int(period_end.timestamp())) if period_end else "",
                },
            },
        )
    await sync_subscription(db, gateway, settings, view.id)
    return await _live_or_last(db, user_id)


async def _live_or_last(db: Database, user_id: int) -> SubscriptionView:
    view = await _view(db, user_id)
    if view is None:  # pragma: no cover - the caller just synced it
        raise SubscriptionNotFound()
    return view


async def _set_cancel(
    db: Database, gateway: StripeGateway, settings: Settings, user_id: int, value: bool
) -> SubscriptionView:
    gateway.require_configured()
    view = await _live(db, user_id)
    await _billing(gateway).update_subscription(view.id, {"cancel_at_period_end": value})
    await sync_subscription(db, gateway, settings, view.id)
    return await _live_or_last(db, user_id)


async def cancel_subscription(
    db: Database, gateway: StripeGateway, settings: Settings, *, user_id: int
) -> SubscriptionView:
    """Cancel at the period end (the paid month and its allotment stay)."""
    return await _set_cancel(db, gateway, settings, user_id, True)


async def resume_subscription(
    db: Database, gateway: StripeGateway, settings: Settings, *, user_id: int
) -> SubscriptionView:
    """Undo a cancellation at the period end."""
    return await _set_cancel(db, gateway, settings, user_id, False)


@dataclass(frozen=True)
class Current:
    subscription: SubscriptionView | None
    client_secret: str | None


async def current_subscription(
    db: Database, gateway: StripeGateway, user_id: int
) -> Current:
    """The user's subscription; with a payment to finish in the page (an unpaid first
    invoice, a failed renewal, 3D Secure), the open invoice's client secret from Stripe."""
    view = await _view(db, user_id)
    if view is None or view.latest_invoice_id is None or not gateway.configured:
        return Current(view, None)
    needs_page = view.problem is not None or view.status == SubscriptionStatus.INCOMPLETE
    if not needs_page or not view.live:
        return Current(view, None)
    try:
        inv = await _billing(gateway).retrieve_invoice(view.latest_invoice_id)
    except StripeUnavailable:  # the page still shows the subscription and its problem
        log.warning("no client secret for %s: Stripe is not answering", view.id)
        return Current(view, None)
    return Current(view, inv.client_secret if inv.status == "open" else None)


async def admin_view(db: Database, user_id: int) -> SubscriptionView | None:
    return await _view(db, user_id)


async def portal_url(
    db: Database, gateway: StripeGateway, settings: Settings, *, user_id: int, return_url: str
) -> str:
    if not portal_available(settings):
        raise PortalUnavailable()
    async with db.transaction() as session:
        customer = await repo.customer_of_user(session, user_id)
        customer_id = customer.customer_id if customer else None
    if customer_id is None:
        raise SubscriptionNotFound()
    return await _billing(gateway).portal_url(customer_id, return_url)


async def advance_clock(
    db: Database, gateway: StripeGateway, settings: Settings, *, user_id: int, days: int
) -> int:
    """Development: move the user's test clock ``days`` forward (Stripe runs renewals and
    sends their events); answers the clock's new frozen time."""
    if not settings.test_clocks_enabled or settings.is_production:
        raise ClockRouteOff()
    async with db.transaction() as session:
        customer = await repo.customer_of_user(session, user_id)
        clock = customer.test_clock_id if customer else None
    if clock is None:
        raise ClockRouteOff("You have no test clock yet: subscribe first.")
    return await _billing(gateway).advance_clock(clock, days * 86400)


# --- the webhook inbox and reconcile -------------------------------------------------------


def _subscription_named(event_type: str, obj: dict[str, Any]) -> str | None:
    if event_type.startswith("customer.subscription."):
        value = obj.get("id")
    else:
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        value = details.get("subscription")
    return value if isinstance(value, str) and value else None


async def apply_event(
    h: payment_flows.Handling, gateway: StripeGateway, settings: Settings
) -> bool:
    """Apply a billing event, or a payment event about an invoice's PaymentIntent; False
    for anything else (payments applies it)."""
    event = h.event

    async def mark_done(session: AsyncSession, outcome: SyncOutcome) -> None:
        if outcome.ignored:
            await h.done_in(session, EventStatus.IGNORED, outcome.ignored)
        else:
            await h.done_in(session, EventStatus.HANDLED)

    if event.type.startswith(("invoice.", "customer.subscription.")):
        async with h.db.transaction() as session:
            payload = await repo.event_payload(session, event.id)
        obj = ((payload or {}).get("data") or {}).get("object") or {}
        sub_id = _subscription_named(event.type, obj)
        if sub_id is None:
            await h.done(EventStatus.IGNORED, "not about a subscription")
            return True
        is_invoice = event.type.startswith("invoice.") and bool(obj.get("id"))
        invoice_ids = [str(obj["id"])] if is_invoice else []
        await sync_subscription(
            h.db, gateway, settings, sub_id, invoice_ids=invoice_ids, also=mark_done
        )
        return True
    pi_id = h.payment_intent_id
    if pi_id is None:
        return False
    # One read-only statement (every payment event asks it, a purchase's included).
    owner = await h.db.read(repo.INTENT_OWNER, payment_intent_id=pi_id)
    assert owner is not None  # a select without FROM: always its one row
    found: tuple[str, str] | None = None
    if owner["invoice_id"] is not None:
        found = (str(owner["subscription_id"]), str(owner["invoice_id"]))
    purchase = found is None and bool(owner["purchase"])
    if found is None and not purchase and event.type.startswith(MONEY_BACK_PREFIXES):
        # Money going back on an intent that is neither a purchase nor an invoice we
        # know: ask Stripe whether it pays an invoice (its row may never have reached us).
        billing = _billing(gateway)
        invoice_id = await billing.invoice_of_intent(pi_id)
        if invoice_id is not None:
            inv_snap = await billing.retrieve_invoice(invoice_id)
            if inv_snap.subscription_id is not None:
                found = (inv_snap.subscription_id, invoice_id)
    if found is None:
        return False
    await sync_subscription(
        h.db, gateway, settings, found[0], invoice_ids=[found[1]], also=mark_done
    )
    return True


async def reconcile_subscriptions(
    db: Database, gateway: StripeGateway, settings: Settings, report: ReconcileReport
) -> None:
    """Repair what lost webhooks left behind: every subscription of every customer of
    ours is synced, with each invoice we lack or whose status changed, and every invoice
    of the reconcile window (a refund or dispute of it may have been missed); each paid
    one grants once, whoever sees it first."""
    async with db.transaction() as session:
        customers = await repo.all_customers(session)
    billing = _billing(gateway)
    recent = int(report.since.timestamp())
    for user_id, customer_id in customers:
        try:
            subs = await billing.list_subscriptions(customer_id)
            for sub in subs:
                async with db.transaction() as session:
                    ours = {r.id: r.status for r in await repo.invoices_of(session, sub.id)}
                invoice_ids = [
                    inv_id
                    for inv_id, status, created in await billing.list_invoices(sub.id)
                    if ours.get(inv_id) != status or created >= recent
                ]
                outcome = await sync_subscription(
                    db, gateway, settings, sub.id, snapshot=sub, invoice_ids=invoice_ids
                )
                report.subscriptions_checked += 1
                if outcome.changed:
                    report.subscriptions_changed += 1
        except StripeUnavailable:
            raise
        except PaymentError as exc:  # one customer must not stop the others
            report.errors.append((customer_id, exc.code))
            log.warning("reconcile: subscriptions of user %d: %s", user_id, exc.code)


payment_flows.EVENT_APPLIERS.append(apply_event)
payment_flows.RECONCILERS.append(reconcile_subscriptions)
