"""Sending the notifications' emails after their transaction committed.

An email is claimed by a conditional update (``pending`` → ``sending``, stamped with the
claim's time in ``emailed_at``) committed before the SMTP call, so two live processes
never send the same one; then it is marked ``sent`` (or ``failed``: the sender logs why).
Only a confirmed address is written to (an unconfirmed one may be someone else's).

A stopping mailer ends whole (:func:`~tokenbank.background.uncut`): an email claimed and
not yet handed to SMTP goes back to ``pending`` (the next mailer sends it); one already
handed to SMTP is finished and marked first. A process killed between the claim and the
mark leaves the email ``sending``: once its claim is older than
``NOTIFICATION_MAIL_CLAIM_LEASE_S`` it goes back to ``pending`` and is sent again, so an
email is sent at least once after a crash, and may be sent twice if the crash came after
the SMTP server accepted it (SMTP has no idempotency key to deduplicate on).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from tokenbank.background import BackgroundLoop, uncut
from tokenbank.config import Settings
from tokenbank.db import Database
from tokenbank.mail import sender
from tokenbank.mail.templates import Mail
from tokenbank.notifications import repository as repo
from tokenbank.notifications import service
from tokenbank.notifications.models import EmailState
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

BATCH = 50


def claim_lease(settings: Settings) -> timedelta:
    """How long a claim lasts before another process may send the email again."""
    return timedelta(
        seconds=max(settings.notification_mail_claim_lease_s, settings.smtp_timeout_s + 30)
    )


async def send_due(db: Database, settings: Settings) -> int:
    """Send every notification email still due (and those whose claim ran out: their
    process died); returns how many were sent."""
    sent, first = 0, True
    while True:
        async with db.transaction() as session:
            if first:  # in the first batch's unit: no transaction more per round
                first = False
                stale = await repo.release_stale_emails(
                    session, claimed_before=utcnow() - claim_lease(settings)
                )
                if stale:
                    log.warning(
                        "notification mailer: %d email(s) whose claim ran out sent again", stale
                    )
            ids = await repo.due_emails(session, BATCH)
        if not ids:
            return sent
        for notification_id in ids:
            sent += await _send_one(db, settings, notification_id)
        if len(ids) < BATCH:
            return sent


@dataclass(frozen=True)
class _Claimed:
    notification_id: int
    to: str
    mail: Mail


async def _send_one(db: Database, settings: Settings, notification_id: int) -> int:
    # A stop while the claim commits hands the email back; once claimed, a stop before
    # SMTP hands it back too; once handed to SMTP, the send and its mark end whole.
    claimed = await uncut(_claim(db, settings, notification_id), lambda c: _give_back(db, c))
    if claimed is None:
        return 0
    try:
        await asyncio.sleep(0)  # a stop already asked for lands here, before SMTP
    except asyncio.CancelledError:
        await asyncio.shield(_give_back(db, claimed))
        raise
    return await uncut(_deliver(db, settings, claimed), _nothing)


async def _claim(db: Database, settings: Settings, notification_id: int) -> _Claimed | None:
    async with db.transaction() as session:
        if not await repo.move_email(
            session,
            notification_id,
            from_state=EmailState.PENDING,
            to_state=EmailState.SENDING,
            now=utcnow(),
        ):
            return None  # another process has it
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
            return None
        email, username, locale, _ = who
        mail = service.render(row, username=username, locale=locale, origin=settings.app_origin)
    return _Claimed(notification_id, email, mail)


async def _give_back(db: Database, claimed: _Claimed | None) -> None:
    """A stopping mailer hands an email it has not handed to SMTP back, due now."""
    if claimed is None:
        return
    async with db.transaction() as session:
        await repo.move_email(
            session,
            claimed.notification_id,
            from_state=EmailState.SENDING,
            to_state=EmailState.PENDING,
        )


async def _nothing(_: object) -> None:
    return None


async def _deliver(db: Database, settings: Settings, claimed: _Claimed) -> int:
    ok = await sender.send(settings, claimed.to, claimed.mail)
    async with db.transaction() as session:
        await repo.move_email(
            session,
            claimed.notification_id,
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
