"""Auto top-up, the parts that run inside one unit of work (a session; never committing).

A person's ``auto_topup_settings`` say: when a charge leaves ``available`` below
``threshold``, buy ``tier`` off-session with the saved card, at most
``monthly_max_count`` times and ``monthly_max_amount`` cents per calendar month (UTC).

- :func:`start_attempt` decides, under the settings row's lock, and inserts the attempt
  (``pending``) with its purchase row. At most one attempt per person is in flight: the
  partial unique index ``uq_auto_topups_one_in_flight`` refuses a second, whatever the
  number of processes. The caps are counted in that same transaction.
- The off-session PaymentIntent is created by ``flows.run_auto_topup`` with the
  idempotency key ``topup:<attempt id>``; its outcome is learnt only by the one sync
  (:func:`on_payment_synced`, called from ``sync.apply_snapshot`` under the payment row's
  lock), which moves the attempt out of ``pending`` once, by a conditional state change:
  succeeded (tokens credited by the sync as for any pack), or needing the person
  (``requires_action`` / ``authentication_required``) or declined — which pauses auto
  top-up and notifies with a link to the payment page to finish that intent.
  ``AUTO_TOPUP_MAX_FAILURES`` failures in a row turn it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.notifications import service as notifications
from tokenbank.notifications.models import NotificationKind
from tokenbank.payments import repository as repo
from tokenbank.payments.errors import PaymentNotFound
from tokenbank.payments.models import (
    AutoTopup,
    AutoTopupAttemptState,
    AutoTopupState,
    Payment,
    PaymentIntentStatus,
    PaymentStatus,
)
from tokenbank.payments.stripe_client import IntentSnapshot
from tokenbank.types import record_of, utcnow

AUTHENTICATION_REQUIRED = "authentication_required"


@dataclass(frozen=True)
class AutoTopupChoice:
    """What the person chooses (and what is saved of it)."""

    enabled: bool
    threshold: int
    tier: str
    monthly_max_count: int
    monthly_max_amount: int
    payment_method_id: str | None


@dataclass(frozen=True)
class AutoTopupView(AutoTopupChoice):
    """The saved choice, with where it stands."""

    state: str
    paused_reason: str | None
    consecutive_failures: int
    this_month_count: int
    this_month_amount: int
    action_url: str | None


@dataclass(frozen=True)
class StartedAttempt:
    attempt_id: int
    payment_id: int
    tier: str
    tokens: int
    amount_cents: int
    currency: str
    payment_method_id: str


def month_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def default_tier(settings: Settings) -> str:
    return next(iter(settings.pricing_tiers))


async def view(session: AsyncSession, settings: Settings, user_id: int) -> AutoTopupView:
    row = await repo.topup_settings(session, user_id)
    count, amount = await repo.topups_since(session, user_id, month_start(utcnow()))
    if row is None:
        return AutoTopupView(
            False, 0, default_tier(settings), 0, 0, None, AutoTopupState.OFF, None, 0,
            count, amount, None,
        )
    return record_of(AutoTopupView, row, this_month_count=count, this_month_amount=amount)


async def choose(
    session: AsyncSession, settings: Settings, user_id: int, choice: AutoTopupChoice
) -> AutoTopupView:
    """Save the person's choice (the card was checked against their saved cards)."""
    await repo.insert_topup_settings(session, user_id, choice.tier)
    row = await repo.topup_settings(session, user_id, lock=True)
    assert row is not None
    if choice.enabled:
        if row.state == AutoTopupState.OFF:
            row.consecutive_failures = 0  # a fresh start after it was turned off
        row.state = AutoTopupState.ACTIVE
        row.paused_reason = None
        row.action_url = None
    else:
        row.state = AutoTopupState.OFF
        row.paused_reason = None
    row.enabled = choice.enabled
    row.threshold = choice.threshold
    row.tier = choice.tier
    row.monthly_max_count = choice.monthly_max_count
    row.monthly_max_amount = choice.monthly_max_amount
    row.payment_method_id = choice.payment_method_id
    row.updated_at = utcnow()
    await session.flush()
    return await view(session, settings, user_id)


async def active_threshold(session: AsyncSession, user_id: int) -> int | None:
    """The threshold while auto top-up is active (what the balance watch compares)."""
    row = await repo.topup_settings(session, user_id)
    if row is None or not row.enabled or row.state != AutoTopupState.ACTIVE:
        return None
    return row.threshold


async def start_attempt(
    session: AsyncSession, settings: Settings, user_id: int, available: int
) -> StartedAttempt | None:
    """A new attempt and its purchase row, if auto top-up should buy now (None if not:
    off or paused, above the threshold, one already in flight, a monthly cap reached)."""
    row = await repo.topup_settings(session, user_id, lock=True)
    if (
        row is None
        or not row.enabled
        or row.state != AutoTopupState.ACTIVE
        or row.payment_method_id is None
        or available >= row.threshold
    ):
        return None
    tier = settings.pricing_tiers.get(row.tier)
    if tier is None:
        return None
    now = utcnow()
    in_flight = await repo.topup_in_flight(session, user_id)
    if in_flight is not None:
        return await _stranded(session, in_flight, row.payment_method_id, now)
    count, amount = await repo.topups_since(session, user_id, month_start(now))
    if count + 1 > row.monthly_max_count or amount + tier.price > row.monthly_max_amount:
        return None
    attempt = AutoTopup(
        user_id=user_id,
        state=AutoTopupAttemptState.PENDING,
        tier=row.tier,
        amount_cents=tier.price,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(attempt)
            await session.flush()
    except IntegrityError:
        return None  # another attempt is in flight (the unique index said so)
    payment_id = await repo.insert_payment(
        session,
        user_id=user_id,
        tier=row.tier,
        tokens=tier.tokens,
        amount_cents=tier.price,
        currency=tier.currency,
        idempotency_key=f"auto-topup:{attempt.id}",
        now=now,
    )
    assert payment_id is not None  # the key is new with the attempt
    attempt.payment_id = payment_id
    await session.flush()
    return StartedAttempt(
        attempt_id=attempt.id,
        payment_id=payment_id,
        tier=row.tier,
        tokens=tier.tokens,
        amount_cents=tier.price,
        currency=tier.currency,
        payment_method_id=row.payment_method_id,
    )


#: An attempt still without its intent this long after it began was stranded by a process
#: that stopped between the two steps: it is driven again, with the same idempotency key.
STRANDED_AFTER = timedelta(minutes=2)


async def _stranded(
    session: AsyncSession, attempt: AutoTopup, payment_method_id: str, now: datetime
) -> StartedAttempt | None:
    """The in-flight attempt again, if it never learnt its intent and is old enough to
    have been abandoned (Stripe replays the create with the same key: one intent)."""
    if attempt.payment_intent_id is not None or attempt.payment_id is None:
        return None
    if attempt.created_at > now - STRANDED_AFTER:
        return None
    payment = await repo.get_payment(session, attempt.payment_id)
    if payment is None or payment.stripe_payment_intent_id is not None:
        return None
    # The pack is the one the payment row recorded (the tier may have changed since).
    return record_of(
        StartedAttempt,
        payment,
        attempt_id=attempt.id,
        payment_id=payment.id,
        payment_method_id=payment_method_id,
    )


async def record_intent(session: AsyncSession, attempt_id: int, payment_intent_id: str) -> None:
    attempt = await repo.topup(session, attempt_id)
    if attempt is None:
        raise PaymentNotFound()
    attempt.payment_intent_id = payment_intent_id
    await session.flush()


async def abandon(session: AsyncSession, attempt_id: int, code: str) -> None:
    """Stripe refused to create the intent at all: the attempt ends without a payment
    (no pause: nothing was declined; the next charge below the threshold tries again)."""
    attempt = await repo.topup(session, attempt_id)
    if attempt is None or attempt.state != AutoTopupAttemptState.PENDING:
        return
    attempt.state = AutoTopupAttemptState.FAILED
    attempt.error_code = code[:64]
    attempt.resolved_at = utcnow()
    await session.flush()


def action_url(settings: Settings, snap: IntentSnapshot) -> str:
    """The payment page, told which intent to finish (as Stripe's own return URLs do)."""
    query = {"payment_intent": snap.id}
    if snap.client_secret:
        query["payment_intent_client_secret"] = snap.client_secret
    return notifications.payment_page(settings.app_origin, **query)


async def on_payment_synced(
    session: AsyncSession,
    settings: Settings,
    row: Payment,
    snap: IntentSnapshot,
    *,
    fresh: bool = True,
) -> None:
    """The one place an attempt learns its outcome (inside the sync's transaction, the
    payment row locked): each change happens once, from the state it leaves. A failure
    is judged only on a ``fresh`` read (one the sync applied, not a stale one)."""
    attempt = await repo.topup_for_payment(session, row.id)
    if attempt is None or attempt.state == AutoTopupAttemptState.SUCCEEDED:
        return
    prefs = await repo.topup_settings(session, attempt.user_id, lock=True)
    now = utcnow()
    if row.status == PaymentStatus.SUCCEEDED and row.tokens_credited > 0:
        # Paid: off-session, or later by the person on the payment page.
        attempt.state = AutoTopupAttemptState.SUCCEEDED
        attempt.resolved_at = now
        if prefs is not None:
            prefs.consecutive_failures = 0
            if prefs.enabled and prefs.state == AutoTopupState.PAUSED:
                prefs.state = AutoTopupState.ACTIVE
                prefs.paused_reason = None
                prefs.action_url = None
        await notifications.notify(
            session,
            attempt.user_id,
            NotificationKind.TOPUP_SUCCEEDED,
            {
                "tier": attempt.tier,
                "tokens": row.tokens,
                "amount": row.amount_cents,
                "currency": row.currency,
                "payment_intent_id": snap.id,
            },
        )
        await session.flush()
        return
    if attempt.state != AutoTopupAttemptState.PENDING or not fresh:
        return
    needs_person = snap.status == PaymentIntentStatus.REQUIRES_ACTION or (
        snap.last_error_code == AUTHENTICATION_REQUIRED
    )
    failed = needs_person or snap.status == PaymentIntentStatus.CANCELED or (
        snap.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD and snap.last_error_code
    )
    if not failed:
        return  # processing, or not confirmed yet: a later sync decides
    code = AUTHENTICATION_REQUIRED if needs_person else (snap.last_error_code or snap.status)
    attempt.state = (
        AutoTopupAttemptState.ACTION_REQUIRED if needs_person else AutoTopupAttemptState.FAILED
    )
    attempt.error_code = code[:64]
    attempt.resolved_at = now
    link = action_url(settings, snap)
    data: dict[str, object] = {
        "tier": attempt.tier,
        "reason": code,
        "action_url": link,
        "payment_intent_id": snap.id,
    }
    if prefs is None:
        await session.flush()
        return
    prefs.consecutive_failures += 1
    prefs.updated_at = now
    if prefs.consecutive_failures >= settings.auto_topup_max_failures:
        prefs.enabled = False
        prefs.state = AutoTopupState.OFF
        prefs.paused_reason = "too_many_failures"
        prefs.action_url = link
        kind = NotificationKind.TOPUP_DISABLED
        data["failures"] = prefs.consecutive_failures
    else:
        prefs.state = AutoTopupState.PAUSED
        prefs.paused_reason = code[:64]
        prefs.action_url = link
        kind = NotificationKind.TOPUP_PAUSED if needs_person else NotificationKind.TOPUP_FAILED
    await notifications.notify(session, attempt.user_id, kind, data)
    await session.flush()



async def card_removed(session: AsyncSession, user_id: int, payment_method_id: str) -> None:
    """A removed card is no longer charged: auto top-up keeps its settings but has no
    card until another is chosen (it buys nothing meanwhile)."""
    row = await repo.topup_settings(session, user_id, lock=True)
    if row is not None and row.payment_method_id == payment_method_id:
        row.payment_method_id = None
        row.updated_at = utcnow()
        await session.flush()
