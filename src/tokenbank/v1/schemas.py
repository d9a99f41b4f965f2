"""The service API's requests and answers (``/api/v1``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictInt, field_validator

from tokenbank.ledger.models import MAX_DESCRIPTION, MAX_TOKENS

#: The host's own user id: printable ASCII without ``/``, ``?``, ``#`` or spaces.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._~:@|+=-]{1,255}$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"

Tokens = Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS, description="Whole tokens")]
IdempotencyKey = Annotated[
    str,
    Field(
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Unique per customer and kind of write; a retry with the same key returns"
        " the first result, the same key for a different request is 409.",
        examples=["reply-7f3a9c"],
    ),
]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(_Strict):
    email: EmailStr | None = None
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value is not None else None


class CustomerOut(BaseModel):
    external_id: str
    email: str | None
    name: str | None
    created_at: datetime
    updated_at: datetime
    created: bool = Field(description="True when this request created the customer")


class BalanceOut(BaseModel):
    external_id: str
    balance: int
    reserved: int
    available: int


class CustomerSubscription(BaseModel):
    """A customer's monthly plan, as Stripe last said (no client secret: paying happens in
    the customer's own session)."""

    id: str
    plan: str
    status: str
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    scheduled_plan: str | None
    problem: Literal["payment_failed", "requires_action"] | None


class CustomerSubscriptionOut(BaseModel):
    external_id: str
    subscription: CustomerSubscription | None


class TransactionOut(BaseModel):
    id: int
    transaction_type: str
    amount: int
    balance_after: int
    description: str
    hold_id: int | None
    created_at: datetime


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_before: int | None


class HoldIn(_Strict):
    amount: Tokens
    idempotency_key: IdempotencyKey
    ttl_s: Annotated[
        StrictInt, Field(ge=1, le=24 * 3600, description="Seconds until the hold expires")
    ] = 600
    description: Description = ""


class HoldOut(BaseModel):
    id: int
    external_id: str
    amount: int
    status: str = Field(description="pending, committed, released or expired")
    description: str
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    replayed: bool = Field(description="True when the idempotency key returned an earlier hold")


class CommitIn(_Strict):
    amount: Tokens | None = Field(
        default=None, description="Charge less than the hold; the rest is released"
    )
    description: Description | None = None


class CommitOut(BaseModel):
    hold: HoldOut
    transaction: TransactionOut
    charged: int
    released: int = Field(description="Tokens of the hold given back by a smaller commit")
    available: int
    replayed: bool


class ReleaseOut(BaseModel):
    hold: HoldOut
    released: bool = Field(description="False when it was released or expired already")


class ChargeIn(_Strict):
    amount: Tokens
    idempotency_key: IdempotencyKey
    description: Description = ""


class GrantIn(_Strict):
    amount: Tokens
    idempotency_key: IdempotencyKey
    reason: Annotated[str, Field(min_length=1, max_length=MAX_DESCRIPTION)]


class PostedOut(BaseModel):
    transaction: TransactionOut
    balance: BalanceOut
    replayed: bool


class PurchaseIn(_Strict):
    tier: Annotated[str, Field(min_length=1, max_length=64)]
    idempotency_key: IdempotencyKey
    return_url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2000,
            description="Where the hosted payment page sends the customer back to; its "
            "origin must be in WIDGET_ALLOWED_ORIGINS",
        ),
    ]


class PurchaseOut(BaseModel):
    client_secret: str
    payment_intent_id: str
    hosted_url: str
    publishable_key: str | None
    tier: str
    tokens: int
    amount: int = Field(description="Price in minor units (cents)")
    currency: str


class TierOut(BaseModel):
    id: str
    tokens: int
    price: int = Field(description="Minor units (cents)")
    currency: str
    description: str


class WidgetPurchaseIn(_Strict):
    tier: Annotated[str, Field(min_length=1, max_length=64)]
    idempotency_key: IdempotencyKey


class WidgetPurchaseOut(BaseModel):
    client_secret: str
    payment_intent_id: str
    publishable_key: str | None
    stripe_js_url: str
    tier: str
    tokens: int
    amount: int
    currency: str


STRIPE_INTENT_PATTERN = r"^pi_[A-Za-z0-9_]{1,250}$"


class WidgetConfirmIn(_Strict):
    payment_intent_id: Annotated[str, Field(pattern=STRIPE_INTENT_PATTERN, max_length=255)]


class WidgetConfirmOut(BaseModel):
    payment_intent_id: str
    status: str
    credited: bool
    tokens_added: int
    balance: int
    available: int


class CheckoutOut(BaseModel):
    payment_intent_id: str
    client_secret: str
    publishable_key: str | None
    stripe_js_url: str
    tier: str
    tokens: int
    amount: int
    currency: str
    status: str
    return_url: str


class CheckoutConfirmOut(BaseModel):
    status: str
    credited: bool
    tokens_added: int
    return_url: str
