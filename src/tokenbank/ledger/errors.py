from __future__ import annotations

from tokenbank.errors import AppError
from tokenbank.errors import IdempotencyKeyReused as IdempotencyKeyReused  # one class, every domain
from tokenbank.observability import INSUFFICIENT


class LedgerError(AppError):
    """Base of every ledger rule violation."""


class InsufficientTokens(LedgerError):
    """Guarantee 3: spending never takes ``balance - reserved`` below zero."""

    status_code = 402
    code = "insufficient_tokens"
    message = "Not enough tokens."

    def __init__(self, *, balance: int, required: int) -> None:
        super().__init__(
            f"This needs {required} token(s); {max(balance, 0)} available.",
            balance=balance,
            required=required,
        )
        self.balance = balance
        self.required = required
        INSUFFICIENT.inc()  # made only where the ledger refuses a spend


class InvalidAmount(LedgerError):
    status_code = 422
    code = "invalid_amount"
    message = "The amount must be a positive whole number of tokens within limits."


class AccountNotFound(LedgerError):
    status_code = 404
    code = "account_not_found"
    message = "No token account for this user."


class ReservationNotFound(LedgerError):
    status_code = 404
    code = "reservation_not_found"
    message = "No such reservation."


class ReservationNotPending(LedgerError):
    """Guarantee 6: a reservation resolves once."""

    status_code = 409
    code = "reservation_not_pending"
    message = "The reservation was already resolved."

    def __init__(self, status: str) -> None:
        super().__init__(f"The reservation is already {status}.", status=status)
        self.status = status


class ReservationExpired(ReservationNotPending):
    code = "reservation_expired"
