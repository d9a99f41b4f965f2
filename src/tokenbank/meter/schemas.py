"""The meter's requests and answers (``/api/meter/{feature}/...``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tokenbank.v1.schemas import IdempotencyKey

#: The most units one request can meter (the tokens are bounded by the ledger too).
MAX_QUANTITY = 1_000_000

Quantity = Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY, description="Units of the feature")]
ReservationId = Annotated[StrictInt, Field(ge=1, le=2**62)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MeterReserveIn(_Strict):
    idempotency_key: IdempotencyKey
    quantity: Quantity = 1
    ttl_s: Annotated[
        StrictInt | None,
        Field(ge=1, le=3600, description="Seconds until the hold expires (RESERVATION_TTL_S)"),
    ] = None


class MeterReserveOut(BaseModel):
    id: int = Field(description="The reservation's id, for commit and release")
    feature: str
    quantity: int
    unit_price: int = Field(description="Tokens per unit, fixed for this hold")
    amount: int = Field(description="Tokens held")
    status: str = Field(description="pending, committed, released or expired")
    expires_at: datetime
    replayed: bool = Field(description="True when the idempotency key returned an earlier hold")


class MeterCommitIn(_Strict):
    reservation_id: ReservationId
    quantity: Quantity | None = Field(
        default=None, description="Units used, at most the hold's; the rest is released"
    )


class MeterCommitOut(BaseModel):
    reservation_id: int
    transaction_id: int
    amount: int = Field(description="Tokens charged")
    released: int = Field(description="Tokens of the hold given back")
    balance: int = Field(description="Tokens available after the commit")
    replayed: bool


class MeterReleaseIn(_Strict):
    reservation_id: ReservationId


class MeterReleaseOut(BaseModel):
    reservation_id: int
    released: bool = Field(description="False when it was released or expired already")


class MeterChargeIn(_Strict):
    idempotency_key: IdempotencyKey
    quantity: Quantity = 1


class MeterChargeOut(BaseModel):
    transaction_id: int
    amount: int = Field(description="Tokens charged")
    balance: int = Field(description="Tokens available after the charge")
    replayed: bool
