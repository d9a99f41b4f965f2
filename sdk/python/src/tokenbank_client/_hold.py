"""The hold a ``with billing.hold(...)`` block works inside."""

from __future__ import annotations

from tokenbank_client._errors import TokenbankError
from tokenbank_client._models import Committed, Hold, Released


class ActiveHold:
    """A hold being used by a block. On a normal exit the block's tokens are committed
    (``commit_amount``: the whole hold unless :meth:`use` set less; the rest is released
    at once); on an exception, or after :meth:`cancel`, or when :meth:`use` set 0, the
    whole hold is released. ``result`` is the commit or release, once the block ended."""

    def __init__(self, hold: Hold) -> None:
        self.hold = hold
        self.commit_amount: int | None = None
        self.cancelled = False
        self.result: Committed | Released | None = None

    @property
    def id(self) -> int:
        return self.hold.id

    @property
    def amount(self) -> int:
        return self.hold.amount

    @property
    def releases(self) -> bool:
        """True when a normal exit releases rather than commits."""
        return self.cancelled or self.commit_amount == 0

    def use(self, amount: int) -> None:
        """Commit ``amount`` (0 up to the hold) instead of the whole hold on success."""
        if not 0 <= amount <= self.hold.amount:
            raise ValueError(f"can commit 0..{self.hold.amount} tokens of this hold, not {amount}")
        self.commit_amount = amount

    def cancel(self) -> None:
        """Release the whole hold when the block ends, even without an exception."""
        self.cancelled = True


def release_failed(active: ActiveHold, error: TokenbankError) -> str:
    """The note added to a block's exception when releasing its hold failed too."""
    return (
        f"releasing tokenbank hold {active.id} failed ({error}); "
        "it is released when it expires"
    )
