"""Subscriptions, synced from Stripe's state — the only place allotments move.

Webhooks (``invoice.*``, ``customer.subscription.*``, and refunds and disputes of an
invoice's charge), the routes after each change, and reconciliation all call
:func:`tokenbank.subscriptions.flows.sync_subscription`: it reads the subscription, its
latest invoice and any invoice the event names from Stripe OUTSIDE a transaction, then
in ONE transaction calls :func:`apply` (this module: takes that session, never commits),
which locks our ``subscriptions`` row, then each ``subscription_invoices`` row, and
writes the difference between our books and Stripe's state.

Rules:

- An invoice allots ``tokens``: a month of its plan for a ``subscription_create`` or
  ``subscription_cycle`` invoice, and for an upgrade's prorated ``subscription_update``
  invoice the difference between the new plan's month and the old one's (each line of
  the invoice counts its plan's tokens with the sign of its amount). They are granted
  once, when Stripe says the invoice is ``paid``, under the ledger key
  ``allotment:<invoice id>`` (:func:`grant_allotment`), and expire the plan's
  ``allotment_expires_after_days`` after the payment.
- An open invoice grants nothing: ``past_due``/``unpaid`` subscriptions get no allotment,
  and ``problem`` says why (``payment_failed``: the last attempt was declined;
  ``requires_action``: 3D Secure waits for the person).
- Money returned on an invoice's charge (refunds that are not failed or canceled,
  disputes' withdrawn funds) takes back ``ceil(granted * returned / paid)`` tokens, as a
  purchase's reversal does: a full refund takes the whole allotment, a partial one
  proportionally (rounded up). Only the difference to what was already taken is written
  (:func:`move_allotment`, key ``allotment_reversal:<invoice>:v<version>``), and a
  dispute won gives it back.
- A stale read moves no money: each row keeps when the state it last applied began to be
  read; a grant of a paid invoice is right whenever it is seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Plan, Settings
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.notifications import service as notifications
from tokenbank.notifications.models import NotificationKind
from tokenbank.payments.stripe_client import IntentSnapshot
from tokenbank.payments.sync import reversal_target
from tokenbank.subscriptions import repository as repo
from tokenbank.subscriptions.billing import InvoiceSnapshot, SubscriptionSnapshot
from tokenbank.subscriptions.errors import UnknownPlan
from tokenbank.subscriptions.models import (
    InvoiceStatus,
    Problem,
    Subscription,
    SubscriptionInvoice,
    SubscriptionStatus,
)
from tokenbank.types import record_of, utcnow

log = logging.getLogger(__name__)

_SUB_STATUSES = frozenset(m.value for m in SubscriptionStatus)
_INVOICE_STATUSES = frozenset(m.value for m in InvoiceStatus)
#: Metadata the downgrade writes on the Stripe subscription: the plan the current period
#: was paid for, and the period end from which the new (lower) price applies.
DOWNGRADED_FROM = "downgraded_from"
DOWNGRADE_AT = "downgrade_at"


def find_plan(settings: Settings, plan_id: str) -> Plan:
    plan = settings.subscription_plans.get(plan_id)
    if plan is None:
        raise UnknownPlan()
    return plan


# --- the ledger: one function in, one function out -----------------------------------


async def grant_allotment(
    session: AsyncSession,
    *,
    user_id: int,
    tokens: int,
    invoice_id: str,
    plan: str,
    expires_at: datetime,
) -> int:
    """Credit one paid invoice's allotment (once: the key is the invoice), as a lot that
    expires at ``expires_at``. Returns the tokens credited now (0 for a replay)."""
    entry = await ledger.credit_allotment(
        session,
        user_id,
        tokens,
        idempotency_key=keys.allotment(invoice_id),
        expires_at=expires_at,
        description=f"{plan} plan: {tokens} tokens for invoice {invoice_id}"
        f" (expire {expires_at.date().isoformat()})",
    )
    return 0 if entry.replayed else tokens


async def move_allotment(
    session: AsyncSession,
    *,
    user_id: int,
    delta: int,
    invoice_id: str,
    payment_intent_id: str,
    version: int,
    why: str,
) -> None:
    """Take back ``delta`` tokens of an invoice's allotment whose money went back (from
    that allotment's own lot first, then the others; may leave the balance negative, as a
    purchase's reversal may), or, for a negative ``delta``, give back tokens taken earlier
    (a dispute won, a refund that failed). Keyed by the invoice row's ``version``."""
    if delta > 0:
        await ledger.reverse_allotment(
            session,
            user_id,
            delta,
            allotment_key=keys.allotment(invoice_id),
            idempotency_key=keys.allotment_reversal(invoice_id, version),
            description=f"{delta} allotment tokens taken back on invoice {invoice_id}"
            f" ({payment_intent_id}): {why}",
        )
    elif delta < 0:
        await ledger.reinstate_purchase(
            session,
            user_id,
            -delta,
            payment_intent_id,
            f"{-delta} allotment tokens given back on invoice {invoice_id}: {why}",
            idempotency_key=keys.allotment_reinstatement(invoice_id, version),
        )


# --- the sync --------------------------------------------------------------------------


@dataclass
class SyncOutcome:
    subscription_id: str
    ignored: str | None = None
    granted: int = 0
    #: How many invoices' allotments were granted by this sync.
    allotments: int = 0
    taken_back: int = 0
    given_back: int = 0
    changed: bool = False
    invoices: list[str] = field(default_factory=list)


def invoice_tokens(settings: Settings, inv: InvoiceSnapshot, plans: dict[str, str | None]) -> int:
    """The allotment an invoice pays for (see the module's rules); never negative."""
    total = 0
    for line in inv.lines:
        plan_id = plans.get(line.price_id or "")
        plan = settings.subscription_plans.get(plan_id or "")
        if plan is None or line.amount == 0:
            continue
        total += plan.monthly_tokens if line.amount > 0 else -plan.monthly_tokens
    return max(total, 0)


def invoice_plan(inv: InvoiceSnapshot, plans: dict[str, str | None]) -> str | None:
    positive = [line for line in inv.lines if line.amount > 0 and plans.get(line.price_id or "")]
    if not positive:
        return None
    best = max(positive, key=lambda line: line.amount)
    return plans.get(best.price_id or "")


def problem_of(sub: SubscriptionSnapshot, latest: InvoiceSnapshot | None) -> Problem | None:
    if latest is None or latest.status != InvoiceStatus.OPEN:
        return None
    intent = latest.intent
    if intent is not None and intent.status == "requires_action":
        return Problem.REQUIRES_ACTION
    if intent is not None and intent.last_error_code:
        return Problem.PAYMENT_FAILED
    if sub.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID):
        return Problem.PAYMENT_FAILED
    return None


def plans_of(
    settings: Settings, sub: SubscriptionSnapshot, items_plan: str | None
) -> tuple[str | None, str | None]:
    """(the plan paid for this period, the plan the next period is billed at or None)."""
    was = sub.metadata.get(DOWNGRADED_FROM)
    at = sub.metadata.get(DOWNGRADE_AT, "")
    if (
        was
        and at.isdigit()
        and sub.current_period_end is not None
        and int(sub.current_period_end.timestamp()) <= int(at)
        and was in settings.subscription_plans
        and items_plan != was
    ):
        return was, items_plan
    return items_plan, None


async def apply(
    session: AsyncSession,
    settings: Settings,
    sub: SubscriptionSnapshot,
    invoices: list[InvoiceSnapshot],
    plans: dict[str, str | None],
    latest: InvoiceSnapshot | None,
) -> SyncOutcome:
    """The transactional half of the sync: lock our rows and write the differences."""
    outcome = SyncOutcome(sub.id)
    row = await _locked_row(session, settings, sub, plans, outcome)
    if row is None:
        return outcome
    if row.stripe_read_at is None or sub.read_at >= row.stripe_read_at:
        plan, scheduled = plans_of(settings, sub, plans.get(sub.price_id or ""))
        status = sub.status if sub.status in _SUB_STATUSES else row.status
        if status != sub.status:
            log.warning("%s has a status we do not know (%r)", sub.id, sub.status)
        problem = problem_of(sub, latest)
        fields: dict[str, object] = {
            "plan": plan or row.plan,
            "scheduled_plan": scheduled,
            "status": status,
            "problem": None if problem is None else str(problem),
            "current_period_start": sub.current_period_start,
            "current_period_end": sub.current_period_end,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "latest_invoice_id": sub.latest_invoice_id,
        }
        touched = [k for k, v in fields.items() if getattr(row, k) != v]
        for k in touched:
            setattr(row, k, fields[k])
        if "problem" in touched and problem == Problem.PAYMENT_FAILED and _renewal(latest):
            # Once per transition into the problem (a retry failing again is no news).
            await notifications.notify(
                session,
                row.user_id,
                NotificationKind.RENEWAL_FAILED,
                {"plan": row.plan, "subscription_id": row.id,
                 "page": "/subscription"},
            )
        if touched:
            row.updated_at = utcnow()
            outcome.changed = True
        row.stripe_read_at = sub.read_at
    for inv in invoices:
        if inv.subscription_id != sub.id:
            continue
        await _apply_invoice(session, settings, row, inv, plans, outcome)
    await session.flush()
    return outcome


def _renewal(inv: InvoiceSnapshot | None) -> bool:
    """A period's invoice (not the first one, not an upgrade's proration)."""
    return inv is not None and inv.billing_reason == "subscription_cycle"


async def _locked_row(
    session: AsyncSession,
    settings: Settings,
    sub: SubscriptionSnapshot,
    plans: dict[str, str | None],
    outcome: SyncOutcome,
) -> Subscription | None:
    row = await repo.lock_subscription(session, sub.id)
    if row is not None:
        return row
    plan, scheduled = plans_of(settings, sub, plans.get(sub.price_id or ""))
    if plan is None:
        outcome.ignored = "not a subscription to one of our plans"
        return None
    user_id = await repo.user_of_customer(session, sub.customer_id)
    if user_id is None:
        outcome.ignored = "its customer is none of our users"
        return None
    if sub.status not in _SUB_STATUSES:
        outcome.ignored = f"a status we do not know ({sub.status!r})"
        return None
    now = utcnow()
    await repo.insert_subscription(
        session,
        {
            "id": sub.id,
            "user_id": user_id,
            "customer_id": sub.customer_id,
            "plan": plan,
            "scheduled_plan": scheduled,
            "status": sub.status,
            "problem": None,
            "current_period_start": sub.current_period_start,
            "current_period_end": sub.current_period_end,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "latest_invoice_id": sub.latest_invoice_id,
            "stripe_read_at": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    outcome.changed = True
    return await repo.lock_subscription(session, sub.id)


async def _apply_invoice(
    session: AsyncSession,
    settings: Settings,
    sub: Subscription,
    inv: InvoiceSnapshot,
    plans: dict[str, str | None],
    outcome: SyncOutcome,
) -> None:
    if inv.status not in _INVOICE_STATUSES:
        log.warning("invoice %s has a status we do not know (%r)", inv.id, inv.status)
        return
    row = await repo.lock_invoice(session, inv.id)
    if row is None:
        now = utcnow()
        await repo.insert_invoice(
            session,
            {
                "id": inv.id,
                "subscription_id": sub.id,
                "user_id": sub.user_id,
                "billing_reason": inv.billing_reason,
                "plan": invoice_plan(inv, plans),
                "status": inv.status,
                "payment_intent_id": inv.payment_intent_id,
                "amount_due": inv.amount_due,
                "amount_paid": inv.amount_paid,
                "amount_returned": 0,
                "currency": inv.currency,
                "tokens": invoice_tokens(settings, inv, plans),
                "tokens_granted": 0,
                "reversed_tokens": 0,
                "expires_at": None,
                "stripe_read_at": None,
                "version": 0,
                "created_at": inv.created or now,
                "updated_at": now,
            },
        )
        row = await repo.lock_invoice(session, inv.id)
        assert row is not None
        outcome.changed = True
    outcome.invoices.append(inv.id)
    before = (row.status, row.tokens_granted, row.reversed_tokens, row.payment_intent_id)
    if row.tokens_granted == 0:
        row.tokens = invoice_tokens(settings, inv, plans)
        row.plan = invoice_plan(inv, plans) or row.plan
    if inv.status == InvoiceStatus.PAID and row.tokens_granted == 0 and row.tokens > 0:
        plan = settings.subscription_plans.get(row.plan or sub.plan)
        days = plan.allotment_expires_after_days if plan else 60
        paid_at = inv.paid_at or utcnow()
        row.expires_at = paid_at + timedelta(days=days)
        got = await grant_allotment(
            session,
            user_id=row.user_id,
            tokens=row.tokens,
            invoice_id=inv.id,
            plan=row.plan or sub.plan,
            expires_at=row.expires_at,
        )
        outcome.granted += got
        outcome.allotments += 1 if got else 0
        if got and _renewal(inv):
            await notifications.notify(
                session,
                row.user_id,
                NotificationKind.SUBSCRIPTION_RENEWED,
                {"plan": row.plan or sub.plan, "tokens": got, "invoice_id": inv.id,
                 "subscription_id": sub.id, "expires_on": row.expires_at.date().isoformat(),
                 "page": "/subscription"},
            )
        row.tokens_granted = row.tokens
    fresh = row.stripe_read_at is None or inv.read_at >= row.stripe_read_at
    if fresh:
        row.status = inv.status
        row.amount_due = inv.amount_due
        row.amount_paid = inv.amount_paid
        row.payment_intent_id = inv.payment_intent_id or row.payment_intent_id
        if row.tokens_granted > 0 and inv.intent is not None:
            await _move_reversal(session, row, inv.intent, outcome)
        row.stripe_read_at = inv.read_at
    after = (row.status, row.tokens_granted, row.reversed_tokens, row.payment_intent_id)
    if before != after:
        row.version += 1
        row.updated_at = utcnow()
        outcome.changed = True


async def _move_reversal(
    session: AsyncSession, row: SubscriptionInvoice, intent: IntentSnapshot, outcome: SyncOutcome
) -> None:
    paid = row.amount_paid or intent.amount_received or intent.amount
    returned = intent.returned_cents
    row.amount_returned = returned
    target = reversal_target(
        tokens=row.tokens_granted, amount_cents=paid, returned_cents=returned
    )
    delta = target - row.reversed_tokens
    why = (
        f"{intent.refunded_cents} {row.currency} cents refunded, "
        f"{intent.disputed_cents} held by disputes"
    )
    await move_allotment(
        session,
        user_id=row.user_id,
        delta=delta,
        invoice_id=row.id,
        payment_intent_id=intent.id,
        version=row.version,
        why=why,
    )
    outcome.taken_back += max(delta, 0)
    outcome.given_back += max(-delta, 0)
    row.reversed_tokens = target


# --- reads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionView:
    id: str
    user_id: int
    customer_id: str
    plan: str
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    scheduled_plan: str | None
    problem: str | None
    latest_invoice_id: str | None

    @property
    def live(self) -> bool:
        return not SubscriptionStatus(self.status).is_ended


def view_of(row: Subscription) -> SubscriptionView:
    return record_of(SubscriptionView, row)


async def current(session: AsyncSession, user_id: int) -> SubscriptionView | None:
    row = await repo.current_for_user(session, user_id)
    return None if row is None else view_of(row)
