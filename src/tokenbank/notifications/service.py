"""Notifications: recorded in the caller's unit of work (never committing), each with its
email to send once (:mod:`tokenbank.notifications.flows` sends it after the commit).

Low-balance alerts fire once per crossing: a threshold that fired stays in
``fired_thresholds`` until the balance is seen at or above it again (re-armed), so a
balance that stays low alerts once, and one that recovers and falls again alerts again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.mail.templates import Mail, alert
from tokenbank.notifications import repository as repo
from tokenbank.notifications.models import EmailState, Notification, NotificationKind
from tokenbank.outbound import service as outbound
from tokenbank.outbound.models import EventType
from tokenbank.types import record_of, utcnow

MAX_THRESHOLDS = 3


@dataclass(frozen=True)
class NotificationView:
    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True)
class AlertSettings:
    low_balance_thresholds: list[int]
    email_alerts: bool
    fired_thresholds: list[int]


def payment_page(origin: str | None, **query: str) -> str:
    """The payment page's address (absolute when the app's origin is configured)."""
    base = f"{(origin or '').rstrip('/')}/payment"
    if not query:
        return base
    from urllib.parse import urlencode

    return f"{base}?{urlencode(query)}"


def render(row: Notification, *, username: str, locale: str, origin: str | None) -> Mail:
    data = dict(row.data or {})
    # ``action_url``: a link made for this alert; ``page``: one of the app's pages.
    page = f"{(origin or '').rstrip('/')}{data['page']}" if data.get("page") else None
    link = str(data.get("action_url") or page or payment_page(origin))
    return alert(locale, row.kind, username=username, link=link, data=data)


#: The operator's webhook event each alert also is (same transaction, so sent iff the
#: alert is recorded); alerts without one concern the person only.
OPERATOR_EVENTS: dict[NotificationKind, EventType] = {
    NotificationKind.BALANCE_LOW: EventType.BALANCE_LOW,
    NotificationKind.TOPUP_SUCCEEDED: EventType.TOPUP_SUCCEEDED,
    NotificationKind.TOPUP_FAILED: EventType.TOPUP_FAILED,
    NotificationKind.TOPUP_PAUSED: EventType.TOPUP_FAILED,
    NotificationKind.TOPUP_DISABLED: EventType.TOPUP_FAILED,
    NotificationKind.SUBSCRIPTION_RENEWED: EventType.SUBSCRIPTION_RENEWED,
}


async def notify(
    session: AsyncSession, user_id: int, kind: NotificationKind, data: dict[str, Any]
) -> int:
    """Record a notification (and its email, unless the person turned email alerts off),
    and the operator's webhook event it corresponds to, if any (``OPERATOR_EVENTS``)."""
    prefs = await repo.settings_row(session, user_id)
    email = EmailState.PENDING if prefs is None or prefs.email_alerts else EmailState.SKIPPED
    found = await repo.insert(
        session, user_id=user_id, kind=kind, data=data, email_state=email, now=utcnow()
    )
    event = OPERATOR_EVENTS.get(kind)
    if event is not None:
        await outbound.emit(session, event, {"kind": str(kind), **data}, user_id=user_id)
    return found


async def list_for(
    session: AsyncSession, user_id: int, *, limit: int, before: int | None, origin: str | None
) -> tuple[list[NotificationView], int, int | None]:
    rows = await repo.page(session, user_id, limit=limit + 1, before=before)
    who = await repo.person(session, user_id)
    username, locale = (who[1], who[2]) if who else ("", "en")
    items = []
    for row in rows[:limit]:
        mail = render(row, username=username, locale=locale, origin=origin)
        items.append(
            record_of(
                NotificationView, row, title=mail.subject, body=mail.text, data=dict(row.data or {})
            )
        )
    next_before = items[-1].id if len(rows) > limit and items else None
    return items, await repo.unread(session, user_id), next_before


async def mark_read(session: AsyncSession, user_id: int, ids: list[int] | None) -> int:
    await repo.mark_read(session, user_id, ids, utcnow())
    return await repo.unread(session, user_id)


async def alert_settings(session: AsyncSession, user_id: int) -> AlertSettings:
    row = await repo.settings_row(session, user_id)
    if row is None:
        return AlertSettings([], True, [])
    return AlertSettings(
        list(row.low_balance_thresholds), row.email_alerts, list(row.fired_thresholds)
    )


async def set_alert_settings(
    session: AsyncSession, user_id: int, *, thresholds: list[int], email_alerts: bool
) -> AlertSettings:
    now = utcnow()
    row = await repo.settings_row_or_new(session, user_id, now)
    chosen = sorted(set(thresholds), reverse=True)[:MAX_THRESHOLDS]
    row.low_balance_thresholds = chosen
    # A threshold that is no longer watched is forgotten; the rest keep their state.
    row.fired_thresholds = [t for t in row.fired_thresholds if t in chosen]
    row.email_alerts = email_alerts
    row.updated_at = now
    await session.flush()
    return AlertSettings(list(chosen), email_alerts, list(row.fired_thresholds))


async def watch_balance(
    session: AsyncSession, user_id: int, *, available: int, highest_seen: int
) -> list[int]:
    """Re-arm the thresholds the balance reached again (``highest_seen`` since the last
    look), then fire those ``available`` is below; returns the thresholds fired now."""
    row = await repo.settings_row(session, user_id, lock=True)
    if row is None or not row.low_balance_thresholds:
        return []
    fired = {t for t in row.fired_thresholds if highest_seen < t}
    newly = [t for t in row.low_balance_thresholds if available < t and t not in fired]
    fired.update(newly)
    if fired != set(row.fired_thresholds):
        row.fired_thresholds = sorted(fired, reverse=True)
        row.updated_at = utcnow()
    for threshold in newly:
        await notify(
            session,
            user_id,
            NotificationKind.BALANCE_LOW,
            {"threshold": threshold, "available": available},
        )
    await session.flush()
    return newly


#: How far ahead a lot's expiry is announced.
EXPIRY_NOTICE = timedelta(days=7)


async def alert_expiring_lots(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Tell each person, once per lot, that tokens of theirs expire within
    ``EXPIRY_NOTICE`` (in the app and by email); returns how many lots were announced."""
    found = await repo.lots_expiring_unalerted(
        session, now=now, until=now + EXPIRY_NOTICE, limit=limit
    )
    told = 0
    for lot_id, user_id, remaining, expires_at in found:
        if not await repo.claim_lot_alert(session, lot_id, user_id, now):
            continue  # another process announced it
        notification_id = await notify(
            session,
            user_id,
            NotificationKind.LOTS_EXPIRING,
            {"lot_id": lot_id, "tokens": remaining, "expires_on": expires_at.date().isoformat(),
             "page": "/history"},
        )
        await repo.set_lot_alert_notification(session, lot_id, notification_id)
        told += 1
    return told
