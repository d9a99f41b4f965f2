from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from tokenbank.outbound.models import DeliveryStatus


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=2048,
                              examples=["https://host.example.com/tokenbank/webhooks"])]
    enabled_events: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]],
        Field(
            min_length=1,
            max_length=50,
            description='Event types, or ["*"] for every event.',
            examples=[["purchase.succeeded", "purchase.refunded"]],
        ),
    ]
    description: Annotated[str | None, Field(max_length=200)] = None
    enabled: bool = True


class WebhookEndpointOut(BaseModel):
    id: int
    url: str
    enabled_events: list[str]
    description: str | None
    enabled: bool
    created_at: datetime
    secret_prefix: str = Field(description="The signing secret's first characters")
    previous_secret_expires_at: datetime | None = Field(
        default=None,
        description="Until when the secret replaced by the last roll still signs beside "
        "this one (a second `v1=` in the signature header); null when it does not.",
    )


class WebhookEndpointCreated(BaseModel):
    endpoint: WebhookEndpointOut
    secret: str = Field(description="The signing secret (whsec_...). Shown this once.")


class WebhookSecretRoll(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_hours: int = Field(
        default=24,
        ge=0,
        le=168,
        description="How long the current secret keeps signing beside the new one "
        "(0: it stops now; at most 7 days).",
    )


class WebhookSecretRolled(BaseModel):
    endpoint: WebhookEndpointOut
    secret: str = Field(description="The new signing secret (whsec_...). Shown this once.")
    previous_secret_expires_at: datetime = Field(
        description="Until when the secret it replaces still signs beside it."
    )


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointOut]
    event_types: list[str] = Field(description="Every event type an endpoint may name")


class WebhookAttemptOut(BaseModel):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None


class WebhookDeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: str = Field(description="The exact body sent (and signed)")
    log: list[WebhookAttemptOut]


class WebhookDeliveryList(BaseModel):
    items: list[WebhookDeliveryOut]
    next_before: int | None
