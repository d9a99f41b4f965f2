"""The ledger's HTTP shapes, read straight from its records (``from_attributes``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tokenbank.ledger.models import MAX_DESCRIPTION, MAX_TOKENS


class TokenBalance(BaseModel):
    # Read from a ledger.models.Balance (a class docstring would enter the OpenAPI schema).
    model_config = ConfigDict(from_attributes=True)

    user_id: int
    balance: int
    reserved: int
    available: int
    created_at: datetime
    updated_at: datetime


class TransactionOut(BaseModel):
    # The public fields of a ledger.models.Entry.
    model_config = ConfigDict(from_attributes=True)

    id: int
    transaction_type: str
    amount: int
    balance_after: int
    description: str
    stripe_payment_intent_id: str | None
    created_at: datetime


class TransactionPage(BaseModel):
    # Read from a ledger.service.Page.
    model_config = ConfigDict(from_attributes=True)

    items: list[TransactionOut]
    next_before: int | None


class LotOut(BaseModel):
    # The public fields of a ledger.models.Lot.
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: Literal["purchase", "allotment", "grant", "adjustment", "reinstatement"]
    amount: int
    remaining: int
    priority: int
    expires_at: datetime | None
    created_at: datetime


class LotList(BaseModel):
    items: list[LotOut]

    @classmethod
    def of(cls, lots: Iterable[object]) -> LotList:
        return cls(items=[LotOut.model_validate(lot) for lot in lots])


class AdminTokensRequest(BaseModel):
    # Strict: "25" or true is refused (422), never read as 25 or 1 tokens.
    amount: Annotated[
        StrictInt,
        Field(ge=-MAX_TOKENS, le=MAX_TOKENS, description="Positive grants, negative corrects"),
    ]
    reason: Annotated[str, Field(min_length=3, max_length=MAX_DESCRIPTION)]


class AdminTokensResponse(BaseModel):
    transaction: TransactionOut
    balance: TokenBalance
