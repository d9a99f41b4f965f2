"""The payments flows that ask Stripe: each takes ``Database`` and owns its transactions.

The unit-of-work rule: a call to Stripe never runs inside a database transaction (a slow
Stripe must not hold locks or a pooled connection), so a function that calls Stripe opens
its own short transactions around each call — and only such a function does. They live
here and nowhere else in payments; everything they call in between (:mod:`service`,
:mod:`sync`, :mod:`reconcile`, :mod:`webhooks`, :mod:`repository`) takes the session of
the transaction it runs in and never commits. ``tests/payments/test_unit_of_work.py``
keeps the rule.

- buying: :func:`create_payment_intent`, :func:`confirm_payment`;
- the one sync of a payment with Stripe: :func:`sync_payment` (webhooks, confirm-payment
  and reconcile all call it), with :func:`refund_fraud_warnings`;
- catching up: :func:`reconcile`;
- applying the webhook inbox: :func:`handling`, :func:`process_again` and the
  :class:`WebhookWorker` (see :mod:`tokenbank.payments.webhooks` for the inbox's rules).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tokenbank.background import BackgroundLoop, uncut
from tokenbank.config import Settings
from tokenbank.db import Database, Unit
from tokenbank.errors import AppError
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import Balance
from tokenbank.observability import (
    PURCHASES,
    TOKENS_PURCHASED,
    WEBHOOK_EVENTS,
    logs_payment_intent,
)
from tokenbank.payments import autotopup, service
from tokenbank.payments import repository as repo
from tokenbank.payments.catalog import find_tier
from tokenbank.payments.errors import (
    NoSavedCard,
    PaymentError,
    PaymentMethodNotFound,
    StripeObjectUnusable,
    StripeUnavailable,
    WebhookPayloadInvalid,
)
from tokenbank.payments.models import (
    FINAL_EVENT_STATUSES,
    AckStatus,
    EventStatus,
    PaymentIntentStatus,
)
from tokenbank.payments.purchase import purchase_metadata
from tokenbank.payments.reconcile import (
    CATCH_UP_EVENT_TYPES,
    EVENTS_CHECKPOINT,
    EVENTS_OVERLAP_S,
    ReconcileReport,
    charge_named,
    events_window,
    intent_named,
)
from tokenbank.payments.repository import ClaimedEvent
from tokenbank.payments.stripe_client import IntentSnapshot, SavedCard, StripeGateway
from tokenbank.payments.sync import (
    PaymentView,
    SyncOutcome,
    apply_paid,
    apply_snapshot,
    checks_fraud_warnings,
    may_be_first_credit,
)
from tokenbank.payments.webhooks import (
    ClaimLost,
    WebhookResult,
    failure_verdict,
    finish,
    looks_like_event,
    record,
    verified,
)
from tokenbank.types import utcnow

log = logging.getLogger(__name__)


# --- buying --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutStarted:
    payment: PaymentView
    payment_intent_id: str
    client_secret: str
    publishable_key: str | None
    #: Stripe's status of the intent (confirmed already when a saved card was given).
    status: str = PaymentIntentStatus.REQUIRES_PAYMENT_METHOD


async def create_payment_intent(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    *,
    user_id: int,
    tier_id: str,
    client_key: str | None,
    payment_method_id: str | None = None,
    save_card: bool = False,
) -> CheckoutStarted:
    """Record the purchase, then have Stripe create its intent (amount from config only).

    The same ``client_key`` returns the same row and the same intent, even when the
    first attempt died between the two steps (Stripe replays the idempotent create).

    ``save_card``: the intent is made for the person's Stripe Customer with
    ``setup_future_usage=off_session``, so the card paying it is saved for one-click
    buys and auto top-up. ``payment_method_id`` (one of the caller's saved cards, else a
    404): the server confirms the intent with it now, on the page's behalf (the person
    is there: ``off_session=false``); ``requires_action`` is finished in the page with
    the client secret. The receipt goes to a verified address (``receipt_email``).
    Tokens come, as for every purchase, by the sync.
    """
    tier = find_tier(settings, tier_id)
    gateway.require_configured()  # 503 before writing anything when Stripe is unset
    async with db.transaction() as session:
        person = await service.customer_details(session, user_id)
    customer: str | None = None
    if save_card or payment_method_id is not None:
        customer = (await ensure_customer(db, gateway, settings, user_id)).customer_id
    if payment_method_id is not None:
        assert customer is not None
        saved = {card.id for card in await gateway.saved_cards(customer)}
        if payment_method_id not in saved:
            raise PaymentMethodNotFound()
    async with db.transaction() as session:
        payment = await service.start_payment(
            session, user_id=user_id, tier_id=tier_id, tier=tier, client_key=client_key
        )
    if payment.payment_intent_id is not None:
        snap = await gateway.retrieve_intent(payment.payment_intent_id)
        secret, pi_id, status = snap.client_secret or "", snap.id, snap.status
    else:
        intent = await gateway.create_intent(
            amount=payment.amount_cents,
            currency=payment.currency,
            metadata=purchase_metadata(
                user_id=user_id, tier=payment.tier, tokens=payment.tokens, payment_id=payment.id
            ),
            description=f"tokenbank {payment.tier} pack: {payment.tokens} tokens",
            idempotency_key=service.stripe_idempotency_key(user_id, client_key),
            customer=customer,
            payment_method=payment_method_id,
            off_session=False if payment_method_id is not None else None,
            setup_future_usage="off_session" if save_card else None,
            receipt_email=person.email if person.email_verified else None,
        )
        async with db.transaction() as session:
            payment = await service.record_intent(session, payment.id, intent)
        secret, pi_id, status = intent.client_secret, intent.id, intent.status
    return CheckoutStarted(payment, pi_id, secret, settings.stripe_publishable_key, status)


async def saved_cards(
    db: Database, gateway: StripeGateway, user_id: int
) -> list[SavedCard]:
    """The caller's saved cards, from Stripe (none before they have a Customer)."""
    gateway.require_configured()
    async with db.transaction() as session:
        found = await repo.find_customer(session, user_id)
    if found is None:
        return []
    return await gateway.saved_cards(found.customer_id)


async def remove_saved_card(
    db: Database, gateway: StripeGateway, user_id: int, payment_method_id: str
) -> None:
    """Detach one of the caller's saved cards (anyone else's is a 404); auto top-up
    stops using it."""
    cards = await saved_cards(db, gateway, user_id)
    if payment_method_id not in {card.id for card in cards}:
        raise PaymentMethodNotFound()
    await gateway.detach_payment_method(payment_method_id)
    async with db.transaction() as session:
        await autotopup.card_removed(session, user_id, payment_method_id)


async def choose_auto_topup(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    user_id: int,
    choice: autotopup.AutoTopupChoice,
) -> autotopup.AutoTopupView:
    """Save the person's auto top-up. Turned on, it needs one of their saved cards (the
    one named, else the default one)."""
    find_tier(settings, choice.tier)
    if choice.enabled or choice.payment_method_id is not None:
        cards = await saved_cards(db, gateway, user_id)
        if choice.payment_method_id is not None:
            if choice.payment_method_id not in {card.id for card in cards}:
                raise PaymentMethodNotFound()
        elif cards:
            default = next((c for c in cards if c.is_default), cards[0])
            choice = replace(choice, payment_method_id=default.id)
        else:
            raise NoSavedCard()
    async with db.transaction() as session:
        return await autotopup.choose(session, settings, user_id, choice)


async def auto_topup_view(
    db: Database, settings: Settings, user_id: int
) -> autotopup.AutoTopupView:
    async with db.transaction() as session:
        return await autotopup.view(session, settings, user_id)


async def run_auto_topup(
    db: Database, gateway: StripeGateway, settings: Settings, user_id: int
) -> str | None:
    """If the person's balance is below their auto top-up threshold, buy their pack
    off-session; returns the PaymentIntent's id (None when nothing was started).

    The attempt and its purchase row commit first (at most one in flight: the database
    refuses a second); the intent is created outside any transaction with the idempotency
    key ``topup:<attempt id>``, then the one sync learns its outcome (as webhooks and
    reconcile do too — whichever comes first moves the attempt, once). An attempt left
    without its intent (the process stopped, Stripe did not answer) is driven again by a
    later call with the same key.
    """
    if not gateway.configured:
        return None
    async with db.transaction() as session:
        available = (await ledger.balance(session, user_id)).available
        started = await autotopup.start_attempt(session, settings, user_id, available)
        person = await service.customer_details(session, user_id) if started else None
    if started is None or person is None:
        return None
    try:
        customer = await ensure_customer(db, gateway, settings, user_id)
        intent = await gateway.create_intent(
            amount=started.amount_cents,
            currency=started.currency,
            metadata=purchase_metadata(
                user_id=user_id,
                tier=started.tier,
                tokens=started.tokens,
                payment_id=started.payment_id,
            )
            | {"auto_topup_id": str(started.attempt_id)},
            description=f"tokenbank auto top-up, {started.tier} pack: {started.tokens} tokens",
            idempotency_key=f"topup:{started.attempt_id}",
            customer=customer.customer_id,
            payment_method=started.payment_method_id,
            off_session=True,
            receipt_email=person.email if person.email_verified else None,
        )
    except StripeUnavailable:
        # Stripe may have made the intent: the attempt stays in flight, and is driven
        # again with the same key (one intent) once it is stranded (autotopup._stranded).
        log.warning("auto top-up %d for user %d: Stripe did not answer", started.attempt_id,
                    user_id)
        return None
    except PaymentError as exc:
        # Stripe refused the request: there is no intent; the attempt ends unpaid.
        log.warning(
            "auto top-up %d for user %d not started: %s", started.attempt_id, user_id, exc.code
        )
        async with db.transaction() as session:
            await autotopup.abandon(session, started.attempt_id, exc.code)
        return None
    async with db.transaction() as session:
        await service.record_intent(session, started.payment_id, intent)
        await autotopup.record_intent(session, started.attempt_id, intent.id)
    await sync_payment(db, gateway, settings, intent.id)
    return intent.id


@dataclass(frozen=True)
class CustomerRef:
    customer_id: str
    test_clock_id: str | None


async def ensure_customer(
    db: Database, gateway: StripeGateway, settings: Settings, user_id: int
) -> CustomerRef:
    """The user's Stripe Customer, created on first need (and, in development with
    ``SUBSCRIPTION_TEST_CLOCKS``, on a test clock of its own).

    Stripe is called outside any transaction; its idempotency keys make racing first
    calls name the same Customer, and the row keyed by user keeps exactly one.
    """
    gateway.require_configured()
    async with db.transaction() as session:
        found = await repo.find_customer(session, user_id)
        if found is not None:
            return CustomerRef(found.customer_id, found.test_clock_id)
        person = await service.customer_details(session, user_id)
    clock = None
    if settings.test_clocks_enabled:
        clock = await gateway.create_test_clock(
            name=f"tokenbank user {user_id}", idempotency_key=f"test-clock:{user_id}"
        )
    customer_id = await gateway.create_customer(
        user_id=user_id,
        email=person.email,
        name=person.username,
        test_clock=clock,
        idempotency_key=f"customer:{user_id}",
    )
    async with db.transaction() as session:
        row = await repo.insert_customer(
            session, user_id=user_id, customer_id=customer_id, test_clock_id=clock
        )
        return CustomerRef(row.customer_id, row.test_clock_id)


@dataclass(frozen=True)
class Confirmation:
    outcome: SyncOutcome
    payment: PaymentView
    balance: Balance


async def confirm_payment(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    *,
    user_id: int,
    payment_intent_id: str,
) -> Confirmation:
    """Check with Stripe (never with the browser) and credit if paid.

    A payment already final in our books (succeeded and credited, or canceled) has nothing
    left for this call to find: it answers from our row without asking Stripe, so repeated
    calls cannot spend the merchant's Stripe request quota. Later refunds and disputes
    still arrive by webhook and reconciliation.
    """
    async with db.transaction() as session:
        ours = await service.owned_intent(session, user_id, payment_intent_id)
    if service.is_final(ours):
        outcome = SyncOutcome(payment_intent_id, payment=ours, status_before=ours.status)
    else:
        outcome = await sync_payment(db, gateway, settings, payment_intent_id)
    payment = outcome.payment
    assert payment is not None  # the row exists, so the sync cannot ignore the intent
    async with db.transaction() as session:
        balance = await ledger.balance(session, user_id)
    return Confirmation(outcome, payment, balance)


# --- the one sync ----------------------------------------------------------------------

AlsoInTransaction = Callable[[Unit, SyncOutcome], Awaitable[None]]


@logs_payment_intent
async def sync_payment(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    payment_intent_id: str,
    *,
    snapshot: IntentSnapshot | None = None,
    also: AlsoInTransaction | None = None,
    check_fraud_warnings: bool = False,
) -> SyncOutcome:
    """Read the intent from Stripe (unless a fresh ``snapshot`` is given), then apply it
    (:func:`tokenbank.payments.sync.apply_snapshot`) in one transaction.

    ``also`` runs inside the same transaction as the effect (the webhook inbox marks its
    event handled there), so both commit or neither does. ``check_fraud_warnings`` (for
    an early fraud warning's event) first refunds a warned charge when
    ``efw_auto_refund`` is on.

    Raises ``StripeObjectUnusable`` when Stripe refuses the id or has no such intent (an
    event naming it can never be applied), ``StripeUnavailable`` when it does not answer.
    """
    if snapshot is not None:
        snap = snapshot
    else:
        snap = await read_intent(
            db, gateway, settings, payment_intent_id, check_fraud_warnings=check_fraud_warnings
        )
    outcome = None
    if may_be_first_credit(snap):
        # The common case (a pack just paid for) as one driver unit: no ORM session.
        async def credit(unit: Unit) -> SyncOutcome | None:
            done = await apply_paid(unit, snap)
            if done is not None and also is not None:
                await also(unit, done)
            return done

        outcome = await db.run(credit)
    if outcome is None:
        async with db.transaction() as session:
            outcome = await apply_snapshot(session, settings, snap)
            if also is not None:
                await also(session, outcome)
    if outcome.credited_tokens:
        PURCHASES.inc()
        TOKENS_PURCHASED.inc(outcome.credited_tokens)
    return outcome


@logs_payment_intent
async def read_intent(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    payment_intent_id: str,
    *,
    check_fraud_warnings: bool = False,
) -> IntentSnapshot:
    """Stripe's current state of the intent (after refunding a warned charge first, for
    an early fraud warning's event with ``efw_auto_refund`` on)."""
    snap = await gateway.retrieve_intent(payment_intent_id)
    if check_fraud_warnings and settings.efw_auto_refund:
        if await refund_fraud_warnings(db, gateway, snap):
            snap = await gateway.retrieve_intent(payment_intent_id)
    return snap


async def refund_fraud_warnings(db: Database, gateway: StripeGateway, snap: IntentSnapshot) -> bool:
    """Refund the charge of every actionable early fraud warning on a token purchase of
    ours (Stripe advises it for digital goods, and a refund costs no dispute fee).
    True when a refund was made."""
    if snap.status != PaymentIntentStatus.SUCCEEDED:
        return False
    async with db.transaction() as session:
        ours = await repo.find_by_intent(session, snap.id) is not None
    if not (ours or snap.is_token_purchase):
        return False
    refunded = False
    for warning in await gateway.fraud_warnings(snap.id):
        if warning.actionable and await gateway.refund_for_fraud(warning):
            log.warning("refunded %s: early fraud warning %s", snap.id, warning.id)
            refunded = True
    return refunded


# --- reconcile -------------------------------------------------------------------------


#: Other domains' reconcilers (subscriptions), run after the payments' own, same report.
Reconciler = Callable[[Database, StripeGateway, Settings, ReconcileReport], Awaitable[None]]
RECONCILERS: list[Reconciler] = []


async def reconcile(
    db: Database, gateway: StripeGateway, settings: Settings, *, since: datetime | None = None
) -> ReconcileReport:
    """Sync every payment the three lists of :mod:`tokenbank.payments.reconcile` name, then
    run the other domains' :data:`RECONCILERS`."""
    started = utcnow()
    start = since or (started - timedelta(seconds=settings.reconcile_window_s))
    report = ReconcileReport(since=start)
    seen: set[str] = set()
    async for snap in gateway.list_intents(created_gte=int(start.timestamp())):
        if not snap.is_token_purchase:
            continue
        seen.add(snap.id)
        await _sync_one(db, gateway, settings, snap.id, report, snapshot=snap)
    async with db.transaction() as session:
        unsettled = await repo.unsettled_intent_ids(session, since=start)
    for pi_id in unsettled:
        if pi_id not in seen:
            seen.add(pi_id)
            await _sync_one(db, gateway, settings, pi_id, report)
    await _catch_up_events(db, gateway, settings, report, seen, started=started, since=since)
    for other in RECONCILERS:
        await other(db, gateway, settings, report)
    if report.changes or report.errors or report.warnings:
        log.info("reconcile: %s", report.lines()[-1])
    return report


async def _catch_up_events(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    report: ReconcileReport,
    seen: set[str],
    *,
    started: datetime,
    since: datetime | None,
) -> None:
    """Sync every payment Stripe's refund, dispute and fraud-warning events name since the
    checkpoint (the purchase may be of any age), then move the checkpoint forward."""
    now_s = int(started.timestamp())
    async with db.transaction() as session:
        stored = await repo.checkpoint(session, EVENTS_CHECKPOINT)
    from_s, warning = events_window(stored, since, now_s)
    if warning is not None:
        report.warnings.append(warning)
    report.events_since = datetime.fromtimestamp(from_s, UTC)

    touched: dict[str, bool] = {}  # intent -> named by an early fraud warning's event
    async for event in gateway.list_events(types=CATCH_UP_EVENT_TYPES, created_gte=from_s):
        report.events_read += 1
        pi_id = await _intent_of(gateway, event, report)
        if pi_id is not None:
            fraud = checks_fraud_warnings(str(event.get("type", "")))
            touched[pi_id] = touched.get(pi_id, False) or fraud
    errors_before = len(report.errors)
    for pi_id, fraud in touched.items():
        if pi_id in seen and not fraud:
            continue  # synced from the first two lists in this run already
        seen.add(pi_id)
        await _sync_one(db, gateway, settings, pi_id, report, check_fraud_warnings=fraud)
    if len(report.errors) == errors_before:
        async with db.transaction() as session:
            await repo.advance_checkpoint(
                session, EVENTS_CHECKPOINT, now_s - EVENTS_OVERLAP_S, utcnow()
            )


async def _intent_of(
    gateway: StripeGateway, event: dict[str, Any], report: ReconcileReport
) -> str | None:
    """The PaymentIntent an event's object belongs to (asking Stripe about its charge when
    the object does not say)."""
    pi = intent_named(event)
    if pi is not None:
        return pi
    charge_id = charge_named(event)
    if charge_id is None:
        return None
    try:
        return await gateway.charge_payment_intent(charge_id)
    except StripeObjectUnusable as exc:
        report.skipped.append((charge_id, exc.reason))
        return None


async def _sync_one(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    pi_id: str,
    report: ReconcileReport,
    *,
    snapshot: IntentSnapshot | None = None,
    check_fraud_warnings: bool = False,
) -> None:
    try:
        outcome = await sync_payment(
            db,
            gateway,
            settings,
            pi_id,
            snapshot=snapshot,
            check_fraud_warnings=check_fraud_warnings,
        )
    except StripeUnavailable:
        raise  # the whole run fails and is retried; the rest would fail the same way
    except StripeObjectUnusable as exc:  # nothing to sync there, now or ever
        report.skipped.append((pi_id, exc.reason))
        return
    except PaymentError as exc:  # one bad intent must not stop the others
        report.errors.append((pi_id, exc.code))
        return
    report.add(outcome)


async def reconcile_job(db: Database, gateway: StripeGateway, settings: Settings) -> None:
    """The periodic run inside each app process (no-op without Stripe keys)."""
    if gateway.configured:
        await reconcile(db, gateway, settings)


# --- applying the webhook inbox --------------------------------------------------------


async def acknowledge(
    db: Database, settings: Settings, payload: bytes, signature: str | None
) -> WebhookResult:
    """A webhook request: verify, then record the event in a unit of its own — one
    prepared statement on the driver (no ORM session), committed before the answer — and
    no Stripe call; the worker applies it. Every answer is counted here."""
    try:
        event, text = verified(payload, signature, settings)

        async def record_it(unit: Unit) -> WebhookResult:
            return await record(unit, event, text)

        result = await db.run(record_it)
    except AppError as exc:
        WEBHOOK_EVENTS.labels("unknown", exc.code).inc()
        raise
    except Exception:
        WEBHOOK_EVENTS.labels("unknown", "failed").inc()
        raise
    WEBHOOK_EVENTS.labels(result.event_type, result.status).inc()
    return result


class Handling:
    """An event being applied; see :func:`handling`."""

    def __init__(self, db: Database, event: ClaimedEvent) -> None:
        self.db = db
        self.event = event
        self.status: EventStatus | None = None
        self.payment_intent_id = event.payment_intent_id
        self.note: str | None = None
        #: The Stripe state this event was applied with (shared with the next event of
        #: the same payment in the worker's batch).
        self.snapshot: IntentSnapshot | None = None

    async def done_in(
        self,
        session: Unit,
        status: EventStatus = EventStatus.HANDLED,
        note: str | None = None,
    ) -> None:
        """Mark the event done inside the caller's transaction (the one that commits the
        effect), so both commit or neither does. Raises :class:`ClaimLost` — rolling that
        transaction back — when another worker has taken the event over."""
        await finish(session, self.event, status, note, self.payment_intent_id)
        self.status, self.note = status, note

    async def done(
        self, status: EventStatus = EventStatus.HANDLED, note: str | None = None
    ) -> None:
        """Mark the event done in a transaction of its own (nothing else to commit)."""
        async with self.db.transaction() as session:
            await self.done_in(session, status, note)


@asynccontextmanager
async def handling(
    db: Database, settings: Settings, event: ClaimedEvent, *, reraise: bool = False
) -> AsyncIterator[Handling]:
    """Apply a claimed event: it is marked done only if the block succeeds.

    The block marks it done itself (``done_in`` inside the effect's transaction) or, if it
    returns without doing so, it is marked ``handled`` here. An error marks it as
    :func:`tokenbank.payments.webhooks.failure_verdict` says (``unprocessable``, ``dead``,
    or ``failed`` until its next attempt); ``reraise`` lets a retryable error through to
    the caller afterwards (an operator waiting for the answer). A cancelled block hands
    the event back for another attempt now.
    """
    h = Handling(db, event)
    try:
        yield h
    except ClaimLost:
        log.info("webhook %s: taken over by another worker", event.id)
        return
    except asyncio.CancelledError:
        await asyncio.shield(_give_back(db, event))
        raise
    except Exception as exc:
        await asyncio.shield(_record_failure(db, settings, h, exc))
        if reraise and h.status is not EventStatus.UNPROCESSABLE:
            raise
        return
    if h.status is None:
        try:
            await h.done()
        except ClaimLost:
            log.info("webhook %s: taken over by another worker", event.id)


async def _give_back(db: Database, event: ClaimedEvent) -> None:
    try:
        async with db.transaction() as session:
            await repo.finish_event(
                session, event, status=EventStatus.RECEIVED, now=utcnow(), next_attempt_at=utcnow()
            )
    except Exception:  # its claim runs out instead; another worker takes it then
        log.exception("could not hand webhook %s back", event.id)


async def _record_failure(db: Database, settings: Settings, h: Handling, exc: Exception) -> None:
    event, now = h.event, utcnow()
    status, next_at, reason = failure_verdict(settings, event, exc, now)
    level = logging.WARNING if status is EventStatus.FAILED else logging.ERROR
    log.log(
        level,
        "webhook %s (%s) %s after attempt %d: %s",
        event.id,
        event.type,
        status,
        event.attempts,
        reason,
    )
    try:
        async with db.transaction() as session:
            ours = await repo.finish_event(
                session,
                event,
                status=status,
                now=now,
                error=reason,
                next_attempt_at=next_at,
                payment_intent_id=h.payment_intent_id,
            )
        if ours:
            h.status, h.note = status, reason
    except Exception:  # its claim runs out instead; another worker retries it then
        log.exception("could not record the failure of webhook %s", event.id)


#: Other domains' appliers (subscriptions: billing events, and refunds or disputes of an
#: invoice's charge). Each is asked first and answers True when it applied the event
#: (marking it done inside its own effect's transaction, as a payment's sync does).
EventApplier = Callable[[Handling, StripeGateway, Settings], Awaitable[bool]]
EVENT_APPLIERS: list[EventApplier] = []


async def _apply_event(
    h: Handling,
    gateway: StripeGateway,
    settings: Settings,
    snapshot: IntentSnapshot | None = None,
) -> None:
    """What applying an event means: sync the payment it is about, marking it done in the
    sync's own transaction. ``snapshot``: the payment's state read from Stripe after this
    event was claimed (by another event of the same payment in the same batch), which
    already holds whatever this event announced; an early fraud warning's event always
    reads afresh (it may refund first)."""
    event = h.event
    if h.payment_intent_id is None and event.charge_id is not None:
        h.payment_intent_id = await gateway.charge_payment_intent(event.charge_id)
    for applier in EVENT_APPLIERS:
        if await applier(h, gateway, settings):
            return
    pi_id = h.payment_intent_id
    if pi_id is None:
        await h.done(EventStatus.IGNORED, "no payment intent for its charge")
        return

    async def mark_done(unit: Unit, outcome: SyncOutcome) -> None:
        if outcome.ignored:
            await h.done_in(unit, EventStatus.IGNORED, outcome.ignored)
        else:
            await h.done_in(unit, EventStatus.HANDLED, outcome.refused)

    fraud = checks_fraud_warnings(event.type)
    if snapshot is None or snapshot.id != pi_id or fraud:
        snapshot = await read_intent(h.db, gateway, settings, pi_id, check_fraud_warnings=fraud)
    h.snapshot = snapshot
    outcome = await sync_payment(h.db, gateway, settings, pi_id, snapshot=snapshot, also=mark_done)
    log.info(
        "webhook %s (%s) for %s: %s",
        event.id,
        event.type,
        pi_id,
        outcome.ignored or (outcome.status_after or "synced"),
    )


async def process_claimed(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    event: ClaimedEvent,
    *,
    reraise: bool = False,
    snapshot: IntentSnapshot | None = None,
) -> Handling:
    async with handling(db, settings, event, reraise=reraise) as h:
        await _apply_event(h, gateway, settings, snapshot)
    WEBHOOK_EVENTS.labels(event.type, str(h.status or "taken_over")).inc()
    return h


def _claim_window(settings: Settings) -> tuple[datetime, datetime, str]:
    now = utcnow()
    return now, now + timedelta(seconds=settings.webhook_claim_lease_s), str(uuid.uuid4())


async def claim_due(db: Database, settings: Settings, limit: int) -> list[ClaimedEvent]:
    """Up to ``limit`` due events claimed in one unit on the driver (one prepared
    statement: ``BEGIN``, the claim, ``COMMIT``; no ORM session)."""
    now, until, token = _claim_window(settings)

    async def claim(unit: Unit) -> list[ClaimedEvent]:
        return await repo.claim_due_events(
            unit, now=now, lease_until=until, token=token, limit=limit
        )

    return await db.run(claim)


async def process_again(
    db: Database, gateway: StripeGateway, settings: Settings, event_id: str
) -> WebhookResult:
    """Apply one event now, whatever the inbox says (an operator's "process again",
    ``tokenbank webhooks replay``): the stored event, or — if it never reached us — the
    event fetched from Stripe and recorded first. Same claim, same :func:`handling`, same
    effect (the sync writes only differences, so a second time changes nothing)."""
    async with db.transaction() as session:
        known = await repo.event_status(session, event_id)
    if known is None:
        event = await gateway.retrieve_event(event_id)
        if not looks_like_event(event) or event["id"] != event_id:
            raise WebhookPayloadInvalid("Stripe returned something that is not this event.")
        async with db.transaction() as session:
            recorded = await record(session, event)
        if recorded.status in (AckStatus.IGNORED, AckStatus.UNPROCESSABLE):
            return recorded
    deadline = time.monotonic() + settings.webhook_claim_lease_s
    while True:
        now, until, token = _claim_window(settings)
        async with db.transaction() as session:
            claimed = await repo.claim_events(
                session, now=now, lease_until=until, token=token, event_id=event_id
            )
            status, pi_id = (None, None) if claimed else await repo.event_state(session, event_id)
        if claimed:
            (event_claimed,) = claimed
            h = await process_claimed(db, gateway, settings, event_claimed, reraise=True)
            return WebhookResult(
                event_id,
                h.status or EventStatus.PROCESSING,
                h.payment_intent_id,
                event_claimed.type,
            )
        # A worker is applying it right now: what it reaches is the answer.
        if status in FINAL_EVENT_STATUSES or time.monotonic() > deadline:
            return WebhookResult(event_id, EventStatus(status or EventStatus.PROCESSING), pi_id)
        await asyncio.sleep(0.05)  # polling the worker's claim, which holds no lock we can wait on


class WebhookWorker(BackgroundLoop):
    """Drains the inbox in one app process; see :mod:`tokenbank.payments.webhooks`. Woken
    (``notify``) when this process records an event, polling for the others'."""

    def __init__(self, db: Database, gateway: StripeGateway, settings: Settings) -> None:
        super().__init__(
            "webhook-worker",
            settings.webhook_poll_interval_s,
            failure="webhook worker: draining the inbox failed",
            logger=log,
        )
        self.db = db
        self.gateway = gateway
        self.settings = settings

    async def round(self) -> int:
        return await self.drain()

    async def drain(self) -> int:
        """Apply every due event, up to ``WEBHOOK_CONCURRENCY`` at once, each in its own
        transaction; returns how many events were claimed.

        Claims keep the applying full rather than waiting for a whole claim to end: as
        soon as half of the places are free, the next claim fills them (the slowest event
        of a claim no longer holds the others back). The events of one payment in a claim
        are applied one after another by one task and share one read of Stripe: read
        after every event of the claim was recorded, that state holds what each of them
        announced (an early fraud warning's event still reads afresh, after refunding).
        A later claim's events of a payment still being applied wait for it, then read
        afresh. Stopped (or failing), the worker cancels what it is applying, and every
        event not yet applied is handed back (:func:`handling`, :meth:`_apply_group`)."""
        total = 0
        limit = self.settings.webhook_concurrency
        running: dict[asyncio.Task[None], int] = {}
        last_of: dict[str, asyncio.Task[None]] = {}  # a payment's latest group
        try:
            while True:
                busy = sum(running.values())
                if busy <= limit // 2:
                    batch = await self._claim(limit - busy)
                    total += len(batch)
                    for group in _by_payment(batch):
                        pi_id = group[0].payment_intent_id
                        before = last_of.get(pi_id) if pi_id is not None else None
                        task = asyncio.ensure_future(self._apply_after(before, group))
                        running[task] = len(group)
                        if pi_id is not None:
                            last_of[pi_id] = task
                if not running:
                    return total
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del running[task]
                last_of = {k: t for k, t in last_of.items() if not t.done()}
                for task in done:
                    task.result()
        except BaseException:
            for task in running:
                task.cancel()
            await asyncio.shield(asyncio.gather(*running, return_exceptions=True))
            raise

    async def _apply_after(
        self, before: asyncio.Task[None] | None, events: list[ClaimedEvent]
    ) -> None:
        """Apply a group once the previous group of its payment (``before``) has ended."""
        if before is not None:
            try:
                await asyncio.wait([before])  # whatever became of it: it is not ours
            except asyncio.CancelledError:
                await asyncio.shield(asyncio.gather(*(_give_back(self.db, e) for e in events)))
                raise
        await self._apply_group(events)

    async def _claim(self, limit: int) -> list[ClaimedEvent]:
        """A claim that a stop cannot cut in two: stopped while its transaction ends, the
        worker waits for it and hands every event it claimed back at once (rather than
        leaving them to their lease)."""
        return await uncut(
            claim_due(self.db, self.settings, limit),
            lambda claimed: asyncio.gather(*(_give_back(self.db, e) for e in claimed)),
        )

    async def _apply_group(self, events: list[ClaimedEvent]) -> None:
        snapshot: IntentSnapshot | None = None
        for i, event in enumerate(events):
            try:
                h = await self._apply(event, snapshot)
            except asyncio.CancelledError:  # this one is handed back by handling()
                rest = events[i + 1 :]
                await asyncio.shield(asyncio.gather(*(_give_back(self.db, e) for e in rest)))
                raise
            if h is not None and h.snapshot is not None:
                snapshot = h.snapshot

    async def _apply(self, event: ClaimedEvent, snapshot: IntentSnapshot | None) -> Handling | None:
        if event.attempts > self.settings.webhook_max_attempts:
            await self._give_up(event)
            return None
        return await process_claimed(self.db, self.gateway, self.settings, event, snapshot=snapshot)

    async def _give_up(self, event: ClaimedEvent) -> None:
        # Only a claim that ran out gets here: its workers died applying it, again and
        # again. Stop before it takes another process down; an operator decides.
        note = f"gave up: its worker stopped during each of {event.attempts - 1} attempts"
        log.error("webhook %s (%s) dead: %s", event.id, event.type, note)
        async with self.db.transaction() as session:
            await repo.finish_event(
                session, event, status=EventStatus.DEAD, now=utcnow(), error=note
            )


def _by_payment(events: list[ClaimedEvent]) -> list[list[ClaimedEvent]]:
    """The claimed events grouped by the payment they name, in claim order (an event
    naming only a charge is a group of its own)."""
    groups: dict[str, list[ClaimedEvent]] = {}
    alone: list[list[ClaimedEvent]] = []
    for event in events:
        if event.payment_intent_id is None:
            alone.append([event])
        else:
            groups.setdefault(event.payment_intent_id, []).append(event)
    return [*groups.values(), *alone]
