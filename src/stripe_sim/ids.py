"""Stripe-looking identifiers."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    """``pi_3Q...`` style: prefix, then 24 base62 characters (as Stripe's ids)."""
    return f"{prefix}_{random_token(24)}"


def new_secret(object_id: str) -> str:
    return f"{object_id}_secret_{random_token(25)}"
