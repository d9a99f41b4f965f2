"""Operator actions that ask Stripe: each takes the Database and owns its transactions,
so that no transaction stays open while Stripe answers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tokenbank.db import Database
from tokenbank.payments import repository as payments_repo
from tokenbank.payments.errors import PaymentNotFound
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.payments.sync import view_of


async def payment_report(
    db: Database, gateway: StripeGateway, payment_intent_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Our record of a payment (None if we have none) and Stripe's current state of its
    PaymentIntent, without the client secret."""
    async with db.transaction() as session:
        row = await payments_repo.find_by_intent(session, payment_intent_id)
        ours = asdict(view_of(row)) if row is not None else None
    if not gateway.configured:
        return ours, {"error": "payments_not_configured"}
    try:
        found = await gateway.retrieve_intent(payment_intent_id)
    except PaymentNotFound:
        if ours is None:
            raise
        return ours, {"error": "not found at Stripe"}
    snap = asdict(found)
    snap.pop("client_secret", None)  # a secret of the customer's browser session
    # The money the tokens follow: refunds not failed/canceled, disputed funds held.
    snap["refunded_cents"] = found.refunded_cents
    snap["disputed_cents"] = found.disputed_cents
    snap["returned_cents"] = found.returned_cents
    return ours, snap
