"""The HTTP edge of notifications: the person's list, reading it, and alert settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tokenbank import balance_watch
from tokenbank.deps import SessionDep, SettingsDep, UserIdDep
from tokenbank.errors import error_responses
from tokenbank.notifications import service
from tokenbank.notifications.schemas import (
    MarkRead,
    NotificationOut,
    NotificationPage,
    NotificationSettingsIO,
    Unread,
)

router = APIRouter(
    prefix="/api/notifications",
    tags=["notifications"],
    responses=error_responses(400, 401, 422),
)

@router.get("", operation_id="list_notifications")
async def list_notifications(
    user_id: UserIdDep,
    session: SessionDep,
    settings: SettingsDep,
    limit_: Annotated[int, Query(alias="limit", ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> NotificationPage:
    items, unread, next_before = await service.list_for(
        session, user_id, limit=limit_, before=before, origin=settings.app_origin
    )
    return NotificationPage(
        items=[NotificationOut.model_validate(n, from_attributes=True) for n in items],
        unread=unread,
        next_before=next_before,
    )


@router.post("/read", operation_id="mark_notifications_read")
async def mark_read(body: MarkRead, user_id: UserIdDep, session: SessionDep) -> Unread:
    return Unread(unread=await service.mark_read(session, user_id, body.ids))


@router.get("/settings", operation_id="get_notification_settings")
async def get_settings(user_id: UserIdDep, session: SessionDep) -> NotificationSettingsIO:
    found = await service.alert_settings(session, user_id)
    return NotificationSettingsIO(
        low_balance_thresholds=found.low_balance_thresholds, email_alerts=found.email_alerts
    )


@router.put("/settings", operation_id="put_notification_settings")
async def put_settings(
    body: NotificationSettingsIO, user_id: UserIdDep, session: SessionDep
) -> NotificationSettingsIO:
    saved = await service.set_alert_settings(
        session,
        user_id,
        thresholds=body.low_balance_thresholds,
        email_alerts=body.email_alerts,
    )
    balance_watch.forget(user_id)
    return NotificationSettingsIO(
        low_balance_thresholds=saved.low_balance_thresholds, email_alerts=saved.email_alerts
    )
