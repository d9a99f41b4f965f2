"""An AI reply that costs tokens: two transactions with the provider call between them.

Each function here takes the :class:`~tokenbank.db.Database` and owns its transactions
(it calls the AI provider, which must never be called inside one); the work inside each
transaction is in :mod:`tokenbank.chat.service`.

1. ``start_reply`` — one transaction (``service.hold_reply``): the chat must be the
   caller's, the recent history is read, and the reply's cost is held. Not enough tokens
   is a 402 here, before the provider is ever called. The unit runs as a task the
   caller's cancellation cannot cut; a caller cancelled meanwhile has the hold released
   at once.
2. The provider is called outside any transaction, bounded by its own deadline.
3. ``settle_reply`` — one transaction (``save_reply``, ``service.record_reply``): the
   deduction and both messages. It runs as a task of its own that outlives the request:
   the caller's cancellation (a client that left) interrupts only the caller's wait,
   never the settle.
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
- One idempotency key charges at most once per chat (see :mod:`tokenbank.chat.service`).
- Settles and releases in flight are kept referenced (``_in_flight``), and the app's
  shutdown waits for them (``wait_for_settles``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from tokenbank.chat import service
from tokenbank.chat.errors import AIUnavailable
from tokenbank.chat.models import FinishReason
from tokenbank.chat.providers import (
    AIProvider,
    ProviderError,
    ReplyReport,
    build_prompt,
    history_budget,
)
from tokenbank.chat.service import (
    Generation,
    Held,
    PendingReply,
    ReplyDelta,
    ReplyDone,
    ReplyEvent,
    ReplyFailed,
    ReplyStarted,
)
from tokenbank.config import Settings
from tokenbank.db import Database, Unit
from tokenbank.ledger import service as ledger
from tokenbank.ledger.errors import ReservationNotFound, ReservationNotPending
from tokenbank.observability import (
    AI_FAILURES,
    REPLIES_CHARGED,
    REPLIES_INTERRUPTED,
    TOKENS_SPENT,
)
from tokenbank.pricing import flows as pricing
from tokenbank.types import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

# Settles and releases in flight: a task must stay referenced until done, even when its
# caller was cancelled (that is the point of running it as a task).
_in_flight: set[asyncio.Task[Any]] = set()


async def generate(
    db: Database,
    provider: AIProvider,
    settings: Settings,
    *,
    user_id: int,
    chat_id: int,
    content: str,
    idempotency_key: str | None,
    model: str | None = None,
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
        model=model,
    )
    if isinstance(started, Generation):
        return started
    report = ReplyReport()
    try:
        reply = await provider.complete(
            started.turns, model=started.model, max_tokens=started.max_tokens, report=report
        )
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
    outcome = await settle_reply(
        db,
        started,
        reply,
        finish_reason=_finish(report),
        charge=service.charge_of(started, reply, report),
    )
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
    report = ReplyReport()
    try:
        yield ReplyStarted()
        failure: ProviderError | None = None
        chunks = provider.stream(
            pending.turns, model=pending.model, max_tokens=pending.max_tokens, report=report
        )
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
        reply = "".join(parts)
        if failure is None:
            finish = _finish(report)
        elif report.finish_reason == FinishReason.CONTENT_FILTER:
            finish = FinishReason.CONTENT_FILTER
        else:  # failed mid-reply: no usage came, so the delivered text's estimate
            finish, report = FinishReason.ERROR, ReplyReport()
        ending = _outliving(
            _settle(
                db,
                pending,
                reply,
                interrupted=failure is not None,
                finish_reason=finish,
                charge=service.charge_of(pending, reply, report),
            )
        )
        outcome = await asyncio.shield(ending)
        yield ReplyFailed(outcome) if isinstance(outcome, AIUnavailable) else ReplyDone(outcome)
    finally:
        if ending is None:
            # Closed or cancelled mid-reply (the client left). Not awaited: the task is
            # kept referenced, and this may run inside a cancelled scope or a close.
            if text_sent:
                # The client left: the provider's usage never came (the stream was closed),
                # so a usage price charges the estimate of what was delivered.
                reply = "".join(parts)
                _outliving(
                    _settle(
                        db,
                        pending,
                        reply,
                        interrupted=True,
                        finish_reason=FinishReason.CUT,
                        charge=service.charge_of(pending, reply, None),
                    )
                )
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


def _finish(report: ReplyReport) -> str:
    """A finished reply's recorded end: ``length`` when the output limit cut it."""
    if report.finish_reason == FinishReason.LENGTH:
        return FinishReason.LENGTH
    return FinishReason.STOP


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
    model: str | None = None,
) -> PendingReply | Generation:
    """Transaction 1: ownership, history, the price and the hold. A stored reply returns
    as is. The price book in force now prices the reply, whatever changes before it ends."""
    text = service.check_content(content, settings.max_message_chars)
    key = idempotency_key or uuid.uuid4().hex
    book = await pricing.current(db, settings, provider.model)
    if model is not None:
        service.check_model(book, model)
    asked_at = utcnow()
    budget = history_budget(settings.ai_history_budget_chars, text, settings.ai_system_prompt)

    async def work(unit: Unit) -> Held | Generation:
        return await service.hold_reply(
            unit,
            user_id=user_id,
            chat_id=chat_id,
            key=key,
            text=text,
            book=book,
            model=model,
            fallback_model=service.default_model(book, provider.model),
            history_budget_chars=budget,
            replay=idempotency_key is not None,
            settings=settings,
        )

    started = await _hold_outliving_caller(db, work)
    if isinstance(started, Generation):
        return started
    turns = build_prompt(
        started.history,
        text,
        budget_chars=settings.ai_history_budget_chars,
        system_prompt=settings.ai_system_prompt or None,
    )
    return PendingReply(
        user_id=user_id,
        chat_id=chat_id,
        content=text,
        key=key,
        cost=started.quote.max,
        model=started.model,
        turns=turns,
        asked_at=asked_at,
        reservation_id=started.reservation_id,
        price=started.price,
        price_version=book.version,
        max_tokens=started.quote.max_tokens,
        input_estimate=started.quote.input_tokens,
    )


async def _hold_outliving_caller(
    db: Database, work: Callable[[Unit], Awaitable[Held | Generation]]
) -> Held | Generation:
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


def _release_unowned(db: Database, task: asyncio.Task[Held | Generation]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    started = task.result()
    if isinstance(started, Held) and started.reservation_id is not None:
        _outliving(_release(db, started.reservation_id))


async def save_reply(
    db: Database,
    pending: PendingReply,
    reply: str,
    *,
    interrupted: bool = False,
    finish_reason: str = FinishReason.STOP,
    charge: int | None = None,
) -> Generation:
    """Transaction 2: the deduction and both messages, all or nothing."""
    if not reply.strip():  # whitespace is no answer, whatever the provider thought
        raise AIUnavailable("empty_reply", "blank")
    now = utcnow()

    async def work(unit: Unit) -> Generation:
        return await service.record_reply(
            unit,
            pending,
            reply,
            now,
            interrupted=interrupted,
            finish_reason=finish_reason,
            charge=charge,
        )

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
    if generation.tokens_charged:
        TOKENS_SPENT.inc(generation.tokens_charged)
    return generation


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
    db: Database,
    pending: PendingReply,
    reply: str,
    *,
    interrupted: bool = False,
    finish_reason: str = FinishReason.STOP,
    charge: int | None = None,
) -> Generation | AIUnavailable:
    """Charge and save ``reply``; if it cannot be (blank, hold expired), release the hold.

    Runs as its own task: cancelling the caller interrupts only the wait, never the settle.
    """
    return await asyncio.shield(
        _outliving(
            _settle(
                db,
                pending,
                reply,
                interrupted=interrupted,
                finish_reason=finish_reason,
                charge=charge,
            )
        )
    )


async def _settle(
    db: Database,
    pending: PendingReply,
    reply: str,
    *,
    interrupted: bool,
    finish_reason: str = FinishReason.STOP,
    charge: int | None = None,
) -> Generation | AIUnavailable:
    try:
        result = await save_reply(
            db,
            pending,
            reply,
            interrupted=interrupted,
            finish_reason=finish_reason,
            charge=charge,
        )
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
