"""Stripe webhooks: verify, record in the inbox, answer 2xx; a worker applies them.

The request does no Stripe call: it checks the signature, inserts the whole event into the
inbox (``webhook_events``, one row per event id, ON CONFLICT DO NOTHING) in the request's
unit of work, which commits before the 2xx — so the 2xx means the event is durably
recorded, and Stripe never waits on Stripe. Which PaymentIntent the event is about (or,
for a dispute that does not say, which charge) is computed once, there, and stored with
it.

This module holds the inbox's rules and takes sessions; the applying — which asks Stripe
and so owns its transactions — is in :mod:`tokenbank.payments.flows`. A
``WebhookWorker`` runs in every app process. It wakes as soon as its own process records
an event and polls for the others' (``WEBHOOK_POLL_INTERVAL_S``); it claims due events
(``SKIP LOCKED`` on PostgreSQL), each claim counting an attempt, and applies each one
inside ``flows.handling`` — the one place an event is marked done (:func:`finish`), and
only if its block succeeds. A failure is retried with exponential backoff
(:func:`failure_verdict`, ``next_attempt_at``); after ``WEBHOOK_MAX_ATTEMPTS`` the event is
``dead`` and waits for an operator's "process again"; an event that can never be applied
is ``unprocessable`` at once. The replay command and "process again" go through the same
claim and the same ``handling``.

Applying an event never trusts its body: ``flows.sync_payment`` reads Stripe's current
state and writes only differences, and the event is marked handled in the same
transaction as that effect. A worker killed mid-event leaves its claim to run out
(``WEBHOOK_CLAIM_LEASE_S``); the next worker applies the event again, which changes
nothing that was already committed.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe

from tokenbank.config import Settings
from tokenbank.db import Unit
from tokenbank.errors import AppError
from tokenbank.payments import repository as repo
from tokenbank.payments.errors import (
    PaymentNotFound,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from tokenbank.payments.models import AckStatus, EventStatus
from tokenbank.payments.repository import ClaimedEvent
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

#: Events that can change what a payment is worth; anything else is recorded and ignored.
RELEVANT_PREFIXES = ("payment_intent.", "charge.", "refund.", "radar.early_fraud_warning.")
#: Billing events: about a subscription or its invoice, never naming a payment intent;
#: recorded for the subscriptions domain's applier (``flows.EVENT_APPLIERS``).
BILLING_PREFIXES = ("invoice.", "customer.subscription.")
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
    #: What the request answers (:class:`AckStatus`), or where "process again" left the
    #: event (:class:`EventStatus`).
    status: AckStatus | EventStatus
    payment_intent_id: str | None = None
    event_type: str = "unknown"


def verify_event(payload: bytes, signature: str | None, settings: Settings) -> dict[str, Any]:
    """The event, if it is signed with our secret within the tolerance; else a 400."""
    return verified(payload, signature, settings)[0]


def verified(
    payload: bytes, signature: str | None, settings: Settings
) -> tuple[dict[str, Any], str]:
    """:func:`verify_event`, and the body as text (what the inbox stores)."""
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
    if not looks_like_event(event):
        raise WebhookPayloadInvalid()
    return event, text


def _signed_at(signature: str) -> int:
    for part in signature.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t" and value.strip().isdigit():
            return int(value)
    return 0


def looks_like_event(event: Any) -> bool:
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


# --- the request: record (the acknowledgement's flow is flows.acknowledge) -------------


async def record(
    unit: Unit, event: dict[str, Any], payload_text: str | None = None
) -> WebhookResult:
    """Insert the whole event into the inbox once (one statement); the answer says what
    became of it. ``payload_text``: the event as received, stored as it is where the
    driver can (see :func:`tokenbank.payments.repository.record_event`)."""
    event_id, event_type = str(event["id"]), str(event["type"])
    relevant = event_type.startswith(RELEVANT_PREFIXES)
    ref = intent_reference(event) if relevant else Reference()
    if event_type.startswith(BILLING_PREFIXES):
        status, note = EventStatus.RECEIVED, None
    elif not relevant:
        status, note = EventStatus.IGNORED, "not a payment event"
    elif ref.invalid:
        status, note = EventStatus.UNPROCESSABLE, ref.invalid
    elif ref.payment_intent_id is None and ref.charge_id is None:
        status, note = EventStatus.IGNORED, "no payment intent in the event"
    else:
        status, note = EventStatus.RECEIVED, None
    inserted = await repo.record_event(
        unit,
        event_id=event_id,
        event_type=event_type,
        payment_intent_id=ref.payment_intent_id,
        charge_id=ref.charge_id,
        payload=event,
        status=status,
        now=utcnow(),
        error=note,
        payload_text=payload_text,
    )
    if not inserted:
        return WebhookResult(event_id, AckStatus.DUPLICATE, ref.payment_intent_id, event_type)
    if status is not EventStatus.RECEIVED:
        log.info("webhook %s (%s) %s: %s", event_id, event_type, status, note)
    return WebhookResult(event_id, AckStatus(status), ref.payment_intent_id, event_type)


# --- applying: the rules the worker follows (its flow is in flows.py) -----------------


class ClaimLost(Exception):  # noqa: N818 - a signal, not a failure
    """Our claim on the event ran out and another worker took it: leave it to them."""


async def finish(
    session: Unit,
    event: ClaimedEvent,
    status: EventStatus,
    note: str | None,
    payment_intent_id: str | None,
) -> None:
    """Mark a claimed event done inside the caller's unit of work (the one that commits
    its effect), so both commit or neither does. Raises :class:`ClaimLost` — rolling
    that unit back — when another worker has taken the event over."""
    ok = await repo.finish_event(
        session,
        event,
        status=status,
        now=utcnow(),
        error=note,
        payment_intent_id=payment_intent_id,
    )
    if not ok:
        raise ClaimLost(event.id)


def _backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.webhook_backoff_base_s * 2 ** min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(seconds, settings.webhook_backoff_max_s))


def failure_verdict(
    settings: Settings, event: ClaimedEvent, exc: Exception, now: datetime
) -> tuple[EventStatus, datetime | None, str]:
    """What a failed attempt makes of the event: ``unprocessable`` (one of
    :data:`NEVER_APPLICABLE`), ``dead`` (its attempts are used up) or ``failed`` with its
    next attempt after an exponential backoff; and the reason recorded."""
    reason = f"{exc.code}: {exc.detail}" if isinstance(exc, AppError) else type(exc).__name__
    if isinstance(exc, NEVER_APPLICABLE):
        return EventStatus.UNPROCESSABLE, None, reason
    if event.attempts >= settings.webhook_max_attempts:
        return EventStatus.DEAD, None, reason
    return EventStatus.FAILED, now + _backoff(settings, event.attempts), reason
