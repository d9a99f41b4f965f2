"""The hold a ``with billing.hold(...)`` block works inside."""

from __future__ import annotations

from tokenbank_client._models import Hold


class ActiveHold:
    """A hold being used by a block: on a normal exit the block's tokens are committed
    (``commit_amount``, the whole hold unless set lower; the rest is released), on an
    exception, or after :meth:`cancel`, the whole hold is released."""

    def __init__(self, hold: Hold) -> None:
        self.hold = hold
        self.commit_amount: int | None = None
        self.cancelled = False
        self.result: Hold | None = None

    @property
    def id(self) -> str:
        return self.hold.id

    @property
    def amount(self) -> int:
        return self.hold.amount

    def use(self, amount: int) -> None:
        """Commit ``amount`` (at most the hold) instead of the whole hold on success."""
        if amount < 0 or amount > self.hold.amount:
            raise ValueError(f"can commit 0..{self.hold.amount} tokens of this hold, not {amount}")
        self.commit_amount = amount

    def cancel(self) -> None:
        """Release the whole hold when the block ends, even without an exception."""
        self.cancelled = True
