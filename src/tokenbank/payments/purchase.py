"""What a token purchase writes into its PaymentIntent's metadata, and the one check of it.

The metadata is built here when the intent is created (:func:`purchase_metadata`) and
read back here whenever an intent is judged (:func:`is_token_purchase`,
:func:`buyer_of`, :func:`names_purchase`): crediting a row, adopting an intent that has
no row, choosing which intents reconcile and the fraud-warning refund look at.
"""

from __future__ import annotations

from collections.abc import Mapping

#: ``metadata.type`` of every PaymentIntent this app creates.
PURCHASE_TYPE = "token_purchase"


def _identity(user_id: int, tokens: int) -> dict[str, str]:
    """The fields that say who bought how many tokens (what a credit checks)."""
    return {"type": PURCHASE_TYPE, "user_id": str(user_id), "tokens": str(tokens)}


def purchase_metadata(*, user_id: int, tier: str, tokens: int, payment_id: int) -> dict[str, str]:
    """The metadata of a new purchase's PaymentIntent (``payment_id`` names our row, so
    an intent whose id we never recorded is matched to it)."""
    identity = _identity(user_id, tokens)
    # In the order the intents made so far carry (Stripe's idempotent replay of a create
    # compares the parameters).
    return {
        "user_id": identity["user_id"],
        "tier": tier,
        "tokens": identity["tokens"],
        "type": identity["type"],
        "payment_id": str(payment_id),
    }


def is_token_purchase(metadata: Mapping[str, str]) -> bool:
    return metadata.get("type") == PURCHASE_TYPE


def buyer_of(metadata: Mapping[str, str]) -> int | None:
    """The user id the metadata names (None when it names none)."""
    value = metadata.get("user_id", "")
    return int(value) if value.isdigit() else None


def names_purchase(metadata: Mapping[str, str], *, user_id: int, tokens: int) -> bool:
    """Whether the metadata says this user bought these tokens (a token purchase)."""
    return all(metadata.get(key) == value for key, value in _identity(user_id, tokens).items())


def names_tokens(metadata: Mapping[str, str], tokens: int) -> bool:
    return metadata.get("tokens") == str(tokens)
