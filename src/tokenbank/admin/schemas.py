from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from tokenbank.ledger.schemas import TokenBalance, TransactionOut
from tokenbank.payments.models import EventStatus, PaymentDisputeState, PaymentStatus


class AdminUserOut(BaseModel):
    id: int
    username: str
    email: str
    is_admin: bool
    created_at: datetime
    balance: int
    reserved: int
    available: int
    spent: int


class AdminPaymentOut(BaseModel):
    id: int
    user_id: int
    username: str
    tier: str
    tokens: int
    amount_cents: int
    currency: str
    stripe_payment_intent_id: str | None
    status: PaymentStatus
    tokens_credited: int
    reversed_tokens: int
    amount_refunded_cents: int
    dispute_status: PaymentDisputeState | None
    last_error_code: str | None
    stripe_mismatch: str | None = Field(
        description="Why Stripe's PaymentIntent disagrees with this purchase (e.g. its "
        "metadata was edited at Stripe). Blocks a credit; never blocks a reversal.",
    )
    created_at: datetime
    updated_at: datetime
    stripe_dashboard_url: str | None


class AdminUserDetail(BaseModel):
    user: AdminUserOut
    balance: TokenBalance
    transactions: list[TransactionOut]
    next_before: int | None
    payments: list[AdminPaymentOut]


class WebhookEventOut(BaseModel):
    id: str
    type: str
    status: EventStatus
    attempts: int
    stripe_payment_intent_id: str | None
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime | None = None


class DailyTotals(BaseModel):
    day: date
    tokens_sold: int
    tokens_used: int
    revenue_cents: int


class TopSpender(BaseModel):
    user_id: int
    username: str
    tokens_used: int


class AdminStats(BaseModel):
    days: int
    daily: list[DailyTotals]
    top_spenders: list[TopSpender]


class RefundsByReason(BaseModel):
    reason: str
    count: int
    tokens: int


class RefundsByModel(BaseModel):
    model: str | None = Field(description="The reply's model (null when not recorded)")
    count: int
    tokens: int


class RefundsOverviewOut(BaseModel):
    days: int
    by_reason: list[RefundsByReason]
    by_model: list[RefundsByModel]
