"""The meter's typed errors (the ledger's own — 402, 404 ``reservation_not_found``, 409 —
pass through unchanged)."""

from __future__ import annotations

from tokenbank.errors import AppError


class MeterError(AppError):
    """Base of every metering rule violation."""


class UnknownFeature(
    MeterError, status=404, code="unknown_feature", message="No such metered feature."
):
    """Only features the price book prices can be metered."""

    def __init__(self, feature: str) -> None:
        super().__init__(f"The feature {feature!r} has no price.", feature=feature)
