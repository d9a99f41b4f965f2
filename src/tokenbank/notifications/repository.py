"""All SQL of notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.auth.models import User
from tokenbank.db import insert_or_skip, newest_first
from tokenbank.ledger.models import TokenLot
from tokenbank.notifications.models import (
    EmailState,
    LotExpiryAlert,
    Notification,
    NotificationSettings,
)


async def settings_row(
    session: AsyncSession, user_id: int, *, lock: bool = False
) -> NotificationSettings | None:
    stmt = select(NotificationSettings).where(NotificationSettings.user_id == user_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def settings_row_or_new(
    session: AsyncSession, user_id: int, now: datetime
) -> NotificationSettings:
    """The row, locked; created with the defaults first if the person has none."""
    row = await settings_row(session, user_id, lock=True)
    if row is not None:
        return row
    values = {
        "user_id": user_id,
        "low_balance_thresholds": [],
        "email_alerts": True,
        "fired_thresholds": [],
        "updated_at": now,
    }
    await session.execute(insert_or_skip(session, NotificationSettings).values(values))
    row = await settings_row(session, user_id, lock=True)
    assert row is not None
    return row


async def insert(
    session: AsyncSession,
    *,
    user_id: int,
    kind: str,
    data: dict[str, Any],
    email_state: EmailState,
    now: datetime,
) -> int:
    row = Notification(
        user_id=user_id, kind=kind, data=data, created_at=now, email_state=email_state
    )
    session.add(row)
    await session.flush()
    return row.id


async def page(
    session: AsyncSession, user_id: int, *, limit: int, before: int | None
) -> list[Notification]:
    stmt = select(Notification).where(Notification.user_id == user_id)
    stmt = newest_first(stmt, Notification.id, limit=limit, before=before)
    return list((await session.execute(stmt)).scalars())


async def unread(session: AsyncSession, user_id: int) -> int:
    stmt = select(func.count()).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return int(await session.scalar(stmt) or 0)


async def mark_read(
    session: AsyncSession, user_id: int, ids: list[int] | None, now: datetime
) -> None:
    stmt = (
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now)
    )
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(ids))
    await session.execute(stmt)


async def due_emails(session: AsyncSession, limit: int) -> list[int]:
    stmt = (
        select(Notification.id)
        .where(Notification.email_state == EmailState.PENDING)
        .order_by(Notification.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def release_stale_emails(session: AsyncSession, *, claimed_before: datetime) -> int:
    """Emails claimed (``sending``) before ``claimed_before`` go back to ``pending``: their
    process died between the claim and SMTP (or during it). A claim without a stamp
    predates the stamp and is as stale. Returns how many."""
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(Notification)
            .where(
                Notification.email_state == EmailState.SENDING,
                or_(Notification.emailed_at.is_(None), Notification.emailed_at < claimed_before),
            )
            .values(email_state=EmailState.PENDING, emailed_at=None)
        ),
    )
    return int(result.rowcount)


async def move_email(
    session: AsyncSession,
    notification_id: int,
    *,
    from_state: EmailState,
    to_state: EmailState,
    now: datetime | None = None,
) -> bool:
    """A conditional update: True only for the one caller that moved it. ``now`` stamps
    ``emailed_at``: the claim's time while ``sending``, the send's time once ``sent``."""
    values: dict[str, Any] = {"email_state": to_state}
    if now is not None:
        values["emailed_at"] = now
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.email_state == from_state)
            .values(**values)
        ),
    )
    return int(result.rowcount) == 1


async def notification(session: AsyncSession, notification_id: int) -> Notification | None:
    return await session.get(Notification, notification_id)


async def person(session: AsyncSession, user_id: int) -> tuple[str, str, str, bool] | None:
    """(email, username, locale, email verified) of a user."""
    row = (
        await session.execute(
            select(User.email, User.username, User.locale, User.email_verified_at).where(
                User.id == user_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return str(row[0]), str(row[1]), str(row[2] or "en"), row[3] is not None


# --- lots about to expire -----------------------------------------------------------------

_alerts = cast(Table, LotExpiryAlert.__table__)
_lots = cast(Table, TokenLot.__table__)


async def lots_expiring_unalerted(
    session: AsyncSession, *, now: datetime, until: datetime, limit: int
) -> list[tuple[int, int, int, datetime]]:
    """Live lots with tokens left that expire in ``(now, until]`` and were never alerted:
    ``(lot id, user id, remaining, expires_at)``, soonest first."""
    stmt = (
        select(_lots.c.id, _lots.c.user_id, _lots.c.remaining, _lots.c.expires_at)
        .where(
            _lots.c.expires_at > now,
            _lots.c.expires_at <= until,
            _lots.c.remaining > 0,
            ~select(_alerts.c.lot_id).where(_alerts.c.lot_id == _lots.c.id).exists(),
        )
        .order_by(_lots.c.expires_at, _lots.c.id)
        .limit(limit)
    )
    return [(int(i), int(u), int(r), e) for i, u, r, e in (await session.execute(stmt)).all()]


async def claim_lot_alert(session: AsyncSession, lot_id: int, user_id: int, now: datetime) -> bool:
    """Record that ``lot_id`` is being alerted; False when another process did it first."""
    stmt = (
        insert_or_skip(session, _alerts)
        .values(lot_id=lot_id, user_id=user_id, created_at=now)
        .returning(_alerts.c.lot_id)
    )
    return (await session.execute(stmt)).first() is not None


async def set_lot_alert_notification(
    session: AsyncSession, lot_id: int, notification_id: int
) -> None:
    await session.execute(
        update(_alerts).where(_alerts.c.lot_id == lot_id).values(notification_id=notification_id)
    )
