"""Stripe webhooks: verify, record in the inbox, answer 2xx; a worker applies them.

The request does no Stripe call: it checks the signature, inserts the whole event into the
inbox (``webhook_events``, one row per event id, ON CONFLICT DO NOTHING), commits and
answers 2xx — so the 2xx means the event is durably recorded, and Stripe never waits on
Stripe. Which PaymentIntent the event is about (or, for a dispute that does not say, which
charge) is computed once, there, and stored with it.

A :class:`WebhookWorker` runs in every app process. It wakes as soon as its own process
records an event and polls for the others' (``WEBHOOK_POLL_INTERVAL_S``); it claims due
events (``SKIP LOCKED`` on PostgreSQL), each claim counting an attempt, and applies each
one inside :func:`handling` — the one place an event is marked done, and only if its
block succeeds. A failure is retried with exponential backoff (``next_attempt_at``); after
``WEBHOOK_MAX_ATTEMPTS`` the event is ``dead`` and waits for an operator's "process
again"; an event that can never be applied is ``unprocessable`` at once. The replay command
and "process again" go through the same claim and the same :func:`handling`.

Applying an event never trusts its body: :func:`sync.sync_payment` reads Stripe's current
state and writes only differences, and the event is marked handled in the same
transaction as that effect. A worker killed mid-event leaves its claim to run out
(``WEBHOOK_CLAIM_LEASE_S``); the next worker applies the event again, which changes
nothing that was already committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.errors import AppError
from tokenbank.observability import WEBHOOK_EVENTS
from tokenbank.payments import repository as repo
from tokenbank.payments.errors import (
    PaymentNotFound,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from tokenbank.payments.models import FINAL_EVENT_STATUSES, EventStatus
from tokenbank.payments.repository import ClaimedEvent
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.payments.sync import SyncOutcome, checks_fraud_warnings, sync_payment
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

#: Events that can change what a payment is worth; anything else is recorded and ignored.
RELEVANT_PREFIXES = ("payment_intent.", "charge.", "refund.", "radar.early_fraud_warning.")
MAX_PAYLOAD_BYTES = 512 * 1024
#: What a Stripe object id looks like; an event naming anything else can never be applied.
STRIPE_ID = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9]{1,250}$")
#: Errors that no retry can cure: the event is ``unprocessable`` at once. Stripe has no
#: such object (``PaymentNotFound``, raised for Stripe's ``resource_missing``; an id Stripe
#: refuses is caught before any call, by :data:`STRIPE_ID`).
NEVER_APPLICABLE: tuple[type[Exception], ...] = (PaymentNotFound,)



@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    status: str
    payment_intent_id: str | None = None
    event_type: str = "unknown"


def verify_event(payload: bytes, signature: str | None, settings: Settings) -> dict[str, Any]:
    """The event, if it is signed with our secret within the tolerance; else a 400."""
    secret = settings.stripe_webhook_secret
    if not secret:
        log.error("webhook refused: STRIPE_WEBHOOK_SECRET is not set")
        raise WebhookSignatureInvalid("No webhook secret is configured; events cannot be checked.")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WebhookPayloadInvalid("The webhook body is too large.")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadInvalid("The webhook body is not UTF-8.") from exc
    if signature is not None and not signature.isascii():
        # A signature header is ASCII by Stripe's format; the SDK's compare_digest raises
        # TypeError on anything else, which must stay a refusal, not a crash.
        raise WebhookSignatureInvalid("The Stripe-Signature header is malformed.")
    tolerance = settings.stripe_webhook_tolerance_s
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        log.warning("webhook refused: %s", str(exc).split("\n")[0][:120])
        raise WebhookSignatureInvalid() from exc
    if _signed_at(signature or "") > time.time() + tolerance:
        raise WebhookSignatureInvalid("The Stripe-Signature timestamp is in the future.")
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise WebhookPayloadInvalid() from exc
    if not _looks_like_event(event):
        raise WebhookPayloadInvalid()
    return dict(event)


def _signed_at(signature: str) -> int:
    for part in signature.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t" and value.strip().isdigit():
            return int(value)
    return 0


def _looks_like_event(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    data = event.get("data")
    return (
        isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
    )


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Reference:
    """What an event is about: its PaymentIntent, or failing that (a dispute that does not
    name its intent) the charge to ask Stripe about; ``invalid`` says why neither can be
    used (an id Stripe would refuse)."""

    payment_intent_id: str | None = None
    charge_id: str | None = None
    invalid: str | None = None


def intent_reference(event: dict[str, Any]) -> Reference:
    """Computed once, when the event is recorded; the worker uses what was stored."""
    event_type: str = event["type"]
    obj: dict[str, Any] = event["data"]["object"]
    if event_type.startswith("payment_intent."):
        pi = _id_of(obj.get("id")) if obj.get("object") == "payment_intent" else None
        charge = None
    elif event_type.startswith("charge.") and obj.get("object") == "charge":
        pi, charge = _id_of(obj.get("payment_intent")), _id_of(obj.get("id"))
    else:
        pi, charge = _id_of(obj.get("payment_intent")), _id_of(obj.get("charge"))
    for name, value in (("payment intent", pi), ("charge", charge)):
        if value is not None and not STRIPE_ID.match(value):
            return Reference(invalid=f"the event names a {name} id Stripe refuses")
    return Reference(pi, None if pi else charge)


# --- the request: record and acknowledge -------------------------------------------------


async def handle_webhook(
    db: Database, settings: Settings, payload: bytes, signature: str | None
) -> WebhookResult:
    """Verify and record the event (no Stripe call); the worker applies it."""
    event = verify_event(payload, signature, settings)
    return await record(db, event)


async def record(db: Database, event: dict[str, Any]) -> WebhookResult:
    """Insert the whole event into the inbox once; the answer says what became of it."""
    event_id, event_type = str(event["id"]), str(event["type"])
    relevant = event_type.startswith(RELEVANT_PREFIXES)
    ref = intent_reference(event) if relevant else Reference()
    if not relevant:
        status, note = EventStatus.IGNORED, "not a payment event"
    elif ref.invalid:
        status, note = EventStatus.UNPROCESSABLE, ref.invalid
    elif ref.payment_intent_id is None and ref.charge_id is None:
        status, note = EventStatus.IGNORED, "no payment intent in the event"
    else:
        status, note = EventStatus.RECEIVED, None
    async with db.transaction() as session:
        inserted = await repo.record_event(
            session,
            event_id=event_id,
            event_type=event_type,
            payment_intent_id=ref.payment_intent_id,
            charge_id=ref.charge_id,
            payload=event,
            status=status,
            now=utcnow(),
            error=note,
        )
    if not inserted:
        return WebhookResult(event_id, "duplicate", ref.payment_intent_id, event_type)
    if status is not EventStatus.RECEIVED:
        log.info("webhook %s (%s) %s: %s", event_id, event_type, status, note)
    return WebhookResult(event_id, str(status), ref.payment_intent_id, event_type)


# --- applying: the one context manager -------------------------------------------------


class ClaimLost(Exception):  # noqa: N818 - a signal, not a failure
    """Our claim on the event ran out and another worker took it: leave it to them."""


class Handling:
    """An event being applied; see :func:`handling`."""

    def __init__(self, db: Database, event: ClaimedEvent) -> None:
        self.db = db
        self.event = event
        self.status: EventStatus | None = None
        self.payment_intent_id = event.payment_intent_id
        self.note: str | None = None

    async def done_in(
        self,
        session: AsyncSession,
        status: EventStatus = EventStatus.HANDLED,
        note: str | None = None,
    ) -> None:
        """Mark the event done inside the caller's transaction (the one that commits the
        effect), so both commit or neither does. Raises :class:`ClaimLost` — rolling that
        transaction back — when another worker has taken the event over."""
        ok = await repo.finish_event(
            session,
            self.event,
            status=status,
            now=utcnow(),
            error=note,
            payment_intent_id=self.payment_intent_id,
        )
        if not ok:
            raise ClaimLost(self.event.id)
        self.status, self.note = status, note

    async def done(self, status: EventStatus = EventStatus.HANDLED, note: str | None = None
                   ) -> None:
        """Mark the event done in a transaction of its own (nothing else to commit)."""
        async with self.db.transaction() as session:
            await self.done_in(session, status, note)


def _backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.webhook_backoff_base_s * 2 ** min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(seconds, settings.webhook_backoff_max_s))


def _reason(exc: BaseException) -> str:
    return f"{exc.code}: {exc.detail}" if isinstance(exc, AppError) else type(exc).__name__


@asynccontextmanager
async def handling(
    db: Database, settings: Settings, event: ClaimedEvent, *, reraise: bool = False
) -> AsyncIterator[Handling]:
    """Apply a claimed event: it is marked done only if the block succeeds.

    The block marks it done itself (``done_in`` inside the effect's transaction) or, if it
    returns without doing so, it is marked ``handled`` here. An error marks it
    ``unprocessable`` (one of :data:`NEVER_APPLICABLE`), ``dead`` (the attempts are used
    up) or ``failed`` with its next attempt after an exponential backoff; ``reraise`` lets a
    retryable error through to the caller afterwards (an operator waiting for the answer).
    A cancelled block hands the event back for another attempt now.
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
    reason = _reason(exc)
    next_at: datetime | None = None
    if isinstance(exc, NEVER_APPLICABLE):
        status = EventStatus.UNPROCESSABLE
    elif event.attempts >= settings.webhook_max_attempts:
        status = EventStatus.DEAD
    else:
        status, next_at = EventStatus.FAILED, now + _backoff(settings, event.attempts)
    level = logging.WARNING if status is EventStatus.FAILED else logging.ERROR
    log.log(level, "webhook %s (%s) %s after attempt %d: %s",
            event.id, event.type, status, event.attempts, reason)
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


async def apply(h: Handling, gateway: StripeGateway, settings: Settings) -> None:
    """What applying an event means: sync the payment it is about, marking it done in the
    sync's own transaction."""
    event = h.event
    if h.payment_intent_id is None and event.charge_id is not None:
        h.payment_intent_id = await gateway.charge_payment_intent(event.charge_id)
    pi_id = h.payment_intent_id
    if pi_id is None:
        await h.done(EventStatus.IGNORED, "no payment intent for its charge")
        return

    async def mark_done(session: AsyncSession, outcome: SyncOutcome) -> None:
        if outcome.ignored:
            await h.done_in(session, EventStatus.IGNORED, outcome.ignored)
        else:
            await h.done_in(session, EventStatus.HANDLED, outcome.refused)

    outcome = await sync_payment(
        h.db,
        gateway,
        settings,
        pi_id,
        also=mark_done,
        check_fraud_warnings=checks_fraud_warnings(event.type),
    )
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
) -> Handling:
    async with handling(db, settings, event, reraise=reraise) as h:
        await apply(h, gateway, settings)
    WEBHOOK_EVENTS.labels(event.type, str(h.status or "taken_over")).inc()
    return h


def _claim_window(settings: Settings) -> tuple[datetime, datetime, str]:
    now = utcnow()
    return now, now + timedelta(seconds=settings.webhook_claim_lease_s), str(uuid.uuid4())


async def claim_due(db: Database, settings: Settings, limit: int) -> list[ClaimedEvent]:
    now, until, token = _claim_window(settings)
    async with db.transaction() as session:
        return await repo.claim_events(
            session, now=now, lease_until=until, token=token, limit=limit
        )


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
        if not _looks_like_event(event) or event["id"] != event_id:
            raise WebhookPayloadInvalid("Stripe returned something that is not this event.")
        recorded = await record(db, event)
        if recorded.status in ("ignored", "unprocessable"):
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
                str(h.status or EventStatus.PROCESSING),
                h.payment_intent_id,
                event_claimed.type,
            )
        # A worker is applying it right now: what it reaches is the answer.
        if status in FINAL_EVENT_STATUSES or time.monotonic() > deadline:
            return WebhookResult(event_id, str(status), pi_id)
        await asyncio.sleep(0.05)  # polling the worker's claim, which holds no lock we can wait on


# --- the worker ------------------------------------------------------------------------


class WebhookWorker:
    """Drains the inbox in one app process; see the module docs."""

    def __init__(self, db: Database, gateway: StripeGateway, settings: Settings) -> None:
        self.db = db
        self.gateway = gateway
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """An event was recorded in this process: drain now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-worker")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def drain(self) -> int:
        """Apply every due event (in batches of ``WEBHOOK_CONCURRENCY`` at once); returns
        how many were claimed."""
        total = 0
        while True:
            batch = await claim_due(self.db, self.settings, self.settings.webhook_concurrency)
            if not batch:
                return total
            total += len(batch)
            await asyncio.gather(*(self._apply(e) for e in batch))

    async def _apply(self, event: ClaimedEvent) -> None:
        if event.attempts > self.settings.webhook_max_attempts:
            # Only a claim that ran out gets here: its workers died applying it, again and
            # again. Stop before it takes another process down; an operator decides.
            note = f"gave up: its worker stopped during each of {event.attempts - 1} attempts"
            log.error("webhook %s (%s) dead: %s", event.id, event.type, note)
            async with self.db.transaction() as session:
                await repo.finish_event(
                    session, event, status=EventStatus.DEAD, now=utcnow(), error=note
                )
            return
        await process_claimed(self.db, self.gateway, self.settings, event)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: try again at the next wake or poll
                log.exception("webhook worker: draining the inbox failed")
            try:
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self.settings.webhook_poll_interval_s
                )
            except TimeoutError:
                pass
