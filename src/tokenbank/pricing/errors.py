"""The pricing domain's typed errors."""

from __future__ import annotations

from tokenbank.errors import AppError, ConfigError


class PricingError(AppError):
    """Base of every pricing rule violation."""


class PriceBookInvalid(PricingError, status=422, code="price_book_invalid"):
    """A price book must parse (see ``pricing.book``) before it becomes a version."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The price book is not valid: {reason}.", reason=reason)


class UnknownModel(PricingError, status=422, code="unknown_model"):
    """Only models in the current price book can be asked for (their price is known)."""

    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__(f"No such model: {model}.", model=model, models=known)


class CostCapTooLow(PricingError, status=422, code="cost_cap_too_low"):
    """A cap below the least a reply can cost would stop every reply before it starts."""

    def __init__(self, cap: int, required: int) -> None:
        super().__init__(
            f"The cap of {cap} tokens is below the least this reply can cost ({required}).",
            cap=cap,
            required=required,
        )


class PriceBookConfigInvalid(ConfigError, ValueError):
    """``PRICE_BOOK`` must be a valid price book, or the process refuses to start."""
