"""Bring one payment in line with Stripe's current state — the only place purchase tokens move.

Webhooks, ``confirm-payment`` and reconciliation all call :func:`sync_payment`. It reads
the PaymentIntent (with its latest charge and dispute) from Stripe OUTSIDE any database
transaction, then in ONE transaction locks our ``payments`` row and writes the difference
between what the ledger already says and what Stripe says now.

Rules (tested in ``tests/payments``):

- What a webhook body says is never trusted: only Stripe's current state counts, so a
  repeated, late or forged event can at most trigger a harmless re-read.
- Amount, currency and metadata (``type``, ``user_id``, ``tokens``) must match our row;
  on a mismatch nothing is credited, ``last_error_code`` records why, and it is logged.
- A ``succeeded`` intent credits the row's tokens once (``ledger.credit_purchase``, unique
  per PaymentIntent — ledger guarantee 5).
- Reversals follow the money. The target reversed total is all tokens for a full refund
  or a dispute whose funds are withdrawn and not reinstated (open with funds withdrawn,
  or lost); otherwise ``ceil(tokens * amount_refunded / amount)`` for partial refunds,
  capped at the tokens bought. Rounding up means a customer never keeps a token they
  got their money back for (a 1-cent refund of 100 tokens for $5 takes back 1 token).
- Only the difference between that target and the row's ``reversed_tokens`` is written
  (``purchase_reversal`` or ``purchase_reinstatement``). The ledger key carries the row's
  ``version``, which every change increments under the row lock, so concurrent or
  repeated syncs write each change once.
- A stale read never moves a row backwards: refunds only grow (we keep the larger
  ``amount_refunded``), a dispute only moves forward (open → funds withdrawn → won/lost),
  and ``succeeded``/``canceled`` are final.
- An intent we have no row for is adopted only if its metadata says ``token_purchase``,
  names an existing user and a tier whose price, currency and tokens match; otherwise it
  is ignored and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.observability import PURCHASES, TOKENS_PURCHASED, logs_payment_intent
from tokenbank.payments import repository as repo
from tokenbank.payments.models import Payment
from tokenbank.payments.stripe_client import IntentSnapshot, StripeGateway
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

#: How far a dispute has gone; a row only ever moves to an equal or later stage. An
#: inquiry closed without a chargeback moved no money, so anything may follow it.
_DISPUTE_STAGE = {None: 0, "closed": 0, "open": 1, "funds_withdrawn": 2, "won": 3, "lost": 3}


@dataclass(frozen=True)
class PaymentView:
    """A payments row as plain values (safe to use after its transaction ended)."""

    id: int
    user_id: int
    payment_intent_id: str | None
    tier: str
    tokens: int
    amount_cents: int
    currency: str
    status: str
    tokens_credited: int
    reversed_tokens: int
    amount_refunded_cents: int
    dispute_status: str | None
    last_error_code: str | None
    created_at: datetime
    updated_at: datetime


def view_of(row: Payment) -> PaymentView:
    return PaymentView(
        id=row.id,
        user_id=row.user_id,
        payment_intent_id=row.stripe_payment_intent_id,
        tier=row.tier,
        tokens=row.tokens,
        amount_cents=row.amount_cents,
        currency=row.currency,
        status=row.status,
        tokens_credited=row.tokens_credited,
        reversed_tokens=row.reversed_tokens,
        amount_refunded_cents=row.amount_refunded_cents,
        dispute_status=row.dispute_status,
        last_error_code=row.last_error_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync found and changed."""

    payment_intent_id: str
    payment: PaymentView | None = None
    status_before: str | None = None
    credited_tokens: int = 0
    reversed_tokens: int = 0
    reinstated_tokens: int = 0
    adopted: bool = False
    refused: str | None = None
    ignored: str | None = None

    @property
    def status_after(self) -> str | None:
        return self.payment.status if self.payment else None

    @property
    def changed(self) -> bool:
        return bool(
            self.adopted
            or self.credited_tokens
            or self.reversed_tokens
            or self.reinstated_tokens
            or self.status_before != self.status_after
        )


AlsoInTransaction = Callable[[AsyncSession, SyncOutcome], Awaitable[None]]


@logs_payment_intent
async def sync_payment(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    payment_intent_id: str,
    *,
    snapshot: IntentSnapshot | None = None,
    also: AlsoInTransaction | None = None,
) -> SyncOutcome:
    """Read the intent from Stripe (unless a fresh ``snapshot`` is given), then apply it.

    ``also`` runs inside the same transaction as the effect (the webhook inbox marks its
    event handled there), so both commit or neither does.
    """
    snap = snapshot if snapshot is not None else await gateway.retrieve_intent(payment_intent_id)
    async with db.transaction() as session:
        outcome = await apply_snapshot(session, settings, snap)
        if also is not None:
            await also(session, outcome)
    if outcome.credited_tokens:
        PURCHASES.inc()
        TOKENS_PURCHASED.inc(outcome.credited_tokens)
    return outcome


def reversal_target(
    *, tokens: int, amount_cents: int, refunded_cents: int, dispute_funds_withdrawn: bool
) -> int:
    """Tokens that should be taken back for this much money returned (see module docs)."""
    if dispute_funds_withdrawn or refunded_cents >= amount_cents:
        return tokens
    if refunded_cents <= 0:
        return 0
    return min(tokens, -(-tokens * refunded_cents // amount_cents))  # ceil, in integers


async def apply_snapshot(
    session: AsyncSession, settings: Settings, snap: IntentSnapshot
) -> SyncOutcome:
    """The transactional half of the sync: lock the row and write the differences."""
    row, adopted, ignored = await _locked_row(session, settings, snap)
    if row is None:
        return SyncOutcome(payment_intent_id=snap.id, ignored=ignored)
    status_before = None if adopted else row.status
    refusal = _mismatch(row, snap)
    if refusal is not None:
        log.warning(
            "not crediting %s: %s (payment %d, user %d)", snap.id, refusal, row.id, row.user_id
        )
    ledger_before = (row.tokens_credited, row.reversed_tokens)
    credited = reversed_ = 0
    if refusal is None and snap.status == "succeeded" and row.tokens_credited == 0:
        credited = await _credit(session, row)
    refunded = max(row.amount_refunded_cents, snap.amount_refunded)
    dispute = _later_dispute(row.dispute_status, snap.dispute.status if snap.dispute else None)
    if refusal is None and row.tokens_credited > 0:
        reversed_ = await _move_reversal(session, row, refunded, dispute)
    new_status = _next_status(row.status, snap)
    fields = {
        "status": new_status,
        "amount_refunded_cents": refunded,
        "dispute_status": dispute,
        "last_error_code": refusal
        or (snap.last_error_code if new_status == "failed" else row.last_error_code),
    }
    touched = [name for name, value in fields.items() if getattr(row, name) != value]
    for name in touched:
        setattr(row, name, fields[name])
    if touched or adopted or ledger_before != (row.tokens_credited, row.reversed_tokens):
        # Every change moves the version, so the next reversal gets a key of its own.
        row.version += 1
        row.updated_at = utcnow()
    await session.flush()
    return SyncOutcome(
        payment_intent_id=snap.id,
        payment=view_of(row),
        status_before=status_before,
        credited_tokens=credited,
        reversed_tokens=max(reversed_, 0),
        reinstated_tokens=max(-reversed_, 0),
        adopted=adopted,
        refused=refusal,
    )


def _next_status(current: str, snap: IntentSnapshot) -> str:
    if current in repo.FINAL_STATUSES:
        return current
    if snap.status == "requires_payment_method" and snap.last_error_code:
        return "failed"  # declined or failed 3D Secure; the intent takes another card
    return snap.status


def _mismatch(row: Payment, snap: IntentSnapshot) -> str | None:
    """Why Stripe's intent is not the purchase we recorded (None when it is)."""
    if snap.amount != row.amount_cents or (
        snap.status == "succeeded" and snap.amount_received != row.amount_cents
    ):
        return "amount_mismatch"
    if snap.currency != row.currency.lower():
        return "currency_mismatch"
    md = snap.metadata
    if (
        md.get("type") != "token_purchase"
        or md.get("user_id") != str(row.user_id)
        or md.get("tokens") != str(row.tokens)
    ):
        return "metadata_mismatch"
    return None


def _later_dispute(ours: str | None, theirs: str | None) -> str | None:
    return theirs if _DISPUTE_STAGE.get(theirs, 0) >= _DISPUTE_STAGE.get(ours, 0) else ours


async def _credit(session: AsyncSession, row: Payment) -> int:
    assert row.stripe_payment_intent_id is not None
    entry = await ledger.credit_purchase(
        session,
        row.user_id,
        row.tokens,
        row.stripe_payment_intent_id,
        f"Bought the {row.tier} pack: {row.tokens} tokens",
    )
    row.tokens_credited = row.tokens
    return 0 if entry.replayed else row.tokens


async def _move_reversal(
    session: AsyncSession, row: Payment, refunded_cents: int, dispute: str | None
) -> int:
    """Write the difference to the target reversal; positive = taken back."""
    pi = row.stripe_payment_intent_id
    assert pi is not None
    withdrawn = dispute in ("funds_withdrawn", "lost")
    target = reversal_target(
        tokens=row.tokens_credited,
        amount_cents=row.amount_cents,
        refunded_cents=refunded_cents,
        dispute_funds_withdrawn=withdrawn,
    )
    delta = target - row.reversed_tokens
    if delta > 0:
        why = "a dispute" if withdrawn else f"a refund of {refunded_cents} {row.currency} cents"
        await ledger.reverse_purchase(
            session,
            row.user_id,
            delta,
            pi,
            f"{delta} tokens taken back for {why} on {pi}",
            idempotency_key=f"reversal:{pi}:v{row.version}",
        )
    elif delta < 0:
        await ledger.reinstate_purchase(
            session,
            row.user_id,
            -delta,
            pi,
            f"{-delta} tokens given back: dispute on {pi} {dispute or 'resolved'}",
            idempotency_key=f"reinstatement:{pi}:v{row.version}",
        )
    row.reversed_tokens = target
    return delta


async def _locked_row(
    session: AsyncSession, settings: Settings, snap: IntentSnapshot
) -> tuple[Payment | None, bool, str | None]:
    """Our row for the intent, locked (adopting one if the intent is a genuine purchase),
    whether it was adopted now, and why the intent was ignored if it was."""
    row = await repo.find_by_intent(session, snap.id, lock=True)
    if row is not None:
        return row, False, None
    reason = adoption_refusal(snap, settings)
    if reason is not None:
        log.info("ignoring %s: %s", snap.id, reason)
        return None, False, reason
    user_id = int(snap.metadata["user_id"])
    if not await repo.user_exists(session, user_id):
        log.warning("ignoring %s: it names user %d, who does not exist", snap.id, user_id)
        return None, False, "unknown user in its metadata"
    now = utcnow()
    claimed = False
    payment_id = snap.metadata.get("payment_id", "")
    if payment_id.isdigit():
        # Our row exists but never learnt its intent id (a crash between the two steps).
        claimed = await repo.claim_for_intent(session, int(payment_id), user_id, snap.id, now)
    if not claimed:
        tier = snap.metadata["tier"]
        await repo.insert_payment(
            session,
            {
                "user_id": user_id,
                "tier": tier,
                "tokens": settings.pricing_tiers[tier].tokens,
                "amount_cents": snap.amount,
                "currency": snap.currency,
                "stripe_payment_intent_id": snap.id,
                "status": "created",
                "tokens_credited": 0,
                "reversed_tokens": 0,
                "amount_refunded_cents": 0,
                "version": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
    log.info("adopted %s for user %d", snap.id, user_id)
    return await repo.find_by_intent(session, snap.id, lock=True), True, None


def adoption_refusal(snap: IntentSnapshot, settings: Settings) -> str | None:
    """Why an intent without a row of ours must not be adopted (None if it may be)."""
    md = snap.metadata
    if not snap.is_token_purchase:
        return "not a token purchase"
    if not md.get("user_id", "").isdigit():
        return "no user in its metadata"
    tier = settings.pricing_tiers.get(md.get("tier", ""))
    if tier is None:
        return "unknown tier in its metadata"
    if (
        tier.price != snap.amount
        or tier.currency.lower() != snap.currency
        or str(tier.tokens) != md.get("tokens")
    ):
        return "its amount or tokens do not match the tier"
    return None
