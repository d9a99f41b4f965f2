from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(
        description="balance_low, topup_succeeded, topup_failed, topup_paused, "
        "topup_disabled, lots_expiring, renewal_failed, subscription_renewed"
    )
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    unread: int
    next_before: int | None


class MarkRead(BaseModel):
    ids: list[int] | None = Field(
        default=None, max_length=500, description="Absent: every notification."
    )


class Unread(BaseModel):
    unread: int


class NotificationSettingsIO(BaseModel):
    low_balance_thresholds: list[Annotated[int, Field(ge=1, le=10**12)]] = Field(
        max_length=3, description="Alert when the balance falls below each (at most 3)."
    )
    email_alerts: bool = True
