"""Bring one payment in line with Stripe's current state — the only place purchase tokens move.

Webhooks, ``confirm-payment`` and reconciliation all call
:func:`tokenbank.payments.flows.sync_payment`. It reads the PaymentIntent, its latest
charge, every refund of it and every dispute on it from Stripe OUTSIDE any database
transaction, then in ONE transaction calls :func:`apply_snapshot` (this module, which
takes that transaction's session and never commits): it locks our ``payments`` row and
writes the difference between what the ledger already says and what Stripe says.

Rules (tested in ``tests/payments``):

- What a webhook body says is never trusted: only Stripe's current state counts, so a
  repeated, late or forged event can at most trigger a harmless re-read.
- Amount, currency and metadata (``type``, ``user_id``, ``tokens``) must match our row
  for a credit; on a mismatch nothing is credited, ``last_error_code`` and
  ``stripe_mismatch`` record why, and it is logged.
- A ``succeeded`` intent credits the row's tokens once (``ledger.credit_purchase``, unique
  per PaymentIntent — ledger guarantee 5).
- Reversals follow Stripe's money objects, never the intent's metadata once credited (an
  edit of the metadata after the credit is recorded in ``stripe_mismatch`` and shown to
  operators, and the reversal still happens). The money given back is the sum of the
  intent's refunds that are not ``failed`` or ``canceled`` (``succeeded`` and ``pending``
  count: tokens go as soon as the money leaves) plus, for every dispute on the charge,
  the funds its balance transactions withdrew minus those they reinstated (inquiries move
  nothing; a status we do not know is judged by this money alone). The target reversed
  total is ``ceil(tokens * returned / amount)``, capped at the tokens bought: a full
  refund or a fully withdrawn dispute takes everything, a partial one proportionally, and
  rounding up means a customer never keeps a token they got their money back for (a
  1-cent refund of 100 tokens for $5 takes back 1 token).
- Only the difference between that target and the row's ``reversed_tokens`` is written:
  ``purchase_reversal`` when it grows, ``purchase_reinstatement`` when it shrinks (a
  dispute won, a refund that failed after it succeeded). The ledger key carries the row's
  ``version``, which every change increments under the row lock, so concurrent or
  repeated syncs write each change once.
- A stale read never moves the money: the row keeps when the Stripe state it last
  applied began to be read (``stripe_read_at``); a read that began earlier changes
  nothing but a credit (crediting a ``succeeded`` intent is right whenever it is seen).
  App servers' clocks are assumed to agree closely; a read judged stale by mistake is
  corrected by the sync the next Stripe event (or reconcile) triggers.
  ``succeeded``/``canceled`` are final statuses.
- An intent we have no row for is adopted only if its metadata says ``token_purchase``,
  names an existing user and a tier whose price, currency and tokens match; otherwise it
  is ignored and logged.
- The operator's webhooks are written in the same transaction as the money they report
  (:func:`tokenbank.outbound.service.emit`): ``purchase.succeeded`` with the credit,
  ``purchase.refunded`` with each growth of the reversal — once each, since each change
  is written once.
- Early fraud warnings (``check_fraud_warnings``, ``EFW_AUTO_REFUND`` on): an actionable
  warning's charge is refunded in full, once per warning (its id is the idempotency key),
  before the state is read, so the same sync takes the tokens back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Unit
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.outbound import service as outbound
from tokenbank.outbound.models import EventType
from tokenbank.payments import autotopup
from tokenbank.payments import repository as repo
from tokenbank.payments.models import MoneyMismatch, Payment, PaymentIntentStatus, PaymentStatus
from tokenbank.payments.purchase import buyer_of, is_token_purchase, names_purchase, names_tokens
from tokenbank.payments.stripe_client import IntentSnapshot
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

_PAYMENT_STATUSES = frozenset(m.value for m in PaymentStatus)


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
    stripe_mismatch: str | None
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
        stripe_mismatch=row.stripe_mismatch,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def purchase_object(row: PaymentView) -> dict[str, object]:
    """A purchase as the operator's webhooks show it (``data.object``)."""
    return {
        "object": "purchase",
        "id": row.id,
        "payment_intent_id": row.payment_intent_id,
        "tier": row.tier,
        "tokens": row.tokens,
        "amount_cents": row.amount_cents,
        "currency": row.currency,
        "status": row.status,
        "tokens_credited": row.tokens_credited,
        "reversed_tokens": row.reversed_tokens,
        "amount_refunded_cents": row.amount_refunded_cents,
        "dispute_status": row.dispute_status,
        "created_at": row.created_at.isoformat(),
    }


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


def checks_fraud_warnings(event_type: str) -> bool:
    """Whether an event of this type asks the sync to act on early fraud warnings
    (``sync_payment(..., check_fraud_warnings=...)``)."""
    return event_type.startswith("radar.early_fraud_warning.")


def reversal_target(*, tokens: int, amount_cents: int, returned_cents: int) -> int:
    """Tokens that should be taken back for this much money returned (see module docs)."""
    if returned_cents >= amount_cents:
        return tokens
    if returned_cents <= 0:
        return 0
    return min(tokens, -(-tokens * returned_cents // amount_cents))  # ceil, in integers


async def apply_snapshot(
    session: AsyncSession, settings: Settings, snap: IntentSnapshot
) -> SyncOutcome:
    """The transactional half of the sync: lock the row and write the differences."""
    row, adopted, ignored = await _locked_row(session, settings, snap)
    if row is None:
        return SyncOutcome(payment_intent_id=snap.id, ignored=ignored)
    status_before = None if adopted else row.status
    mismatch = _mismatch(row, snap)
    if mismatch is not None:
        log.warning(
            "%s %s: %s (payment %d, user %d)",
            "not crediting" if row.tokens_credited == 0 else "credited, and now",
            snap.id,
            mismatch,
            row.id,
            row.user_id,
        )
    ledger_before = (row.tokens_credited, row.reversed_tokens)
    credited = moved = 0
    if (
        mismatch is None
        and snap.status == PaymentIntentStatus.SUCCEEDED
        and not row.tokens_credited
    ):
        credited = await _credit(session, row)
    fields: dict[str, object] = {}
    if row.stripe_read_at is None or snap.read_at >= row.stripe_read_at:
        if row.tokens_credited > 0:
            moved = await _move_reversal(session, row, snap)
        new_status = _next_status(row.status, snap)
        refused = mismatch if row.tokens_credited == 0 else None
        fields = {
            "status": new_status,
            "amount_refunded_cents": snap.returned_cents,
            "dispute_status": snap.dispute_state,
            "stripe_mismatch": mismatch,
            "last_error_code": refused
            or (snap.last_error_code if new_status == PaymentStatus.FAILED else None)
            or row.last_error_code,
        }
    elif credited:
        fields = {"status": PaymentStatus.SUCCEEDED}
    touched = [name for name, value in fields.items() if getattr(row, name) != value]
    for name in touched:
        setattr(row, name, fields[name])
    if touched or adopted or ledger_before != (row.tokens_credited, row.reversed_tokens):
        # Every change moves the version, so the next reversal gets a key of its own.
        row.version += 1
        row.updated_at = utcnow()
    if fields and (row.stripe_read_at is None or snap.read_at > row.stripe_read_at):
        row.stripe_read_at = snap.read_at
    await session.flush()
    # The operator's webhooks, in this same transaction: sent iff the change commits.
    if credited:
        await outbound.emit(
            session,
            EventType.PURCHASE_SUCCEEDED,
            purchase_object(view_of(row)),
            user_id=row.user_id,
        )
    if moved > 0:
        await outbound.emit(
            session,
            EventType.PURCHASE_REFUNDED,
            purchase_object(view_of(row)) | {"tokens_taken_back": moved},
            user_id=row.user_id,
        )
    await autotopup.on_payment_synced(session, settings, row, snap, fresh=bool(fields))
    return SyncOutcome(
        payment_intent_id=snap.id,
        payment=view_of(row),
        status_before=status_before,
        credited_tokens=credited,
        reversed_tokens=max(moved, 0),
        reinstated_tokens=max(-moved, 0),
        adopted=adopted,
        refused=mismatch if row.tokens_credited == 0 else None,
    )


# --- the common case, on any unit ------------------------------------------------------


def may_be_first_credit(snap: IntentSnapshot) -> bool:
    """Whether Stripe's state is the common case :func:`apply_paid` applies: a succeeded
    intent with no money given back and no dispute (a pack just paid for)."""
    return (
        snap.status == PaymentIntentStatus.SUCCEEDED
        and snap.returned_cents == 0
        and snap.dispute_state is None
    )


async def apply_paid(unit: Unit, snap: IntentSnapshot) -> SyncOutcome | None:
    """:func:`apply_snapshot` for its common case, in any kind of unit — on the webhook
    worker's path a driver unit, with no ORM session: a purchase of ours, paid
    (:func:`may_be_first_credit`), matching our row and credited for the first time,
    from a read not older than the row's last one, with no auto top-up attempt to tell.

    It locks our row, credits once (``ledger.credit_purchase``, guarantee 5), writes the
    row as :func:`apply_snapshot` would (status, money, ``tokens_credited``, a new
    version, ``stripe_read_at``) and emits ``purchase.succeeded`` — the same statements'
    effects, in the caller's unit. Returns None, having written nothing (only the row's
    lock was taken), for every other case: the caller then runs :func:`apply_snapshot`.
    """
    row = await repo.payment_to_credit(unit, snap.id)
    if row is None or row["tokens_credited"] or row["reversed_tokens"] or row["auto_topup"]:
        return None
    read_at = row["stripe_read_at"]
    if read_at is not None and snap.read_at < read_at:
        return None  # a stale read: apply_snapshot credits, and moves nothing else
    user_id, tokens = int(row["user_id"]), int(row["tokens"])
    if _mismatch_of(row["amount_cents"], row["currency"], user_id, tokens, snap) is not None:
        return None
    pi = snap.id
    entry = await ledger.credit_purchase(
        unit, user_id, tokens, pi, f"Bought the {row['tier']} pack: {tokens} tokens"
    )
    credited = 0 if entry.replayed else tokens
    new_status = _next_status(row["status"], snap)
    after = await repo.mark_credited(
        unit,
        int(row["id"]),
        status=new_status,
        refunded_cents=snap.returned_cents,
        dispute_status=snap.dispute_state,
        last_error_code=(snap.last_error_code if new_status == PaymentStatus.FAILED else None)
        or row["last_error_code"],
        read_at=snap.read_at,
        now=utcnow(),
    )
    view = PaymentView(**after)
    if credited:
        await outbound.emit(
            unit, EventType.PURCHASE_SUCCEEDED, purchase_object(view), user_id=user_id
        )
    return SyncOutcome(
        payment_intent_id=pi,
        payment=view,
        status_before=row["status"],
        credited_tokens=credited,
    )


def _next_status(current: str, snap: IntentSnapshot) -> str:
    if PaymentStatus(current).is_final:
        return current
    if snap.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD and snap.last_error_code:
        return PaymentStatus.FAILED  # declined or failed 3D Secure; it takes another card
    if snap.status not in _PAYMENT_STATUSES:
        log.warning(
            "%s has a status we do not know (%r); keeping %s", snap.id, snap.status, current
        )
        return current
    return PaymentStatus(snap.status)


def _mismatch(row: Payment, snap: IntentSnapshot) -> MoneyMismatch | None:
    """Why Stripe's intent is not the purchase we recorded (None when it is)."""
    return _mismatch_of(row.amount_cents, row.currency, row.user_id, row.tokens, snap)


def _mismatch_of(
    amount_cents: int, currency: str, user_id: int, tokens: int, snap: IntentSnapshot
) -> MoneyMismatch | None:
    if snap.amount != amount_cents or (
        snap.status == PaymentIntentStatus.SUCCEEDED and snap.amount_received != amount_cents
    ):
        return MoneyMismatch.AMOUNT
    if snap.currency != currency.lower():
        return MoneyMismatch.CURRENCY
    if not names_purchase(snap.metadata, user_id=user_id, tokens=tokens):
        return MoneyMismatch.METADATA
    return None


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


async def _move_reversal(session: AsyncSession, row: Payment, snap: IntentSnapshot) -> int:
    """Write the difference to the target reversal; positive = taken back."""
    pi = row.stripe_payment_intent_id
    assert pi is not None
    target = reversal_target(
        tokens=row.tokens_credited,
        amount_cents=row.amount_cents,
        returned_cents=snap.returned_cents,
    )
    delta = target - row.reversed_tokens
    why = _money_story(snap, row.currency)
    if delta > 0:
        await ledger.reverse_purchase(
            session,
            row.user_id,
            delta,
            pi,
            f"{delta} tokens taken back on {pi}: {why}",
            idempotency_key=keys.reversal(pi, row.version),
        )
    elif delta < 0:
        await ledger.reinstate_purchase(
            session,
            row.user_id,
            -delta,
            pi,
            f"{-delta} tokens given back on {pi}: {why}",
            idempotency_key=keys.reinstatement(pi, row.version),
        )
    row.reversed_tokens = target
    return delta


def _money_story(snap: IntentSnapshot, currency: str) -> str:
    """Where the money stands, for the ledger entry's description."""
    return (
        f"{snap.refunded_cents} {currency} cents refunded, "
        f"{snap.disputed_cents} held by disputes ({snap.dispute_state or 'none'})"
    )


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
    user_id = buyer_of(snap.metadata)
    assert user_id is not None  # adoption_refusal checked it
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
            user_id=user_id,
            tier=tier,
            tokens=settings.pricing_tiers[tier].tokens,
            amount_cents=snap.amount,
            currency=snap.currency,
            payment_intent_id=snap.id,
            now=now,
        )
    log.info("adopted %s for user %d", snap.id, user_id)
    return await repo.find_by_intent(session, snap.id, lock=True), True, None


def adoption_refusal(snap: IntentSnapshot, settings: Settings) -> str | None:
    """Why an intent without a row of ours must not be adopted (None if it may be)."""
    md = snap.metadata
    if not is_token_purchase(md):
        return "not a token purchase"
    if buyer_of(md) is None:
        return "no user in its metadata"
    tier = settings.pricing_tiers.get(md.get("tier", ""))
    if tier is None:
        return "unknown tier in its metadata"
    if (
        tier.price != snap.amount
        or tier.currency.lower() != snap.currency
        or not names_tokens(md, tier.tokens)
    ):
        return "its amount or tokens do not match the tier"
    return None
