"""Stripe webhooks: verify, record in the inbox, sync, and only then answer 2xx.

The inbox (``webhook_events``) holds one row per event id, inserted with ON CONFLICT DO
NOTHING. An event already ``handled`` (or ``ignored``, or ``unprocessable``: it names an
id Stripe refuses or an object Stripe does not have) answers 200 and does nothing.
Otherwise the event only tells us WHICH PaymentIntent to look at: the body is never
trusted, :func:`sync.sync_payment` reads Stripe's current state, and the event is marked
handled in the same transaction as the sync's effect. Two deliveries of one event racing
each other both run the (idempotent, row-locked) sync, so neither answers 2xx before the
effect is committed. A failure marks the event ``failed`` (in its own transaction) and
answers 5xx so that Stripe retries.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.errors import AppError
from tokenbank.payments import repository as repo
from tokenbank.payments.errors import (
    StripeObjectUnusable,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.payments.sync import SyncOutcome, checks_fraud_warnings, sync_payment
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

#: Events that can change what a payment is worth; anything else is recorded and ignored.
RELEVANT_PREFIXES = ("payment_intent.", "charge.", "refund.", "radar.early_fraud_warning.")
#: An event whose object Stripe refuses or does not have: acknowledged, never retried.
UNPROCESSABLE = "unprocessable"
MAX_PAYLOAD_BYTES = 512 * 1024

WebhookStatus = Literal["handled", "duplicate", "ignored"]


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    status: WebhookStatus
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


def intent_reference(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(payment_intent_id, charge_id)``: which intent the event is about, or failing that
    (a dispute that does not name its intent) which charge to ask Stripe about."""
    event_type: str = event["type"]
    obj: dict[str, Any] = event["data"]["object"]
    if event_type.startswith("payment_intent."):
        return (_id_of(obj.get("id")) if obj.get("object") == "payment_intent" else None), None
    if event_type.startswith(("charge.dispute.", "radar.early_fraud_warning.")):
        return _id_of(obj.get("payment_intent")), _id_of(obj.get("charge"))
    return _id_of(obj.get("payment_intent")), None


def _summary(event: dict[str, Any]) -> dict[str, Any]:
    """What the inbox keeps: enough to find the event again, no card or customer details."""
    obj = event["data"]["object"]
    return {
        "id": event["id"],
        "type": event["type"],
        "created": event.get("created"),
        "livemode": event.get("livemode"),
        "object": {k: obj.get(k) for k in ("id", "object", "status", "payment_intent")},
    }


async def handle_webhook(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    payload: bytes,
    signature: str | None,
) -> WebhookResult:
    event = verify_event(payload, signature, settings)
    result = await _handle_verified(db, gateway, settings, event)
    return replace(result, event_type=str(event["type"]))


async def _handle_verified(
    db: Database,
    gateway: StripeGateway,
    settings: Settings,
    event: dict[str, Any],
    *,
    again: bool = False,
) -> WebhookResult:
    """Record the event in the inbox, then process it unless it was done already.

    ``again`` (an operator's replay) processes it whatever the inbox says.
    """
    event_id, event_type = str(event["id"]), str(event["type"])
    relevant = event_type.startswith(RELEVANT_PREFIXES)
    pi_id, _charge = intent_reference(event) if relevant else (None, None)
    async with db.transaction() as session:
        await repo.record_event(
            session,
            event_id=event_id,
            event_type=event_type,
            payment_intent_id=pi_id,
            payload=_summary(event),
            status="received" if relevant else "ignored",
            now=utcnow(),
        )
        status = await repo.event_status(session, event_id)
    if not relevant:
        log.info("webhook %s (%s) ignored: not a payment event", event_id, event_type)
        return WebhookResult(event_id, "ignored")
    if status in ("handled", "ignored", UNPROCESSABLE) and not again:
        return WebhookResult(event_id, "duplicate", pi_id)
    try:
        return await _process(db, gateway, settings, event)
    except Exception as exc:
        # Not a status change: the error still answers 5xx (so Stripe retries); this only
        # records it on the event first.
        await _record_failure(db, event_id, exc)
        raise


async def replay_event(
    db: Database, gateway: StripeGateway, settings: Settings, event_id: str
) -> WebhookResult:
    """Process an event again, re-fetched from Stripe (never from our stored copy).

    For the operator's "process again" and ``tokenbank webhooks replay``: whatever the
    inbox says, the event's payment is synced again, which is harmless when nothing
    changed (the sync writes only differences).
    """
    event = await gateway.retrieve_event(event_id)
    if not _looks_like_event(event):
        raise WebhookPayloadInvalid("Stripe returned something that is not an event.")
    result = await _handle_verified(db, gateway, settings, event, again=True)
    return replace(result, event_type=str(event["type"]))


async def _process(
    db: Database, gateway: StripeGateway, settings: Settings, event: dict[str, Any]
) -> WebhookResult:
    event_id = str(event["id"])
    pi_id, charge_id = intent_reference(event)
    if pi_id is None and charge_id is not None:
        try:
            pi_id = await gateway.charge_payment_intent(charge_id)
        except StripeObjectUnusable as exc:
            await _mark(db, event_id, UNPROCESSABLE, None, exc.reason)
            return WebhookResult(event_id, "ignored")
    if pi_id is None:
        await _mark(db, event_id, "ignored", None, "no payment intent in the event")
        return WebhookResult(event_id, "ignored")

    async def mark_done(session: AsyncSession, outcome: SyncOutcome) -> None:
        status = "ignored" if outcome.ignored else "handled"
        note = outcome.ignored or outcome.refused
        await repo.mark_event(
            session, event_id, status=status, now=utcnow(), payment_intent_id=pi_id, error=note
        )

    try:
        outcome = await sync_payment(
            db,
            gateway,
            settings,
            pi_id,
            also=mark_done,
            check_fraud_warnings=checks_fraud_warnings(str(event["type"])),
        )
    except StripeObjectUnusable as exc:
        await _mark(db, event_id, UNPROCESSABLE, pi_id[:255], exc.reason)
        return WebhookResult(event_id, "ignored", pi_id)
    log.info(
        "webhook %s (%s) for %s: %s",
        event_id,
        event["type"],
        pi_id,
        outcome.ignored or (outcome.status_after or "synced"),
    )
    return WebhookResult(event_id, "ignored" if outcome.ignored else "handled", pi_id)


async def _mark(
    db: Database, event_id: str, status: str, pi_id: str | None, note: str | None
) -> None:
    async with db.transaction() as session:
        await repo.mark_event(
            session, event_id, status=status, now=utcnow(), payment_intent_id=pi_id, error=note
        )


async def _record_failure(db: Database, event_id: str, exc: Exception) -> None:
    reason = f"{exc.code}: {exc.detail}" if isinstance(exc, AppError) else type(exc).__name__
    log.warning("webhook %s failed (%s); Stripe will retry", event_id, reason)
    try:
        await _mark(db, event_id, "failed", None, reason)
    except Exception:  # best effort: the original error is what the caller must see
        log.exception("could not record the failure of webhook %s", event_id)
