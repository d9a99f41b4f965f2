"""Chats, and the units of work of an AI reply that costs tokens.

Everything here takes a session or a :data:`~tokenbank.db.Unit` and never commits; the
reply's two transactions and the provider call between them are the flow in
:mod:`tokenbank.chat.flows`, which says when a reply is charged:

- :func:`hold_reply` is transaction 1's work: the chat must be the caller's, the recent
  history is read, and the reply's cost is held (``ledger.reserve``) under the key's next
  attempt. Not enough tokens is a 402 here, before the provider is ever called.
- :func:`record_reply` is transaction 2's work: ``ledger.settle`` writes the deduction,
  and the user message, the AI reply and the chat's activity time are saved with it.

Guarantees (kept together with the flow):
- A reply is charged if and only if it is saved: the deduction and the messages are one
  unit (:func:`record_reply`), so nothing half-saved can commit.
- One idempotency key charges at most once per chat: a completed key returns its
  stored reply; a key still running (or still settling) is refused (409); a key whose
  attempt failed may be tried again. Each attempt holds under its own reservation key
  ``gen:<chat>:<attempt>:<key>`` and attempts are numbered, so two requests with one
  key always collide on the same reservation row and only one of them runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.chat import repository as repo
from tokenbank.chat.errors import (
    AIUnavailable,
    ChatNotFound,
    GenerationInProgress,
    GenerationRetriesExhausted,
    HoldShorterThanAITimeout,
    IdempotencyKeyReused,
    MessageEmpty,
    MessageTooLong,
)
from tokenbank.chat.providers import (
    AIProvider,
    ChatTurn,
    ProviderSettings,
    Role,
    build_provider,
)
from tokenbank.chat.schemas import DEFAULT_TITLE
from tokenbank.config import Settings
from tokenbank.db import Unit
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.models import ReservationStatus
from tokenbank.types import utcnow

#: Most messages read as history; the character budget usually stops far earlier.
HISTORY_MESSAGES = 100
#: Failed attempts allowed under one idempotency key before a new key is required.
MAX_ATTEMPTS = 20
MAX_CHATS_LISTED = 200


# --- data -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatInfo:
    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    last_message_preview: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: Role
    content: str
    created_at: datetime
    tokens_charged: int
    model: str | None
    interrupted: bool = False
    refunded: bool = False


@dataclass(frozen=True)
class Generation:
    """A question and its reply, as saved."""

    user_message: StoredMessage
    ai_message: StoredMessage
    tokens_charged: int
    #: Tokens available after the charge.
    balance: int
    #: True when an idempotency key returned the reply stored by an earlier request.
    replayed: bool = False


@dataclass(frozen=True)
class PendingReply:
    """A generation cleared to call the provider: its cost is held (unless free)."""

    user_id: int
    chat_id: int
    content: str
    key: str
    cost: int
    model: str
    turns: Sequence[ChatTurn]
    asked_at: datetime
    reservation_id: int | None


@dataclass(frozen=True)
class ReplyDelta:
    text: str


@dataclass(frozen=True)
class ReplyDone:
    generation: Generation


@dataclass(frozen=True)
class ReplyFailed:
    error: AIUnavailable


@dataclass(frozen=True)
class ReplyStarted:
    """First event of every stream, yielded before the provider is called."""


ReplyEvent = ReplyStarted | ReplyDelta | ReplyDone | ReplyFailed


@dataclass(frozen=True)
class ReplyConfig:
    reply_cost_tokens: int
    model: str
    provider: str
    offline: bool
    max_message_chars: int


def _message(row: Mapping[str, Any]) -> StoredMessage:
    return StoredMessage(
        id=int(row["id"]),
        role=cast(Role, row["role"]),
        content=str(row["content"]),
        created_at=row["created_at"],
        tokens_charged=int(row["tokens_charged"]),
        model=row["model"],
        interrupted=bool(row["interrupted"]),
        refunded=bool(row.get("refunded", False)),
    )


# --- the provider ------------------------------------------------------------------


def provider_settings(settings: Settings) -> ProviderSettings:
    return ProviderSettings(
        provider=settings.ai_provider,
        gemini_api_key=settings.gemini_api_key,
        gemini_model=settings.gemini_model,
        gemini_base_url=settings.gemini_base_url,
        openai_api_key=settings.openai_api_key,
        openai_base_url=settings.openai_base_url,
        openai_model=settings.openai_model,
        timeout_s=settings.ai_timeout_s,
    )


def start_provider(settings: Settings) -> AIProvider:
    """The process's one provider (its HTTP client is reused by every request).

    Refuses settings where a hold could expire while the provider may still answer:
    such a reply could be neither charged nor, honestly, shown for free.
    """
    if settings.reservation_ttl_s <= settings.ai_timeout_s:
        raise HoldShorterThanAITimeout(
            f"RESERVATION_TTL_S ({settings.reservation_ttl_s}) must exceed "
            f"AI_TIMEOUT_S ({settings.ai_timeout_s})"
        )
    return build_provider(provider_settings(settings))


def reply_config(settings: Settings, provider: AIProvider) -> ReplyConfig:
    return ReplyConfig(
        reply_cost_tokens=settings.reply_cost_for(provider.model),
        model=provider.model,
        provider=provider.name,
        offline=provider.is_offline,
        max_message_chars=settings.max_message_chars,
    )


# --- chats -------------------------------------------------------------------------


async def create_chat(session: AsyncSession, user_id: int, title: str | None) -> ChatInfo:
    row = await repo.insert_chat(session, user_id, title or DEFAULT_TITLE, utcnow())
    return ChatInfo(**row._asdict())


async def list_chats(
    session: AsyncSession, user_id: int, limit: int = MAX_CHATS_LISTED
) -> list[ChatInfo]:
    return [ChatInfo(**row._asdict()) for row in await repo.list_chats(session, user_id, limit)]


async def list_messages(session: AsyncSession, user_id: int, chat_id: int) -> list[StoredMessage]:
    rows = await repo.chat_messages(session, user_id, chat_id)
    if rows is None:
        raise ChatNotFound()
    return [_message(row) for row in rows]


# --- replies -----------------------------------------------------------------------


def check_content(content: str, max_chars: int) -> str:
    text = content.strip()
    if not text:
        raise MessageEmpty(max_chars=max_chars)
    if len(text) > max_chars:
        raise MessageTooLong(max_chars=max_chars, length=len(text))
    return text


@dataclass(frozen=True)
class Held:
    """Transaction 1's result when there is a reply to compute: the history to send and
    the hold on the reply's cost (None for a free model)."""

    history: list[ChatTurn]
    reservation_id: int | None


async def hold_reply(
    unit: Unit,
    *,
    user_id: int,
    chat_id: int,
    key: str,
    text: str,
    cost: int,
    history_budget_chars: int,
    replay: bool,
    settings: Settings,
) -> Held | Generation:
    """Transaction 1's work: ownership, history and the hold. With ``replay`` (the caller
    sent an Idempotency-Key) a reply already stored under the key returns as is."""
    history = await repo.history(unit, user_id, chat_id, HISTORY_MESSAGES, history_budget_chars)
    if history is None:
        raise ChatNotFound()
    if replay:
        stored = await stored_reply(unit, user_id, chat_id, key, text)
        if stored is not None:
            return stored
    if cost == 0:
        return Held(history, None)
    hold = await _hold(unit, user_id, chat_id, key, text, cost, settings)
    return hold if isinstance(hold, Generation) else Held(history, hold)


async def _hold(
    unit: Unit,
    user_id: int,
    chat_id: int,
    key: str,
    text: str,
    cost: int,
    settings: Settings,
) -> int | Generation:
    """Hold the cost under the key's next attempt; the reservation id, or the stored reply.

    Attempts are tried in order: a released or expired one failed and charged nothing,
    so the next number is tried; a pending one is running now; a committed one means
    the reply was saved (a request with the same key finished a moment ago).
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        held = await ledger.reserve(
            unit,
            user_id,
            cost,
            idempotency_key=keys.generation(chat_id, attempt, key),
            ttl_s=settings.reservation_ttl_s,
            description=f"AI reply in chat {chat_id}",
            # The hold's transaction writes nothing else, so it need not wait for the
            # disk: a crash can only lose the hold (then nothing is charged), and
            # save_reply's synchronous commit flushes it first (see ``ledger.reserve``).
            durable=False,
        )
        if not held.replayed:
            return held.id
        if held.status == ReservationStatus.PENDING:
            raise GenerationInProgress()
        if held.status == ReservationStatus.COMMITTED:
            stored = await stored_reply(unit, user_id, chat_id, key, text)
            if stored is None:  # pragma: no cover - commit and messages are one transaction
                raise RuntimeError(f"hold {held.id} committed without its messages")
            return stored
    raise GenerationRetriesExhausted()


async def stored_reply(
    unit: Unit, user_id: int, chat_id: int, key: str, text: str
) -> Generation | None:
    """The reply already saved under ``key``, if any (refused if the question differs)."""
    saved = {row["role"]: _message(row) for row in await repo.find_generation(unit, chat_id, key)}
    asked, answer = saved.get("user"), saved.get("assistant")
    if asked is None or answer is None:
        return None
    if asked.content != text:
        raise IdempotencyKeyReused()
    current = await ledger.balance(unit, user_id)
    return Generation(asked, answer, answer.tokens_charged, current.available, replayed=True)


async def record_reply(
    unit: Unit, pending: PendingReply, reply: str, now: datetime, *, interrupted: bool = False
) -> Generation:
    """Transaction 2's work: the deduction and both messages, all or nothing. A hold no
    longer pending raises the ledger's error and nothing is saved."""
    asked = await repo.insert_message(
        unit, _message_values(pending, "user", pending.content, pending.asked_at)
    )
    if asked is None:
        # Only free replies run unheld, so only they can race to save one key.
        stored = await stored_reply(
            unit, pending.user_id, pending.chat_id, pending.key, pending.content
        )
        if stored is None:  # pragma: no cover - both messages commit together
            raise GenerationInProgress()
        return stored
    available: int | None = None
    if pending.reservation_id is not None:
        settled = await ledger.settle(
            unit, pending.reservation_id, f"AI reply in chat {pending.chat_id}"
        )
        available = settled.available
    answer = await repo.insert_message(
        unit,
        {
            **_message_values(pending, "assistant", reply, now, interrupted),
            "tokens_charged": pending.cost,
            "model": pending.model,
            "reply_to_id": asked["id"],
        },
    )
    if answer is None:  # pragma: no cover - the user message above was new
        raise RuntimeError("reply stored without its question")
    await repo.touch_chat(unit, pending.chat_id, now)
    if available is None:  # a free reply: nothing settled, so read what is left
        available = (await ledger.balance(unit, pending.user_id)).available
    return Generation(_message(asked), _message(answer), pending.cost, available)


def _message_values(
    pending: PendingReply, role: Role, content: str, created_at: datetime, interrupted: bool = False
) -> dict[str, Any]:
    return {
        "chat_id": pending.chat_id,
        "role": role,
        "content": content,
        "tokens_charged": 0,
        "model": None,
        "reply_to_id": None,
        "idempotency_key": pending.key,
        "interrupted": interrupted,
        "created_at": created_at,
    }
