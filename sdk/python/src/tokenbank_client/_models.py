"""What the service API returns, as small typed records.

Each keeps the whole JSON object in ``raw``: the server may add fields (its contract only
adds), and a caller can read them before this package names them. Times stay the ISO
8601 strings the server sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _int(data: dict[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Customer:
    external_id: str
    email: str | None
    name: str | None
    created: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Customer:
        return cls(
            str(data.get("external_id", "")),
            _str(data, "email"),
            _str(data, "name"),
            data.get("created") is True,
            data,
        )


@dataclass(frozen=True)
class Balance:
    balance: int
    reserved: int
    available: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Balance:
        balance = _int(data, "balance")
        reserved = _int(data, "reserved")
        return cls(balance, reserved, _int(data, "available", balance - reserved), data)


@dataclass(frozen=True)
class Transaction:
    id: int
    transaction_type: str
    amount: int
    balance_after: int | None
    description: str
    hold_id: int | None
    created_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transaction:
        return cls(
            _int(data, "id"),
            str(data.get("transaction_type") or ""),
            _int(data, "amount"),
            _opt_int(data, "balance_after"),
            str(data.get("description") or ""),
            _opt_int(data, "hold_id"),
            _str(data, "created_at"),
            data,
        )


@dataclass(frozen=True)
class TransactionPage:
    """Newest first; pass ``next_before`` as ``before`` for the next page (None: no more)."""

    items: list[Transaction]
    next_before: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TransactionPage:
        items = data.get("items")
        rows = [Transaction.from_json(i) for i in items or [] if isinstance(i, dict)]
        return cls(rows, _opt_int(data, "next_before"), data)


@dataclass(frozen=True)
class Hold:
    """Tokens set aside for one customer until committed, released or expired."""

    id: int
    external_id: str
    amount: int
    status: str
    description: str
    expires_at: str | None
    replayed: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hold:
        return cls(
            _int(data, "id"),
            str(data.get("external_id", "")),
            _int(data, "amount"),
            str(data.get("status", "")),
            str(data.get("description") or ""),
            _str(data, "expires_at"),
            data.get("replayed") is True,
            data,
        )


@dataclass(frozen=True)
class Committed:
    """A committed hold: ``charged`` tokens spent, ``released`` of it given back."""

    hold: Hold
    transaction: Transaction
    charged: int
    released: int
    available: int
    replayed: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Committed:
        return cls(
            Hold.from_json(_obj(data, "hold")),
            Transaction.from_json(_obj(data, "transaction")),
            _int(data, "charged"),
            _int(data, "released"),
            _int(data, "available"),
            data.get("replayed") is True,
            data,
        )


@dataclass(frozen=True)
class Released:
    """A released hold; ``released`` is False when it was released or expired already."""

    hold: Hold
    released: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Released:
        return cls(Hold.from_json(_obj(data, "hold")), data.get("released") is True, data)


@dataclass(frozen=True)
class Posted:
    """A charge or grant: its ledger entry and the balance after it."""

    transaction: Transaction
    balance: Balance
    replayed: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Posted:
        return cls(
            Transaction.from_json(_obj(data, "transaction")),
            Balance.from_json(_obj(data, "balance")),
            data.get("replayed") is True,
            data,
        )


@dataclass(frozen=True)
class Purchase:
    """A started purchase: send the person to ``hosted_url`` (or confirm ``client_secret``
    with Stripe.js yourself); the tokens arrive when Stripe says the payment succeeded."""

    client_secret: str
    payment_intent_id: str
    hosted_url: str
    publishable_key: str | None
    tier: str
    tokens: int
    amount: int
    currency: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Purchase:
        return cls(
            str(data.get("client_secret", "")),
            str(data.get("payment_intent_id", "")),
            str(data.get("hosted_url", "")),
            _str(data, "publishable_key"),
            str(data.get("tier", "")),
            _int(data, "tokens"),
            _int(data, "amount"),
            str(data.get("currency", "")),
            data,
        )
