from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tokenbank.chat.models import MAX_REFUND_NOTE, RefundReason

MAX_TITLE_CHARS = 200
DEFAULT_TITLE = "New chat"


def storable_text(value: str) -> str:
    """Refuse what PostgreSQL text cannot hold (NUL, unpaired surrogates): a 422, not a 500."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must not contain unpaired surrogate characters") from exc
    return value


class ChatCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = Field(default=None, examples=["Trip ideas"])

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = storable_text(value).strip()
        if len(value) > MAX_TITLE_CHARS:
            raise ValueError(f"title must be at most {MAX_TITLE_CHARS} characters")
        return value or None


class ChatOut(BaseModel):
    id: int
    title: str
    created_at: datetime
    updated_at: datetime


class ChatSummary(ChatOut):
    last_message_preview: str | None = None


class MessageOut(BaseModel):
    id: int
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    tokens_charged: int = 0
    model: str | None = None
    interrupted: bool = Field(
        default=False,
        description="A reply cut short (the client left, or the AI failed, after some of its "
        "text was sent): saved and charged as far as it got.",
    )
    refunded: bool = Field(default=False, description="Its owner had the reply's tokens back.")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # The length limit is a setting, checked by the service so the error can state it.
    content: str = Field(examples=["What is 12 * (3 + 4)?"])

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        return storable_text(value)


class GenerateResponse(BaseModel):
    user_message: MessageOut
    ai_message: MessageOut
    tokens_charged: int = Field(description="Tokens this reply cost (the first time).")
    balance: int = Field(description="Tokens available after the charge.")
    replayed: bool = Field(
        default=False, description="True when an Idempotency-Key returned a stored reply."
    )


class ChatConfig(BaseModel):
    reply_cost_tokens: int
    model: str
    provider: str
    offline: bool
    max_message_chars: int


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RefundReason
    note: str | None = Field(default=None, max_length=MAX_REFUND_NOTE)

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return storable_text(value).strip() or None


class RefundResponse(BaseModel):
    refunded: int = Field(description="Tokens given back: what the reply cost.")
    balance: int = Field(description="Tokens available after the refund.")
    transaction_id: int = Field(description="The ledger's `refund` entry.")
