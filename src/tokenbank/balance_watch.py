"""After a charge commits: is the balance now below one of the person's thresholds?

Every spend is watched, whatever path made it (a chat reply, the service API's charges
and hold commits, the meter's): the ledger notes each spend on its unit of work
(:func:`tokenbank.db.note_spent`) and, once that unit commits, the database calls
:func:`charged` with the balance after it — a rolled-back spend tells nothing.

The balance watched is the settled one (what committed charges and credits left), not
the balance less the holds in flight: holds come and go, so a threshold compared with
them would fire while replies are running, re-arm when they end and fire again, with
no credit in between. The settled balance only rises with a credit, so each threshold
fires once per fall below it.
:func:`charged` is a dictionary look-up and a few comparisons against the person's thresholds
(auto top-up and low-balance alerts) as this process last read them, no I/O. When the
balance crossed one (or came back above one that fired, which re-arms it), or the
thresholds are not known here yet, the person is queued; one background task per process
(:class:`BalanceWatch`) then does the real work — reads the settings, records alerts,
starts a top-up — with the database deciding (row locks, a unique index), never this
cache. Thresholds cached here are forgotten when the person changes them in this process
and reread after ``ttl_s`` otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tokenbank.background import BackgroundLoop

log = logging.getLogger(__name__)

#: ``handler(user_id, available_now, highest_seen)`` -> the person's thresholds as they
#: now stand (what the next cheap check compares against).
Handler = Callable[[int, int, int], Awaitable["Thresholds"]]


@dataclass(frozen=True)
class Thresholds:
    #: The auto top-up threshold while auto top-up is active (None otherwise).
    topup: int | None
    #: Low-balance alert thresholds, and those that fired and are not re-armed yet.
    alerts: tuple[int, ...] = ()
    fired: frozenset[int] = frozenset()

    def wants_look(self, available: int) -> bool:
        if self.topup is not None and available < self.topup:
            return True
        for t in self.alerts:
            fired = t in self.fired
            if (available < t and not fired) or (available >= t and fired):
                return True
        return False


class BalanceWatch:
    def __init__(self, handler: Handler, ttl_s: float = 30.0) -> None:
        self.handler = handler
        self.ttl_s = ttl_s
        self._cache: dict[int, tuple[float, Thresholds]] = {}
        #: user -> (latest available seen, highest available seen) since queued.
        self._queued: dict[int, tuple[int, int]] = {}
        #: Drains the queue when :meth:`charged` queues someone (no polling: nothing is
        #: queued but by this process).
        self._loop = BackgroundLoop("balance-watch", None, self.drain)

    # --- the hot path ------------------------------------------------------------------

    def charged(self, user_id: int, available: int) -> None:
        queued = self._queued.get(user_id)
        if queued is not None:  # already waiting for the task: it sees this one too
            self._queued[user_id] = (available, max(queued[1], available))
            return
        cached = self._cache.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            if not cached[1].wants_look(available):
                return
        self._queued[user_id] = (available, available)
        self._loop.notify()

    def forget(self, user_id: int) -> None:
        """The person changed their thresholds (in this process)."""
        self._cache.pop(user_id, None)

    # --- the background task -----------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def drain(self) -> int:
        """Handle everyone queued; returns how many were handled."""
        done = 0
        while self._queued:
            user_id = next(iter(self._queued))
            available, highest = self._queued.pop(user_id)
            try:
                found = await self.handler(user_id, available, highest)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("balance watch: handling user %s failed", user_id)
                continue
            self._cache[user_id] = (time.monotonic(), found)
            done += 1
        return done


_installed: BalanceWatch | None = None


def install(watch: BalanceWatch | None) -> None:
    """The process's watch (the app's lifespan installs it; without one, charges are not
    watched)."""
    global _installed
    _installed = watch


def charged(user_id: int, available: int) -> None:
    """Called once a charge has committed, with the (settled) balance after it."""
    if _installed is not None:
        _installed.charged(user_id, available)


def forget(user_id: int) -> None:
    if _installed is not None:
        _installed.forget(user_id)
