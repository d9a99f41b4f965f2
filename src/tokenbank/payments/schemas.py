from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tokenbank.payments.models import AckStatus


class TierOut(BaseModel):
    tokens: int
    price: int = Field(description="Price in minor units (cents).")
    currency: str
    description: str


class TestCardOut(BaseModel):
    number: str
    brand: str
    description: str


class PaymentConfigOut(BaseModel):
    publishable_key: str | None
    mode: Literal["simulated", "test", "live"]
    stripe_js_url: str
    test_cards: list[TestCardOut]
    configured: bool = Field(description="False when no Stripe key is set: nothing can be bought.")


class CreatePaymentIntentRequest(BaseModel):
    tier: str = Field(min_length=1, max_length=64)
    payment_method_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_]+$",
        description="One of the caller's saved cards: the server confirms the payment "
        "with it now (one click); `status` says how it went.",
    )
    save_card: bool | None = Field(
        default=None,
        description="True: save the paying card for one-click buys and auto top-up.",
    )


class CreatePaymentIntentResponse(BaseModel):
    client_secret: str
    payment_intent_id: str
    amount: int
    currency: str
    tokens: int
    publishable_key: str | None
    tier: str
    status: str = Field(
        description="Stripe's status of the intent: with a saved card, 'succeeded', "
        "'requires_action' (finish it in the page with client_secret), 'processing' or "
        "'requires_payment_method' (declined)."
    )


#: Stripe object ids are letters, digits and underscores; anything else (a NUL byte, which
#: PostgreSQL text cannot hold) is refused as malformed instead of reaching the database.
STRIPE_ID_PATTERN = r"^[A-Za-z0-9_]+$"


class ConfirmPaymentRequest(BaseModel):
    payment_intent_id: str = Field(min_length=1, max_length=255, pattern=STRIPE_ID_PATTERN)


class ConfirmPaymentResponse(BaseModel):
    status: str
    tokens_added: int = Field(description="Tokens credited for this payment so far (0 if none).")
    balance: int
    available: int
    payment_intent_id: str
    tokens: int
    credited: bool
    reversed_tokens: int


class PaymentOut(BaseModel):
    id: int
    payment_intent_id: str | None
    status: str
    tier: str
    tokens: int
    amount: int
    currency: str
    tokens_credited: int
    reversed_tokens: int
    amount_refunded: int
    dispute_status: str | None
    last_error_code: str | None
    created_at: datetime
    updated_at: datetime


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_before: int | None


class WebhookAck(BaseModel):
    received: bool = True
    event_id: str
    status: AckStatus = Field(
        description=(
            "received: recorded, to be applied by the webhook worker; duplicate: this event "
            "id was recorded before; ignored: nothing in it for us; unprocessable: it can never "
            "be applied (recorded as such, not retried). 'handled' is no longer sent."
        )
    )


class SavedPaymentMethodOut(BaseModel):
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool


class SavedPaymentMethods(BaseModel):
    items: list[SavedPaymentMethodOut]


class AutoTopupThisMonth(BaseModel):
    count: int
    amount: int = Field(description="Cents.")


class AutoTopupOut(BaseModel):
    enabled: bool
    threshold: int
    tier: str
    monthly_max_count: int
    monthly_max_amount: int = Field(description="Cents.")
    payment_method_id: str | None
    state: Literal["off", "active", "paused"]
    paused_reason: str | None
    consecutive_failures: int
    this_month: AutoTopupThisMonth
    action_url: str | None = Field(
        description="The payment page's link to finish the top-up that paused it."
    )


class AutoTopupIn(BaseModel):
    enabled: bool
    threshold: int = Field(ge=0, le=10**12)
    tier: str = Field(min_length=1, max_length=64)
    monthly_max_count: int = Field(ge=0, le=1000)
    monthly_max_amount: int = Field(ge=0, le=10**10, description="Cents.")
    payment_method_id: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_]+$"
    )
