"""Sending the notifications' emails after their transaction committed (each at most once).

An email is claimed by a conditional update (``pending`` → ``sending``) committed before
the SMTP call, so two processes never send the same one; then it is marked ``sent`` (or
``failed``: the sender logs why). Only a confirmed address is written to (an unconfirmed
one may be someone else's). A process that dies between the two leaves it
``sending``: never sent twice, possibly not at all.
"""

from __future__ import annotations

import logging

from tokenbank.background import BackgroundLoop
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


class Mailer(BackgroundLoop):
    """Sends due emails in one app process: woken when this process records one, and
    every ``interval_s`` for the others'."""

    def __init__(self, db: Database, settings: Settings, interval_s: float = 5.0) -> None:
        super().__init__(
            "notification-mailer",
            interval_s,
            failure="notification mailer: a round failed",
            logger=log,
        )
        self.db = db
        self.settings = settings

    async def round(self) -> int:
        return await send_due(self.db, self.settings)


async def alert_expiring_lots(db: Database, *, batch: int = 200) -> int:
    """Announce lots that expire within a week, once each (a background job)."""
    told = 0
    while True:
        async with db.transaction() as session:
            n = await service.alert_expiring_lots(session, now=utcnow(), limit=batch)
        told += n
        if n < batch:
            return told
