"""What the service API returns, as small typed records.

Each keeps the whole JSON object in ``raw``: the server may add fields (the contract only
adds), and a caller can read them before this package names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _int(data: dict[str, Any], key: str, default: int = 0) -> int:
    value = data.get(key, default)
    return value if isinstance(value, int) else default


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True)
class Customer:
    external_id: str
    email: str | None
    name: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Customer:
        return cls(str(data.get("external_id", "")), _str(data, "email"), _str(data, "name"), data)


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
    id: str
    transaction_type: str
    amount: int
    balance_after: int | None
    description: str | None
    created_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transaction:
        after = data.get("balance_after")
        return cls(
            str(data.get("id", "")),
            str(data.get("transaction_type") or data.get("type") or ""),
            _int(data, "amount"),
            after if isinstance(after, int) else None,
            _str(data, "description"),
            _str(data, "created_at"),
            data,
        )


@dataclass(frozen=True)
class TransactionPage:
    items: list[Transaction]
    next_before: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TransactionPage:
        items = data.get("items")
        rows = [Transaction.from_json(i) for i in items if isinstance(i, dict)] if items else []
        return cls(rows, _str(data, "next_before"), data)


@dataclass(frozen=True)
class Hold:
    """Tokens set aside for one customer until committed, released or expired."""

    id: str
    amount: int
    status: str
    expires_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hold:
        return cls(
            str(data.get("id", "")),
            _int(data, "amount"),
            str(data.get("status", "")),
            _str(data, "expires_at"),
            data,
        )


@dataclass(frozen=True)
class Entry:
    """The ledger entry a charge or grant wrote, and the balance after it."""

    id: str
    amount: int
    balance: Balance | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        nested = data.get("balance")
        balance = Balance.from_json(nested) if isinstance(nested, dict) else None
        return cls(str(data.get("id", "")), _int(data, "amount"), balance, data)


@dataclass(frozen=True)
class Purchase:
    client_secret: str
    payment_intent_id: str
    hosted_url: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Purchase:
        return cls(
            str(data.get("client_secret", "")),
            str(data.get("payment_intent_id", "")),
            str(data.get("hosted_url", "")),
            data,
        )
