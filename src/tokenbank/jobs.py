"""Periodic background work inside each app process (sweeper, purges, reconciliation).

A job takes the :class:`~tokenbank.db.Database` and owns its units of work: each round
opens short transactions and calls service functions that take the session. Every job is
safe to run in many processes at once: each one's SQL resolves rows with conditional
updates (and ``SKIP LOCKED`` on PostgreSQL), so running it twice is harmless.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tokenbank.auth import maintenance as auth_maintenance
from tokenbank.background import BackgroundLoop
from tokenbank.balance_watch import Thresholds
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.ledger import service as ledger
from tokenbank.notifications import service as notifications
from tokenbank.notifications.flows import Mailer
from tokenbank.payments import autotopup
from tokenbank.payments import flows as payments
from tokenbank.payments.stripe_client import StripeGateway
from tokenbank.ratelimit import service as ratelimit
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

JobFn = Callable[[Database], Awaitable[object]]


async def sweep_once(db: Database) -> int:
    """Release expired reservations and drop old rate-limit windows; returns holds released."""
    released = 0
    while True:
        async with db.transaction() as session:
            n = await ledger.expire_reservations(session, limit=500)
        released += n
        if n < 500:
            break
    async with db.transaction() as session:
        await ratelimit.purge_old(session)
    if released:
        log.info("sweeper released %d expired reservation(s)", released)
    return released


async def expire_lots_once(db: Database, *, batch: int = 200) -> int:
    """Write off expired token lots: one ``expiry`` entry per lot, exactly once (see
    :func:`tokenbank.ledger.service.expire_lots`); returns how many were written."""
    written = 0
    while True:
        async with db.transaction() as session:
            n = await ledger.expire_lots(session, limit=batch)
        written += n
        if n < batch:
            break
    if written:
        log.info("lot expiry wrote %d expiry entr%s", written, "y" if written == 1 else "ies")
    return written


async def purge_auth(db: Database) -> None:
    """Forget ended sessions, spent email links and idle sign-in counters."""
    async with db.transaction() as session:
        await auth_maintenance.purge(session, utcnow())


@dataclass(frozen=True)
class BalanceLook:
    """What the balance watch does for a person whose charge crossed a threshold (see
    :mod:`tokenbank.balance_watch`): low-balance alerts, then auto top-up; it answers the
    thresholds as they now stand, for the watch's next cheap check."""

    db: Database
    gateway: StripeGateway
    settings: Settings
    mailer: Mailer

    async def __call__(self, user_id: int, available: int, highest_seen: int) -> Thresholds:
        # The balance as it stands decides, not the figures the spends reported: those
        # arrive after their commits in no fixed order, and a late one (a balance from
        # before the latest spends) would re-arm an alert that no credit re-armed.
        async with self.db.transaction() as session:
            now = (await ledger.balance(session, user_id)).balance  # settled: see balance_watch
            fired = await notifications.watch_balance(
                session, user_id, available=now, highest_seen=now
            )
        if fired:
            self.mailer.notify()
        if await payments.run_auto_topup(self.db, self.gateway, self.settings, user_id):
            self.mailer.notify()  # its outcome may be known already
        async with self.db.transaction() as session:
            alerts = await notifications.alert_settings(session, user_id)
            topup = await autotopup.active_threshold(session, user_id)
        return Thresholds(
            topup=topup,
            alerts=tuple(alerts.low_balance_thresholds),
            fired=frozenset(alerts.fired_thresholds),
        )


@dataclass
class Scheduler:
    """Each periodic job in a :class:`~tokenbank.background.BackgroundLoop` of its own:
    run at once, then every ``interval_s`` after the last round ended."""

    db: Database
    _loops: list[BackgroundLoop] = field(default_factory=list)

    def every(self, interval_s: float, name: str, job: JobFn) -> None:
        if interval_s <= 0:
            return
        loop = BackgroundLoop(
            name,
            interval_s,
            functools.partial(job, self.db),
            failure=f"background job {name} failed",  # retried next interval, never fatal
            logger=log,
        )
        loop.start()
        self._loops.append(loop)

    async def stop(self) -> None:
        await asyncio.gather(*(loop.stop() for loop in self._loops))
        self._loops.clear()
