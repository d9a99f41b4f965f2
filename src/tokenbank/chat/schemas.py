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
        return clean_title(value)


def clean_title(value: str | None) -> str | None:
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
    model: str | None = Field(
        default=None, description="The model this chat's replies use; null: the default."
    )
    cost_cap: int | None = Field(
        default=None, description="The most tokens one reply may cost; null: no cap."
    )


class ChatUpdate(BaseModel):
    """Only the fields sent change; ``null`` resets ``model`` and ``cost_cap``."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    model: str | None = Field(default=None, max_length=100)
    cost_cap: int | None = Field(default=None, ge=1, le=1_000_000_000)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return clean_title(value)


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
    cost: int | None = Field(
        default=None, description="Tokens this reply was charged; null for the person's messages."
    )
    finish_reason: Literal["stop", "length", "content_filter", "error", "cut"] | None = Field(
        default=None,
        description="How a reply ended: `stop` (finished), `length` (its output limit), "
        "`content_filter` (withheld part way), `error` (the AI failed part way), `cut` (the "
        "client left); null for the person's messages.",
    )
    price_version: int | None = Field(
        default=None, description="The price book version the reply was charged at."
    )


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # The length limit is a setting, checked by the service so the error can state it.
    content: str = Field(examples=["What is 12 * (3 + 4)?"])
    model: str | None = Field(
        default=None,
        max_length=100,
        description="A model from `GET /api/models` (422 `unknown_model` otherwise); "
        "default: the chat's model, else the default model.",
    )

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        return storable_text(value)


class NewChatQuoteRequest(GenerateRequest):
    """A quote before the chat exists: the draft of its first message, and the model and
    cost cap the new chat will have."""

    cost_cap: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="The cost cap per reply the new chat will have (`null`: none).",
    )


class GenerateResponse(BaseModel):
    user_message: MessageOut
    ai_message: MessageOut
    tokens_charged: int = Field(description="Tokens this reply cost (the first time).")
    balance: int = Field(description="Tokens available after the charge.")
    replayed: bool = Field(
        default=False, description="True when an Idempotency-Key returned a stored reply."
    )
    price_version: int | None = Field(
        default=None, description="The price book version the reply was charged at."
    )


class QuoteOut(BaseModel):
    min: int = Field(description="The least the reply can cost (the prompt alone).")
    max: int = Field(description="The most it can cost: what is held when it is sent.")
    cap: int | None = Field(description="The chat's cost cap, if any.")
    model: str
    price_version: int


class PerReplyPriceOut(BaseModel):
    kind: Literal["per_reply"] = "per_reply"
    per_reply: int


class UsagePriceOut(BaseModel):
    kind: Literal["usage"] = "usage"
    per_1k_input: int
    per_1k_output: int
    per_1k_cached: int
    minimum: int


class ModelOut(BaseModel):
    id: str
    name: str
    price: PerReplyPriceOut | UsagePriceOut = Field(discriminator="kind")
    recent_average: float | None = Field(
        description="The caller's average charge per reply on this model (30 days)."
    )


class ModelsOut(BaseModel):
    default: str
    items: list[ModelOut]
    price_version: int


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
