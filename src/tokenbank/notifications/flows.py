"""Sending the notifications' emails after their transaction committed (each at most once).

An email is claimed by a conditional update (``pending`` → ``sending``) committed before
the SMTP call, so two processes never send the same one; then it is marked ``sent`` (or
``failed``: the sender logs why). Only a confirmed address is written to (an unconfirmed
one may be someone else's). A process that dies between the two leaves it
``sending``: never sent twice, possibly not at all.
"""

from __future__ import annotations

import asyncio
import logging

from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.mail import sender
from tokenbank.notifications import repository as repo
from tokenbank.notifications import service
from tokenbank.notifications.models import EmailState
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

BATCH = 50


async def send_due(db: Database, settings: Settings) -> int:
    """Send every notification email still due; returns how many were sent."""
    sent = 0
    while True:
        async with db.transaction() as session:
            ids = await repo.due_emails(session, BATCH)
        if not ids:
            return sent
        for notification_id in ids:
            sent += await _send_one(db, settings, notification_id)
        if len(ids) < BATCH:
            return sent


async def _send_one(db: Database, settings: Settings, notification_id: int) -> int:
    async with db.transaction() as session:
        if not await repo.move_email(
            session, notification_id, from_state=EmailState.PENDING, to_state=EmailState.SENDING
        ):
            return 0  # another process has it
        row = await repo.notification(session, notification_id)
        assert row is not None
        who = await repo.person(session, row.user_id)
        if who is None or not who[3]:  # alerts go to confirmed addresses only
            await repo.move_email(
                session,
                notification_id,
                from_state=EmailState.SENDING,
                to_state=EmailState.SKIPPED,
            )
            return 0
        email, username, locale, _ = who
        mail = service.render(row, username=username, locale=locale, origin=settings.app_origin)
    ok = await sender.send(settings, email, mail)
    async with db.transaction() as session:
        await repo.move_email(
            session,
            notification_id,
            from_state=EmailState.SENDING,
            to_state=EmailState.SENT if ok else EmailState.FAILED,
            now=utcnow(),
        )
    return 1 if ok else 0


class Mailer:
    """Sends due emails in one app process: woken when this process records one, and
    every ``interval_s`` for the others'."""

    def __init__(self, db: Database, settings: Settings, interval_s: float = 5.0) -> None:
        self.db = db
        self.settings = settings
        self.interval_s = interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notification-mailer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await send_due(self.db, self.settings)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification mailer: a round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass


async def alert_expiring_lots(db: Database, *, batch: int = 200) -> int:
    """Announce lots that expire within a week, once each (a background job)."""
    told = 0
    while True:
        async with db.transaction() as session:
            n = await service.alert_expiring_lots(session, now=utcnow(), limit=batch)
        told += n
        if n < batch:
            return told
