"""Subscription request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

SubscriptionStatusOut = Literal[
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "paused",
]


class PlanOut(BaseModel):
    id: str
    name: str
    price_cents: int
    currency: str
    monthly_tokens: int
    interval: Literal["month"] = "month"
    allotment_expires_after_days: int


class PlanList(BaseModel):
    items: list[PlanOut]


class PlanRequest(BaseModel):
    plan: str = Field(min_length=1, max_length=64)


class SubscriptionOut(BaseModel):
    id: str
    plan: str
    status: SubscriptionStatusOut
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    scheduled_plan: str | None
    problem: Literal["payment_failed", "requires_action"] | None
    #: To finish a payment in the page (a first invoice, a failed renewal, 3D Secure).
    client_secret: str | None
    portal_available: bool


class SubscriptionEnvelope(BaseModel):
    subscription: SubscriptionOut | None


class CreateSubscriptionResponse(BaseModel):
    subscription_id: str
    client_secret: str | None
    status: SubscriptionStatusOut


class PortalOut(BaseModel):
    url: str


class AdvanceClockRequest(BaseModel):
    days: int = Field(ge=1, le=62)


class AdvanceClockResponse(BaseModel):
    frozen_time: datetime
