"""Verifying the webhooks tokenbank sends to your app.

Each delivery is a POST whose JSON body is the event (``{id, object: "event", type,
created, data: {object, customer?}}``) with two headers: ``Tokenbank-Event-Id`` and
``Tokenbank-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` keyed by
the endpoint's ``whsec_...`` secret — the scheme Stripe uses, so a ``v1`` value is
checked the same way. While a rolled secret still signs beside the new one the header
carries two ``v1`` values; the event is accepted if any matches your secret, so either
secret verifies until the old one expires. Check the signature over the raw bytes (before
parsing), refuse old timestamps, and deduplicate by the event id: a delivery may arrive
more than once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "Tokenbank-Signature"
EVENT_ID_HEADER = "Tokenbank-Event-Id"


class WebhookVerificationError(ValueError):
    """The body is not an event tokenbank signed with this secret, recently."""


def _parts(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError("The signature header is malformed.")
    return timestamp, signatures


def verify_webhook(
    payload: bytes | str,
    header: str | None,
    secret: str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """The event, if ``header`` (``Tokenbank-Signature``) signs ``payload`` (the raw
    body) with ``secret`` within ``tolerance`` seconds of now; else
    :class:`WebhookVerificationError`."""
    if not header or not header.isascii():
        raise WebhookVerificationError("No signature header.")
    body = payload.encode() if isinstance(payload, str) else payload
    timestamp, signatures = _parts(header)
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookVerificationError("The signature does not match this body and secret.")
    current = time.time() if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("The signature's timestamp is outside the tolerance.")
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationError("The body is not JSON.") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise WebhookVerificationError("The body is not an event.")
    return event
