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
from datetime import datetime, timedelta
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
    ReplyReport,
    Role,
    build_provider,
)
from tokenbank.chat.schemas import DEFAULT_TITLE
from tokenbank.config import Settings
from tokenbank.db import Unit
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import InsufficientTokens
from tokenbank.ledger.models import ReservationStatus
from tokenbank.pricing import book as pb
from tokenbank.pricing.errors import CostCapTooLow, UnknownModel
from tokenbank.types import utcnow

#: Most messages read as history; the character budget usually stops far earlier.
HISTORY_MESSAGES = 100
#: Failed attempts allowed under one idempotency key before a new key is required.
MAX_ATTEMPTS = 20
MAX_CHATS_LISTED = 200
#: The window of a person's "recent average" cost per reply.
RECENT = timedelta(days=30)


# --- data -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatInfo:
    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    model: str | None = None
    cost_cap: int | None = None
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
    finish_reason: str | None = None
    price_version: int | None = None


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

    @property
    def price_version(self) -> int | None:
        return self.ai_message.price_version


@dataclass(frozen=True)
class PendingReply:
    """A generation cleared to call the provider: its cost is held (unless free)."""

    user_id: int
    chat_id: int
    content: str
    key: str
    #: Tokens held (the most this reply can cost); 0 for a free model (nothing held).
    cost: int
    model: str
    turns: Sequence[ChatTurn]
    asked_at: datetime
    reservation_id: int | None
    #: The price the reply is charged at, and its book's version: the version in force
    #: when the hold was taken, whatever changes meanwhile.
    price: pb.Price = pb.PerReply(0)
    price_version: int | None = None
    #: The output limit sent to the provider (None: the provider's own).
    max_tokens: int | None = None
    #: The prompt's estimated input tokens (charged when the provider reports no usage).
    input_estimate: int = 0


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
        finish_reason=row["finish_reason"],
        price_version=row["price_version"],
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


async def get_chat(session: AsyncSession, user_id: int, chat_id: int) -> ChatInfo:
    row = await repo.get_chat(session, user_id, chat_id)
    if row is None:
        raise ChatNotFound()
    return ChatInfo(**row._asdict())


async def update_chat(
    session: AsyncSession,
    user_id: int,
    chat_id: int,
    changes: Mapping[str, Any],
    book: pb.Book,
) -> ChatInfo:
    """Change a chat's title, model (one the book prices, or None for the default) or cost
    cap (None: no cap). Only the keys in ``changes`` change."""
    values = dict(changes)
    if "title" in values:
        values["title"] = values["title"] or DEFAULT_TITLE
    if values.get("model") is not None:
        check_model(book, values["model"])
    if not values:
        return await get_chat(session, user_id, chat_id)
    row = await repo.update_chat(session, user_id, chat_id, values)
    if row is None:
        raise ChatNotFound()
    return ChatInfo(**row._asdict())


async def average_costs(session: AsyncSession, user_id: int, now: datetime) -> dict[str, float]:
    """The caller's average charge per reply over the last 30 days, per model."""
    return await repo.average_cost_by_model(session, user_id, now - RECENT)


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
    """Transaction 1's result when there is a reply to compute: the history to send, the
    price and quote it is held at, and the hold (None for a free reply)."""

    history: list[ChatTurn]
    reservation_id: int | None
    model: str
    price: pb.Price
    quote: pb.Quote


def default_model(book: pb.Book, provider_model: str) -> str:
    """The provider's configured model if the book prices it, else the book's first."""
    return provider_model if provider_model in book.models else next(iter(book.models))


def may_charge(book: pb.Book) -> bool:
    """Whether any reply priced by ``book`` can cost tokens (a free book holds nothing)."""
    return any(not isinstance(p, pb.PerReply) or p.tokens > 0 for p in book.models.values())


def check_model(book: pb.Book, model: str) -> str:
    """``model`` if the book prices it (422 ``unknown_model`` otherwise)."""
    if model not in book.models:
        raise UnknownModel(model, sorted(book.models))
    return model


def _choose(book: pb.Book, requested: str | None, chat_model: str | None, fallback: str) -> str:
    if requested is not None:
        return check_model(book, requested)
    # A chat's model dropped from the book since it was chosen falls back to the default.
    if chat_model is not None and chat_model in book.models:
        return chat_model
    return fallback


def price_reply(
    book: pb.Book,
    *,
    model: str,
    history: Sequence[ChatTurn],
    text: str,
    system_prompt: str,
    max_output_tokens: int,
    cap: int | None,
) -> tuple[pb.Price, pb.Quote]:
    """The price and quote of a reply to ``text`` after ``history`` on ``model``."""
    price = book.models[model]
    contents = [system_prompt, *(turn.content for turn in history), text]
    try:
        return price, pb.quote(price, contents, max_output_tokens=max_output_tokens, cap=cap)
    except pb.CapTooLow as exc:
        raise CostCapTooLow(exc.cap, exc.required) from exc


async def hold_reply(
    unit: Unit,
    *,
    user_id: int,
    chat_id: int,
    key: str,
    text: str,
    book: pb.Book,
    model: str | None,
    fallback_model: str,
    history_budget_chars: int,
    replay: bool,
    settings: Settings,
) -> Held | Generation:
    """Transaction 1's work: ownership, history, the price and the hold. With ``replay``
    (the caller sent an Idempotency-Key) a reply already stored under the key returns as
    is.

    The hold is the quote's ``max``. When that is more than is available but the quote's
    ``min`` is not (a usage price), the reply is held at what is available: the cap the
    provider's ``max_tokens`` is fitted to. Only when even the ``min`` is more than is
    available is it a 402 (``required`` is the ``min``).
    """
    found = await repo.history(
        unit,
        user_id,
        chat_id,
        HISTORY_MESSAGES,
        history_budget_chars,
        # The hold's account lock rides on this read (one round trip less per charged
        # reply), unless no price in the book can charge anything.
        hold_key=keys.generation(chat_id, 1, key),
        lock_account=may_charge(book),
    )
    if found is None:
        raise ChatNotFound()
    if replay:
        stored = await stored_reply(unit, user_id, chat_id, key, text)
        if stored is not None:
            return stored
    chosen = _choose(book, model, found.model, fallback_model)
    price, quote = price_reply(
        book,
        model=chosen,
        history=found.turns,
        text=text,
        system_prompt=settings.ai_system_prompt,
        max_output_tokens=settings.ai_max_output_tokens,
        cap=found.cost_cap,
    )
    if quote.max == 0:
        return Held(found.turns, None, chosen, price, quote)
    try:
        hold = await _hold(
            unit, user_id, chat_id, key, text, quote.max, settings, found.account_locked
        )
    except InsufficientTokens as refused:
        if quote.min > refused.balance or isinstance(price, pb.PerReply):
            _requires(refused, quote.min)
            raise
        _, quote = price_reply(
            book,
            model=chosen,
            history=found.turns,
            text=text,
            system_prompt=settings.ai_system_prompt,
            max_output_tokens=settings.ai_max_output_tokens,
            cap=refused.balance,
        )
        quote = pb.Quote(quote.min, quote.max, found.cost_cap, quote.max_tokens, quote.input_tokens)
        hold = await _hold(
            unit, user_id, chat_id, key, text, quote.max, settings, found.account_locked
        )
    if isinstance(hold, Generation):
        return hold
    return Held(found.turns, hold, chosen, price, quote)


def _requires(refused: InsufficientTokens, required: int) -> None:
    """The refusal states the least the reply could cost (the quote's ``min``), which a
    usage price could be held at, rather than the ``max`` that was asked for first."""
    if refused.required != required:
        refused.required = required
        refused.extra["required"] = required
        refused.detail = f"This needs {required} token(s); {max(refused.balance, 0)} available."
        refused.args = (refused.detail,)


async def quote_reply(
    unit: Unit,
    *,
    user_id: int,
    chat_id: int,
    text: str,
    book: pb.Book,
    model: str | None,
    fallback_model: str,
    history_budget_chars: int,
    settings: Settings,
) -> tuple[str, pb.Quote]:
    """What a reply to ``text`` would cost now (the same reads and sums as the hold)."""
    found = await repo.history(unit, user_id, chat_id, HISTORY_MESSAGES, history_budget_chars)
    if found is None:
        raise ChatNotFound()
    chosen = _choose(book, model, found.model, fallback_model)
    _, quote = price_reply(
        book,
        model=chosen,
        history=found.turns,
        text=text,
        system_prompt=settings.ai_system_prompt,
        max_output_tokens=settings.ai_max_output_tokens,
        cap=found.cost_cap,
    )
    return chosen, quote


def quote_first_reply(
    *,
    text: str,
    book: pb.Book,
    model: str | None,
    fallback_model: str,
    cap: int | None,
    settings: Settings,
) -> tuple[str, pb.Quote]:
    """What the reply to a new chat's first message would cost now: the same sums as
    :func:`quote_reply`, with no history yet (nothing to read: no chat exists)."""
    chosen = _choose(book, model, None, fallback_model)
    _, quote = price_reply(
        book,
        model=chosen,
        history=(),
        text=text,
        system_prompt=settings.ai_system_prompt,
        max_output_tokens=settings.ai_max_output_tokens,
        cap=cap,
    )
    return chosen, quote


async def _hold(
    unit: Unit,
    user_id: int,
    chat_id: int,
    key: str,
    text: str,
    cost: int,
    settings: Settings,
    account_locked: bool = False,
) -> int | Generation:
    """Hold the cost under the key's next attempt; the reservation id, or the stored reply.

    Attempts are tried in order: a released or expired one failed and charged nothing,
    so the next number is tried; a pending one is running now; a committed one means
    the reply was saved (a request with the same key finished a moment ago).
    ``account_locked``: the unit's history read locked the account (a lock lasts until
    the unit ends, so every attempt may skip the ledger's own lock statement).
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
            account_locked=account_locked,
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


def charge_of(pending: PendingReply, reply: str, report: ReplyReport | None) -> int:
    """What ``reply`` is charged: the hold for a per-reply price; by the provider's usage
    (else the estimate of prompt and delivered text) for a usage price; never above the
    hold, never below zero."""
    usage = None
    if report is not None and report.has_usage:
        assert report.input_tokens is not None and report.output_tokens is not None
        usage = pb.Usage(report.input_tokens, report.output_tokens, report.cached_tokens)
    return pb.charge_for(
        pending.price,
        pending.cost,
        usage,
        input_estimate=pending.input_estimate,
        delivered=reply,
    )


async def record_reply(
    unit: Unit,
    pending: PendingReply,
    reply: str,
    now: datetime,
    *,
    interrupted: bool = False,
    finish_reason: str | None = "stop",
    charge: int | None = None,
) -> Generation:
    """Transaction 2's work: the deduction (``charge``, default the whole hold; the rest of
    the hold is released in the same statement) and both messages, all or nothing. A hold
    no longer pending raises the ledger's error and nothing is saved."""
    charged = pending.cost if charge is None else charge
    if pending.reservation_id is not None and charged > 0 and repo.is_postgresql(unit):
        return await _record_charged_pg(
            unit, pending, reply, now, interrupted, finish_reason, charged
        )
    asked = await repo.insert_message(
        unit, _message_values(pending, "user", pending.content, pending.asked_at)
    )
    if asked is None:
        # Only free replies run unheld, so only they can race to save one key.
        return await _stored(unit, pending)
    available: int | None = None
    if pending.reservation_id is not None and charged > 0:
        settled = await ledger.settle(
            unit, pending.reservation_id, _description(pending), **_charging(pending, charged)
        )
        available = settled.available
    elif pending.reservation_id is not None:  # a usage price that came to nothing
        await ledger.release(unit, pending.reservation_id)
    answer = await repo.insert_message(
        unit,
        {
            **_message_values(pending, "assistant", reply, now, interrupted),
            "tokens_charged": charged,
            "model": pending.model,
            "reply_to_id": asked["id"],
            "finish_reason": finish_reason,
            "price_version": pending.price_version,
        },
    )
    if answer is None:  # pragma: no cover - the user message above was new
        raise RuntimeError("reply stored without its question")
    await repo.touch_chat(unit, pending.chat_id, now)
    if available is None:  # a free reply: nothing settled, so read what is left
        available = (await ledger.balance(unit, pending.user_id)).available
    return Generation(_message(asked), _message(answer), charged, available)


async def _record_charged_pg(
    unit: Unit,
    pending: PendingReply,
    reply: str,
    now: datetime,
    interrupted: bool,
    finish_reason: str | None,
    charged: int,
) -> Generation:
    """:func:`record_reply` of a charged reply on PostgreSQL: the question, the commit,
    the answer and the chat's touch in one statement (``repo.save_charged_reply_pg``)."""
    assert pending.reservation_id is not None
    saved: list[repo.SavedReply] = []

    async def statement(commit_args: tuple[Any, ...]) -> Mapping[str, Any] | None:
        found = await repo.save_charged_reply_pg(
            unit,
            commit_args,
            chat_id=pending.chat_id,
            content=pending.content,
            idempotency_key=pending.key,
            asked_at=pending.asked_at,
            reply=reply,
            tokens_charged=charged,
            model=pending.model,
            interrupted=interrupted,
            finish_reason=finish_reason,
            price_version=pending.price_version,
        )
        saved.append(found)
        return None if found.asked is None else found.row

    settled = await ledger.settle_riding(
        unit,
        pending.reservation_id,
        _description(pending),
        **_charging(pending, charged),
        statement=statement,
    )
    if settled is None:  # the question's key is stored: nothing was saved or committed
        return await _stored(unit, pending)
    asked, answer = saved[0].asked, saved[0].answer
    if asked is None or answer is None:  # pragma: no cover - the commit posted, so both are
        raise RuntimeError("reply stored without its question")
    return Generation(_message(asked), _message(answer), charged, settled.available)


async def _stored(unit: Unit, pending: PendingReply) -> Generation:
    """The reply another request saved under the pending reply's key."""
    stored = await stored_reply(
        unit, pending.user_id, pending.chat_id, pending.key, pending.content
    )
    if stored is None:  # pragma: no cover - both messages commit together
        raise GenerationInProgress()
    return stored


def _charging(pending: PendingReply, charged: int) -> dict[str, int | None]:
    """The ledger's commit terms: ``tokens`` only for a partial charge, and the hold's
    amount (known: this reply took the hold), so the check needs no read."""
    return {"tokens": None if charged == pending.cost else charged, "held": pending.cost}


def _description(pending: PendingReply) -> str:
    """The ledger entry names the model and the price version it was charged at."""
    version = "" if pending.price_version is None else f", price v{pending.price_version}"
    return f"AI reply in chat {pending.chat_id} ({pending.model}{version})"


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
        "finish_reason": None,
        "price_version": None,
        "created_at": created_at,
    }
