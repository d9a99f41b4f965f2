"""Every idempotency key the ledger writes, in one place, for Python and for SQL.

A key is unique per user (``uq_token_transactions_user_idempotency``,
``uq_token_reservations_user_idempotency``), so a key's format is a promise: one event
always makes the same key (a retry is a replay), two different events never make the same
one. Each format starts with its own prefix, and no prefix starts another, so keys of
different kinds never meet; a client's own key only ever follows a prefix and the ids
before it.

Stored keys outlive code: never change a format that has been deployed, add a new one.
"""

from __future__ import annotations

#: A paid PaymentIntent's ``purchase`` entry (one per intent, guarantee 5).
PURCHASE = "purchase:"
#: The ``deduction`` a committed hold becomes (one per hold, guarantee 6).
COMMITTED_HOLD = "reservation:"
#: A ``purchase_reversal`` at a version of the payment's row.
REVERSAL = "reversal:"
#: A ``purchase_reinstatement`` at a version of the payment's row.
REINSTATEMENT = "reinstatement:"
#: The sign-up bonus (one per user).
SIGNUP = "signup:"
#: An admin's grant or adjustment, under the admin's own ``Idempotency-Key``.
ADMIN = "admin:"
#: The hold for an AI reply, under the client's ``Idempotency-Key`` (a reservation key).
GENERATION = "gen:"
#: The ``refund`` entry of a charged AI reply (one per reply message).
REPLY_REFUND = "refund:"
#: A metered feature's hold, under the caller's idempotency key (a reservation key).
METER_HOLD = "meter-hold:"
#: A metered feature's one-shot charge, under the caller's idempotency key.
METER_CHARGE = "meter-charge:"
#: A paid subscription invoice's allotment (one per invoice).
ALLOTMENT = "allotment:"
#: Allotment tokens taken back (money returned on the invoice), at a version of its row.
ALLOTMENT_REVERSAL = "allotment_reversal:"
#: Allotment tokens given back (a dispute won), at a version of the invoice's row.
ALLOTMENT_REINSTATEMENT = "allotment_reinstatement:"
#: A lot's ``expiry`` entry (one per lot, by the expiry job).
LOT_EXPIRY = "lot-expiry:"

PREFIXES = (
    PURCHASE,
    COMMITTED_HOLD,
    REVERSAL,
    REINSTATEMENT,
    SIGNUP,
    ADMIN,
    GENERATION,
    REPLY_REFUND,
    METER_HOLD,
    METER_CHARGE,
    ALLOTMENT,
    ALLOTMENT_REVERSAL,
    ALLOTMENT_REINSTATEMENT,
    LOT_EXPIRY,
)


def _at_version(prefix: str, object_id: str, version: int) -> str:
    """A change made at ``version`` of the row of ``object_id`` (a payment's, an invoice's):
    once per version, so the row's next change makes a new key."""
    return f"{prefix}{object_id}:v{version}"


def purchase(payment_intent_id: str) -> str:
    return f"{PURCHASE}{payment_intent_id}"


def committed_hold(reservation_id: int) -> str:
    return f"{COMMITTED_HOLD}{reservation_id}"


def committed_hold_sql(reservation_id: str) -> str:
    """:func:`committed_hold` as a SQL expression over ``reservation_id`` (SQL text)."""
    return f"'{COMMITTED_HOLD}' || {reservation_id}"


def reversal(payment_intent_id: str, version: int) -> str:
    return _at_version(REVERSAL, payment_intent_id, version)


def reinstatement(payment_intent_id: str, version: int) -> str:
    return _at_version(REINSTATEMENT, payment_intent_id, version)


def signup(user_id: int) -> str:
    return f"{SIGNUP}{user_id}"


def admin(admin_id: int, client_key: str) -> str:
    return f"{ADMIN}{admin_id}:{client_key}"


def generation(chat_id: int, attempt: int, client_key: str) -> str:
    # Chat and attempt are digits before the key, so no two (chat, attempt, key) share one.
    return f"{GENERATION}{chat_id}:{attempt}:{client_key}"


def reply_refund(message_id: int) -> str:
    return f"{REPLY_REFUND}{message_id}"


def meter_hold(feature: str, client_key: str) -> str:
    # A feature name has no ":" (``meter.prices.FEATURE_PATTERN``), so the key after it
    # is the client's alone.
    return f"{METER_HOLD}{feature}:{client_key}"


def meter_charge(feature: str, client_key: str) -> str:
    return f"{METER_CHARGE}{feature}:{client_key}"


def lot_expiry(lot_id: int) -> str:
    return f"{LOT_EXPIRY}{lot_id}"


def allotment(invoice_id: str) -> str:
    return f"{ALLOTMENT}{invoice_id}"


def allotment_reversal(invoice_id: str, version: int) -> str:
    return _at_version(ALLOTMENT_REVERSAL, invoice_id, version)


def allotment_reinstatement(invoice_id: str, version: int) -> str:
    return _at_version(ALLOTMENT_REINSTATEMENT, invoice_id, version)
