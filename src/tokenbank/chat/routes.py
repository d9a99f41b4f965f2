"""``/api/chats``: chats, their messages, and charged AI replies (JSON or streamed)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, status
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tokenbank.chat import flows, refunds, service
from tokenbank.chat.providers import history_budget
from tokenbank.chat.schemas import (
    ChatConfig,
    ChatCreate,
    ChatOut,
    ChatSummary,
    ChatUpdate,
    GenerateRequest,
    GenerateResponse,
    MessageOut,
    ModelOut,
    ModelsOut,
    NewChatQuoteRequest,
    PerReplyPriceOut,
    QuoteOut,
    RefundRequest,
    RefundResponse,
    UsagePriceOut,
)
from tokenbank.deps import (
    DatabaseDep,
    PriceBookDep,
    ProviderDep,
    SessionDep,
    SettingsDep,
    UserIdDep,
    limit,
)
from tokenbank.errors import error_responses
from tokenbank.pricing import book as pb
from tokenbank.types import utcnow

router = APIRouter(
    prefix="/api/chats",
    tags=["chats"],
    responses=error_responses(400, 401, 402, 404, 409, 422, 429, 502, 503),
)

MAX_IDEMPOTENCY_KEY = 200


ChatId = Annotated[int, Path(ge=1, le=2**62)]
MessageId = Annotated[int, Path(ge=1, le=2**62)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY,
        description="Retrying with the same key returns the first reply and charges once.",
    ),
]


# Documented so generated clients know the error codes each generate route can return.
GENERATE_ERRORS: dict[int | str, dict[str, Any]] = {
    402: {"description": "`insufficient_tokens`, with `balance` and `required`; nothing charged."},
    404: {"description": "`chat_not_found`: no such chat for this user."},
    409: {"description": "`generation_in_progress` (retry shortly) or `idempotency_key_reused`."},
    422: {"description": "`validation_error`: empty or too long (`max_chars`)."},
    502: {"description": "`ai_unavailable`, with `reason`; nothing charged, nothing saved."},
}


QUOTE_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "`unknown_model`, `cost_cap_too_low` or a bad content."},
}


def quote_out(quoted: tuple[str, pb.Quote], book: pb.Book) -> QuoteOut:
    model, q = quoted
    return QuoteOut(min=q.min, max=q.max, cap=q.cap, model=model, price_version=book.version)


def message_out(m: service.StoredMessage) -> MessageOut:
    return MessageOut(**vars(m), cost=m.tokens_charged if m.role == "assistant" else None)


def generation_out(g: service.Generation) -> GenerateResponse:
    return GenerateResponse(
        user_message=message_out(g.user_message),
        ai_message=message_out(g.ai_message),
        tokens_charged=g.tokens_charged,
        balance=g.balance,
        replayed=g.replayed,
        price_version=g.price_version,
    )


def chat_out(c: service.ChatInfo) -> ChatOut:
    return ChatOut.model_validate(c, from_attributes=True)


@router.get("/config", operation_id="get_chat_config")
async def get_config(
    _user_id: UserIdDep, book: PriceBookDep, settings: SettingsDep, provider: ProviderDep
) -> ChatConfig:
    """The default model and its price per reply (for a usage price: its minimum; the
    models and their full prices are at `GET /api/models`)."""
    c = service.reply_config(settings, provider)
    model = service.default_model(book, provider.model)
    price = book.models[model]
    return ChatConfig(
        reply_cost_tokens=price.tokens if isinstance(price, pb.PerReply) else price.minimum,
        model=model,
        provider=c.provider,
        offline=c.offline,
        max_message_chars=c.max_message_chars,
    )


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_chat")
async def create_chat(body: ChatCreate, session: SessionDep, user_id: UserIdDep) -> ChatOut:
    return chat_out(await service.create_chat(session, user_id, body.title))


@router.get("", operation_id="list_chats")
async def list_chats(
    session: SessionDep,
    user_id: UserIdDep,
    limit: Annotated[int, Query(ge=1, le=service.MAX_CHATS_LISTED)] = 100,
) -> list[ChatSummary]:
    chats = await service.list_chats(session, user_id, limit)
    return [ChatSummary.model_validate(c, from_attributes=True) for c in chats]


@router.patch("/{chat_id}", operation_id="update_chat")
async def update_chat(
    chat_id: ChatId,
    body: ChatUpdate,
    session: SessionDep,
    user_id: UserIdDep,
    book: PriceBookDep,
) -> ChatOut:
    """Rename the chat, choose its model (`unknown_model` if the price book has no such
    model; `null`: the default) or set its cost cap per reply (`null`: none)."""
    changes = body.model_dump(include=body.model_fields_set)
    return chat_out(await service.update_chat(session, user_id, chat_id, changes, book))


@router.post(
    "/quote",
    operation_id="quote_first_reply",
    responses=QUOTE_ERRORS,
)
async def quote_new_chat(
    body: NewChatQuoteRequest,
    _user_id: UserIdDep,
    book: PriceBookDep,
    settings: SettingsDep,
    provider: ProviderDep,
) -> QuoteOut:
    """What the reply to a new chat's first message would cost now, before the chat exists:
    the same `min`–`max` as `POST /api/chats/{chat_id}/quote` for a chat with no messages,
    the `model` and `cost_cap` given (`null`: the default model, no cap). Nothing is held,
    charged or created."""
    text = service.check_content(body.content, settings.max_message_chars)
    quoted = service.quote_first_reply(
        text=text,
        book=book,
        model=body.model,
        fallback_model=service.default_model(book, provider.model),
        cap=body.cost_cap,
        settings=settings,
    )
    return quote_out(quoted, book)


@router.post(
    "/{chat_id}/quote",
    operation_id="quote_reply",
    responses=QUOTE_ERRORS,
)
async def quote(
    chat_id: ChatId,
    body: GenerateRequest,
    session: SessionDep,
    user_id: UserIdDep,
    book: PriceBookDep,
    settings: SettingsDep,
    provider: ProviderDep,
) -> QuoteOut:
    """What a reply to `content` would cost now: `min` (the prompt alone) to `max` (what is
    held when sent: the most output within the chat's cap). Nothing is held or charged."""
    text = service.check_content(body.content, settings.max_message_chars)
    budget = history_budget(settings.ai_history_budget_chars, text, settings.ai_system_prompt)
    quoted = await service.quote_reply(
        session,
        user_id=user_id,
        chat_id=chat_id,
        text=text,
        book=book,
        model=body.model,
        fallback_model=service.default_model(book, provider.model),
        history_budget_chars=budget,
        settings=settings,
    )
    return quote_out(quoted, book)


@router.get("/{chat_id}/messages", operation_id="list_messages")
async def list_messages(
    chat_id: ChatId, session: SessionDep, user_id: UserIdDep
) -> list[MessageOut]:
    return [message_out(m) for m in await service.list_messages(session, user_id, chat_id)]


@router.post(
    "/{chat_id}/messages/{message_id}/refund",
    operation_id="refund_reply",
    responses={
        404: {"description": "`message_not_found`: no such message in this user's chat."},
        409: {"description": "`already_refunded`, or `reply_not_refundable` (not a charged "
              "AI reply)."},
        429: {"description": "`refund_limit_reached`: `REPLY_REFUNDS_PER_DAY` in 24 hours."},
    },
)
async def refund_reply(
    chat_id: ChatId,
    message_id: MessageId,
    body: RefundRequest,
    session: SessionDep,
    user_id: UserIdDep,
    settings: SettingsDep,
) -> RefundResponse:
    """Give back what an AI reply cost, once, with a reason (a ledger ``refund`` entry)."""
    done = await refunds.refund_reply(
        session,
        user_id=user_id,
        chat_id=chat_id,
        message_id=message_id,
        reason=body.reason,
        note=body.note,
        per_day=settings.reply_refunds_per_day,
    )
    return RefundResponse(
        refunded=done.tokens, balance=done.balance, transaction_id=done.transaction_id
    )


# The two generate routes open their own transactions (hold, then charge with the
# messages), so they take the Database rather than the request's session.


@router.post(
    "/{chat_id}/generate",
    operation_id="generate_reply",
    dependencies=[limit("generate")],
    responses=GENERATE_ERRORS,
)
async def generate(
    chat_id: ChatId,
    body: GenerateRequest,
    user_id: UserIdDep,
    db: DatabaseDep,
    settings: SettingsDep,
    provider: ProviderDep,
    idempotency_key: IdempotencyKey = None,
) -> GenerateResponse:
    result = await flows.generate(
        db,
        provider,
        settings,
        user_id=user_id,
        chat_id=chat_id,
        content=body.content,
        idempotency_key=idempotency_key,
        model=body.model,
    )
    return generation_out(result)


@router.post(
    "/{chat_id}/generate/stream",
    operation_id="generate_reply_stream",
    dependencies=[limit("generate")],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
        **{k: v for k, v in GENERATE_ERRORS.items() if k != 502},
    },
)
async def generate_stream(
    chat_id: ChatId,
    body: GenerateRequest,
    user_id: UserIdDep,
    db: DatabaseDep,
    settings: SettingsDep,
    provider: ProviderDep,
    idempotency_key: IdempotencyKey = None,
) -> StreamingResponse:
    """``event: delta`` ``{"text"}`` per chunk, then ``event: done`` (the same JSON as
    ``/generate``) or ``event: error`` (``ai_unavailable``, nothing charged). Errors found
    before the stream starts (404, 402, 409, 422) are ordinary JSON responses.

    Once a delta with text has been handed to the server for sending, the reply is
    charged and saved even if the client leaves (as ``interrupted`` if it was cut); a
    reply cut by the provider after that ends with ``done``, its ``ai_message`` marked
    ``interrupted``."""
    started = await flows.start_reply(
        db,
        provider,
        settings,
        user_id=user_id,
        chat_id=chat_id,
        content=body.content,
        idempotency_key=idempotency_key,
        model=body.model,
    )
    if isinstance(started, service.Generation):
        events = flows.replay_events(started)
    else:
        events = flows.stream_reply(db, provider, started)
    # Taking the first event now puts the hold under the generator's `finally`, so a
    # client that leaves before the body starts still gets it released.
    first = await anext(events)
    return EventStream(first, events)


models_router = APIRouter(prefix="/api", tags=["chats"], responses=error_responses(401, 503))


def _price_out(price: pb.Price) -> PerReplyPriceOut | UsagePriceOut:
    if isinstance(price, pb.PerReply):
        return PerReplyPriceOut(per_reply=price.tokens)
    return UsagePriceOut.model_validate(price, from_attributes=True)


@models_router.get("/models", operation_id="list_models")
async def list_models(
    session: SessionDep, user_id: UserIdDep, book: PriceBookDep, provider: ProviderDep
) -> ModelsOut:
    """The models a reply can use, with their prices in the book in force and the caller's
    recent average charge per reply on each."""
    averages = await service.average_costs(session, user_id, utcnow())
    return ModelsOut(
        default=service.default_model(book, provider.model),
        items=[
            ModelOut(
                id=model,
                name=price.name or model,
                price=_price_out(price),
                recent_average=averages.get(model),
            )
            for model, price in book.models.items()
        ],
        price_version=book.version,
    )


class EventStream(StreamingResponse):
    """A reply's server-sent events, closed as soon as the response ends, however it ends.

    When the client leaves, Starlette cancels the body mid-iteration, possibly before it
    started or while a chunk is being sent; the events would then be closed only when
    the garbage collector finds them. Closing them here (outside the cancelled scope)
    ends the reply's hold at once: settled if text was sent, else released.
    """

    def __init__(
        self, first: service.ReplyEvent, events: AsyncGenerator[service.ReplyEvent, None]
    ) -> None:
        super().__init__(
            _sse(first, events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            body = self.body_iterator
            if isinstance(body, AsyncGenerator):
                await body.aclose()
            await self._events.aclose()  # nothing to do if the body closed it already


async def _sse(
    first: service.ReplyEvent, rest: AsyncGenerator[service.ReplyEvent, None]
) -> AsyncIterator[str]:
    async with aclosing(rest):
        yield _format(first)
        async for event in rest:
            yield _format(event)


def _format(event: service.ReplyEvent) -> str:
    if isinstance(event, service.ReplyStarted):
        return ": started\n\n"  # a comment: EventSource clients ignore it
    if isinstance(event, service.ReplyDelta):
        return _event("delta", {"text": event.text})
    if isinstance(event, service.ReplyDone):
        return _event("done", generation_out(event.generation).model_dump(mode="json"))
    return _event("error", event.error.to_dict())


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
