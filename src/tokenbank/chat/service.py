"""Chats, and AI replies that cost tokens.

Charging a reply (two transactions, the provider call between them):

1. ``start_reply`` — one transaction: the chat must be the caller's, the recent history
   is read, and the reply's cost is held (``ledger.reserve``). Not enough tokens is a
   402 here, before the provider is ever called. The unit runs as a task the caller's
   cancellation cannot cut; a caller cancelled meanwhile has the hold released at once.
2. The provider is called outside any transaction, bounded by its own deadline.
3. ``settle_reply`` — one transaction (``save_reply``): ``ledger.commit`` writes the
   deduction, and the user message, the AI reply and the chat's activity time are saved
   with it. It runs as a task of its own that outlives the request: the caller's
   cancellation (a client that left) interrupts only the caller's wait, never the settle.
4. A failure or cancellation before there is text to charge releases the hold, the
   same way (``release_hold``).

When a reply is charged (the billing rule, also in ``docs/architecture.md``):
- ``/generate``: once the provider has answered. A reply computed after the client
  left is charged and saved all the same, and the same Idempotency-Key returns it.
- ``/generate/stream``: once any reply text (a delta that is not only whitespace) has
  been handed to the server for sending. "Handed" is all the server can know: the
  delta was yielded to the response, which passes it to the ASGI server's ``send``
  with no wait in between; whether the bytes reached the client is not knowable. A
  reply cut after that point — the client left, or the provider failed or timed out
  mid-reply — is saved as far as it was sent, marked ``interrupted``, and charged in
  full (the reply's price is per reply). No text sent (the provider failed first, the
  client left first) charges nothing.

Guarantees:
- A reply is charged if and only if it is saved: the deduction and the messages commit
  together, so a provider error, timeout, empty reply, expired hold or crash before the
  settle charges nothing and leaves no half-saved exchange.
- Providers never return canned or fallback text (see ``providers.base``), so every
  charged reply is a real answer; a model that costs 0 never touches the ledger.
- One idempotency key charges at most once per chat: a completed key returns its
  stored reply; a key still running (or still settling) is refused (409); a key whose
  attempt failed may be tried again. Each attempt holds under its own reservation key
  ``gen:<chat>:<attempt>:<key>`` and attempts are numbered, so two requests with one
  key always collide on the same reservation row and only one of them runs.
- Settles and releases in flight are kept referenced (``_in_flight``), and the app's
  shutdown waits for them (``wait_for_settles``).

Like every service here, nothing is committed on the caller's behalf — except the
charged reply, whose two transactions are the point of the flow and are opened here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy.exc import SQLAlchemyError
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
    ProviderError,
    ProviderSettings,
    Role,
    build_prompt,
    build_provider,
    history_budget,
)
from tokenbank.chat.schemas import DEFAULT_TITLE
from tokenbank.config import Settings
from tokenbank.db import Database, Unit
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import ReservationNotFound, ReservationNotPending
from tokenbank.ledger.models import ReservationStatus
from tokenbank.observability import (
    AI_FAILURES,
    REPLIES_CHARGED,
    REPLIES_INTERRUPTED,
    TOKENS_SPENT,
)
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

#: Most messages read as history; the character budget usually stops far earlier.
HISTORY_MESSAGES = 100
#: Failed attempts allowed under one idempotency key before a new key is required.
MAX_ATTEMPTS = 20
MAX_CHATS_LISTED = 200

T = TypeVar("T")

# Settles and releases in flight: a task must stay referenced until done, even when its
# caller was cancelled (that is the point of running it as a task).
_in_flight: set[asyncio.Task[Any]] = set()


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


async def generate(
    db: Database,
    provider: AIProvider,
    settings: Settings,
    *,
    user_id: int,
    chat_id: int,
    content: str,
    idempotency_key: str | None,
) -> Generation:
    """Answer ``content`` in the chat and charge for the reply (see the module docstring)."""
    started = await start_reply(
        db,
        provider,
        settings,
        user_id=user_id,
        chat_id=chat_id,
        content=content,
        idempotency_key=idempotency_key,
    )
    if isinstance(started, Generation):
        return started
    try:
        reply = await provider.complete(started.turns)
    except ProviderError as exc:
        failure = _failed(started, exc)
        await release_hold(db, started)
        raise failure from exc
    except BaseException:
        # Cancelled (or broken) before there was a reply: nothing to charge.
        await release_hold(db, started)
        raise
    # There is a reply: it is charged and saved whatever happens to this request now,
    # and a retry with the same Idempotency-Key returns it.
    outcome = await settle_reply(db, started, reply)
    if isinstance(outcome, AIUnavailable):
        raise outcome
    return outcome


async def stream_reply(
    db: Database, provider: AIProvider, pending: PendingReply
) -> AsyncGenerator[ReplyEvent, None]:
    """The reply as it is produced, then the charged result (or the failure).

    The first event is yielded before anything else happens: a caller that takes it
    before handing the iterator on has the hold inside this generator's ``finally``,
    so closing or abandoning the iterator at any later point ends the hold: settled
    (charged and saved as ``interrupted``) if reply text was already handed on, else
    released. A delta counts as handed on once it is yielded (see the module doc).
    """
    parts: list[str] = []
    text_sent = False
    ending: asyncio.Task[Any] | None = None  # the settle or the release, once begun
    try:
        yield ReplyStarted()
        failure: ProviderError | None = None
        chunks = provider.stream(pending.turns)
        try:
            async for chunk in chunks:
                parts.append(chunk)
                text_sent = text_sent or bool(chunk.strip())
                yield ReplyDelta(chunk)
        except ProviderError as exc:
            failure = exc
        finally:
            await _close(chunks)  # a client that left must not keep the upstream open
        if failure is not None and not text_sent:
            error = _failed(pending, failure)
            ending = _outliving(_release(db, pending.reservation_id))
            await asyncio.shield(ending)  # before telling the client, so it sees the balance
            yield ReplyFailed(error)
            return
        if failure is not None:
            log.warning(
                "AI reply in chat %s cut by the provider after text was sent "
                "(charged as interrupted): %s",
                pending.chat_id,
                failure,
            )
        ending = _outliving(_settle(db, pending, "".join(parts), interrupted=failure is not None))
        outcome = await asyncio.shield(ending)
        yield ReplyFailed(outcome) if isinstance(outcome, AIUnavailable) else ReplyDone(outcome)
    finally:
        if ending is None:
            # Closed or cancelled mid-reply (the client left). Not awaited: the task is
            # kept referenced, and this may run inside a cancelled scope or a close.
            if text_sent:
                _outliving(_settle(db, pending, "".join(parts), interrupted=True))
            else:
                _outliving(_release(db, pending.reservation_id))


async def replay_events(generation: Generation) -> AsyncGenerator[ReplyEvent, None]:
    """A stored reply, told as a stream."""
    yield ReplyStarted()
    yield ReplyDelta(generation.ai_message.content)
    yield ReplyDone(generation)


async def _close(chunks: AsyncIterator[str]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def _failed(pending: PendingReply, exc: ProviderError) -> AIUnavailable:
    log.warning("AI reply failed in chat %s (nothing charged): %s", pending.chat_id, exc)
    AI_FAILURES.labels(exc.reason).inc()
    return AIUnavailable.from_provider(exc)


async def start_reply(
    db: Database,
    provider: AIProvider,
    settings: Settings,
    *,
    user_id: int,
    chat_id: int,
    content: str,
    idempotency_key: str | None,
) -> PendingReply | Generation:
    """Transaction 1: ownership, history and the hold. A stored reply returns as is."""
    text = check_content(content, settings.max_message_chars)
    key = idempotency_key or uuid.uuid4().hex
    cost = settings.reply_cost_for(provider.model)
    asked_at = utcnow()

    budget = history_budget(settings.ai_history_budget_chars, text, settings.ai_system_prompt)

    async def work(unit: Unit) -> tuple[list[ChatTurn], int | None] | Generation:
        history = await repo.history(unit, user_id, chat_id, HISTORY_MESSAGES, budget)
        if history is None:
            raise ChatNotFound()
        if idempotency_key is not None:
            stored = await _stored(unit, user_id, chat_id, key, text)
            if stored is not None:
                return stored
        if cost == 0:
            return history, None
        held = await _hold(unit, user_id, chat_id, key, text, cost, settings)
        return held if isinstance(held, Generation) else (history, held)

    started = await _hold_outliving_caller(db, work)
    if isinstance(started, Generation):
        return started
    history, reservation_id = started
    turns = build_prompt(
        history,
        text,
        budget_chars=settings.ai_history_budget_chars,
        system_prompt=settings.ai_system_prompt or None,
    )
    return PendingReply(
        user_id=user_id,
        chat_id=chat_id,
        content=text,
        key=key,
        cost=cost,
        model=provider.model,
        turns=turns,
        asked_at=asked_at,
        reservation_id=reservation_id,
    )


_Started = tuple[list[ChatTurn], int | None] | Generation


async def _hold_outliving_caller(
    db: Database, work: Callable[[Unit], Awaitable[_Started]]
) -> _Started:
    """Run the hold's unit of work as a task the caller's cancellation cannot cut.

    A caller cancelled meanwhile leaves the unit to finish on its own, and any hold it
    took is released at once: no unit of work is ever cut mid-statement, and no hold is
    left for the sweeper because its owner was cancelled before learning its id.
    """
    task = _outliving(db.run(work), quiet=True)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(functools.partial(_release_unowned, db))
        raise


def _release_unowned(db: Database, task: asyncio.Task[_Started]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    started = task.result()
    if not isinstance(started, Generation) and started[1] is not None:
        _outliving(_release(db, started[1]))


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
            stored = await _stored(unit, user_id, chat_id, key, text)
            if stored is None:  # pragma: no cover - commit and messages are one transaction
                raise RuntimeError(f"hold {held.id} committed without its messages")
            return stored
    raise GenerationRetriesExhausted()


async def _stored(unit: Unit, user_id: int, chat_id: int, key: str, text: str) -> Generation | None:
    """The reply already saved under ``key``, if any (refused if the question differs)."""
    saved = {row["role"]: _message(row) for row in await repo.find_generation(unit, chat_id, key)}
    asked, answer = saved.get("user"), saved.get("assistant")
    if asked is None or answer is None:
        return None
    if asked.content != text:
        raise IdempotencyKeyReused()
    current = await ledger.balance(unit, user_id)
    return Generation(asked, answer, answer.tokens_charged, current.available, replayed=True)


async def save_reply(
    db: Database, pending: PendingReply, reply: str, *, interrupted: bool = False
) -> Generation:
    """Transaction 2: the deduction and both messages, all or nothing."""
    if not reply.strip():  # whitespace is no answer, whatever the provider thought
        raise AIUnavailable("empty_reply", "blank")
    now = utcnow()

    async def work(unit: Unit) -> Generation:
        asked = await repo.insert_message(
            unit, _message_values(pending, "user", pending.content, pending.asked_at)
        )
        if asked is None:
            # Only free replies run unheld, so only they can race to save one key.
            stored = await _stored(
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

    try:
        generation = await db.run(work)
    except (ReservationNotPending, ReservationNotFound) as exc:
        # The hold outlived its expiry (the sweeper took it back), or is gone (a database
        # crash lost its transaction, which did not wait for the disk): the reply is not
        # charged, so it is not shown either.
        AI_FAILURES.labels("hold_expired").inc()
        raise AIUnavailable("hold_expired", exc.code) from exc
    if generation.replayed:
        return generation
    REPLIES_CHARGED.inc()
    if interrupted:
        REPLIES_INTERRUPTED.inc()
    if pending.cost:
        TOKENS_SPENT.inc(pending.cost)
    return generation


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


def _outliving(work: Coroutine[Any, Any, T], *, quiet: bool = False) -> asyncio.Task[T]:
    """``work`` as a task that outlives its caller: kept referenced until done, and
    waited for at shutdown (``wait_for_settles``). Its failure is logged unless
    ``quiet`` (for work whose errors are the caller's answer, such as a refused hold)."""
    task = asyncio.create_task(work)
    _in_flight.add(task)
    task.add_done_callback(_forget_quietly if quiet else _forget)
    return task


def _forget(task: asyncio.Task[Any]) -> None:
    _in_flight.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("settling a reply failed; its hold expires by the sweeper", exc_info=exc)


def _forget_quietly(task: asyncio.Task[Any]) -> None:
    _in_flight.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: the caller, if still there, has it


async def wait_for_settles(timeout_s: float) -> int:
    """Wait up to ``timeout_s`` for this loop's settles and releases in flight (app
    shutdown); returns how many are still running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s

    def mine() -> set[asyncio.Task[Any]]:
        return {t for t in _in_flight if t.get_loop() is loop and not t.done()}

    while (running := mine()) and (left := deadline - loop.time()) > 0:
        await asyncio.wait(running, timeout=left)
    return len(mine())


async def settle_reply(
    db: Database, pending: PendingReply, reply: str, *, interrupted: bool = False
) -> Generation | AIUnavailable:
    """Charge and save ``reply``; if it cannot be (blank, hold expired), release the hold.

    Runs as its own task: cancelling the caller interrupts only the wait, never the settle.
    """
    return await asyncio.shield(_outliving(_settle(db, pending, reply, interrupted=interrupted)))


async def _settle(
    db: Database, pending: PendingReply, reply: str, *, interrupted: bool
) -> Generation | AIUnavailable:
    try:
        result = await save_reply(db, pending, reply, interrupted=interrupted)
    except AIUnavailable as failure:
        await _release(db, pending.reservation_id)
        return failure
    except BaseException:
        # Not saved (or not known to be): give the hold back if the database lets us.
        await _release(db, pending.reservation_id)
        raise
    if result.replayed:  # another request saved this key first; the hold went unused
        await _release(db, pending.reservation_id)
    return result


async def release_hold(db: Database, pending: PendingReply) -> None:
    """Give the hold back, even if the calling task is being cancelled.

    The release runs as its own task: cancelling the caller (a client that went away)
    interrupts only the wait, never the release.
    """
    await asyncio.shield(_outliving(_release(db, pending.reservation_id)))


async def _release(db: Database, reservation_id: int | None) -> None:
    if reservation_id is None:
        return

    async def work(unit: Unit) -> bool:
        return await ledger.release(unit, reservation_id)

    try:
        await db.run(work)
    except ReservationNotPending:
        # Committed after all: the cancellation arrived after the reply's COMMIT, so the
        # reply is saved and charged, consistently.
        log.info("hold %s was committed before it could be released", reservation_id)
    except ReservationNotFound:
        # Lost with a database crash (its transaction did not wait for the disk): there
        # is nothing to give back.
        log.warning("hold %s is gone; nothing to release", reservation_id)
    except (SQLAlchemyError, OSError):
        log.exception("could not release hold %s; the sweeper will expire it", reservation_id)
