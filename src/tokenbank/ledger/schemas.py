from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from tokenbank.ledger.service import MAX_TOKENS


class TokenBalance(BaseModel):
    user_id: int
    balance: int
    reserved: int
    available: int
    created_at: datetime
    updated_at: datetime


class TransactionOut(BaseModel):
    id: int
    transaction_type: str
    amount: int
    balance_after: int
    description: str
    stripe_payment_intent_id: str | None
    created_at: datetime


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_before: int | None


class AdminTokensRequest(BaseModel):
    # Strict: "25" or true is refused (422), never read as 25 or 1 tokens.
    amount: Annotated[
        StrictInt,
        Field(ge=-MAX_TOKENS, le=MAX_TOKENS, description="Positive grants, negative corrects"),
    ]
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class AdminTokensResponse(BaseModel):
    transaction: TransactionOut
    balance: TokenBalance
