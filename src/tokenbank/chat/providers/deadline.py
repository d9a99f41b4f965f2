"""Deadlines enforced around provider calls, independent of any SDK's own timeout.

SDK timeouts bound each socket read, so a server that trickles bytes, or an SDK that
retries, could still hold a request for much longer. An outer `asyncio` deadline
bounds the whole call no matter what happens inside.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from tokenbank.chat.providers.base import (
    ChatTurn,
    F,
    ProviderTimeout,
    ReplyReport,
    StreamedReply,
)

T = TypeVar("T")
#: A provider SDK's whole response, and one chunk of its streamed one.
Response = TypeVar("Response")
Chunk = TypeVar("Chunk")


class Deadline:
    """A total deadline for one call, plus an idle limit between streamed chunks.

    Starts when created: create it at the beginning of the call it guards.
    """

    def __init__(self, provider: str, *, total_s: float, idle_s: float | None = None) -> None:
        self._provider = provider
        self._loop = asyncio.get_running_loop()
        self._ends_at = self._loop.time() + total_s
        self._idle_s = idle_s if idle_s is not None else total_s

    def _next_limit(self) -> float:
        return min(self._loop.time() + self._idle_s, self._ends_at)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await one step (a request, or the next chunk) within both limits."""
        try:
            async with asyncio.timeout_at(self._next_limit()):
                return await awaitable
        except TimeoutError as exc:
            raise ProviderTimeout(self._provider, message="no answer within the deadline") from exc

    async def iterate(self, chunks: AsyncIterable[T]) -> AsyncIterator[T]:
        """Yield from `chunks`, each one awaited within both limits.

        The consumer's own time between chunks counts towards the total only: the
        timeout scope never spans a `yield`, so it cannot cancel the consumer's task
        while the consumer is busy elsewhere.
        """
        iterator = aiter(chunks)
        while True:
            try:
                item = await self.wait(anext(iterator))
            except StopAsyncIteration:
                return
            yield item


class RemoteProvider(ABC, Generic[Response, Chunk, F]):
    """What the providers that call a server share: their name and model, the deadline of
    each call (``timeout_s`` for a whole reply) and, when streaming, the idle limit
    between chunks (``idle_timeout_s``; default: the whole deadline).

    It also runs every call the same way (`complete`, `stream`); a provider says what
    differs in its SDK's own terms: the request (`_request`), sending it whole or
    streamed (`_send`, `_open`, `_close`), reading the answer (`_reply`, `_texts`), its
    finish reasons (`_finish`), how its stream must end (`_end`) and which of its
    exceptions mean what (`_mapped_errors`).
    """

    is_offline = False

    def __init__(
        self, name: str, model: str, *, timeout_s: float, idle_timeout_s: float | None
    ) -> None:
        self.name = name
        self.model = model
        self._timeout_s = timeout_s
        self._idle_timeout_s = idle_timeout_s

    def _deadline(self, *, streaming: bool = False) -> Deadline:
        """A deadline for one call, started now."""
        idle_s = self._idle_timeout_s if streaming else None
        return Deadline(self.name, total_s=self._timeout_s, idle_s=idle_s)

    async def complete(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        report: ReplyReport | None = None,
    ) -> str:
        request = self._request(turns, model or self.model, max_tokens)
        deadline = self._deadline()
        with self._mapped_errors():
            response = await deadline.wait(self._send(request))
        return self._reply(response, report)

    async def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        report: ReplyReport | None = None,
    ) -> AsyncIterator[str]:
        request = self._request(turns, model or self.model, max_tokens)
        deadline = self._deadline(streaming=True)
        reply: StreamedReply[F] = StreamedReply(self.name, report, self._finish)
        with self._mapped_errors():
            chunks = await deadline.wait(self._open(request))
            try:
                async for chunk in deadline.iterate(chunks):
                    for text in self._texts(chunk, reply):
                        yield text
            finally:
                # Closing the SDK's stream closes the HTTP response under it.
                await self._close(chunks)
        # Only a stream that ended normally may be a usable reply.
        self._end(reply)

    def _end(self, reply: StreamedReply[F]) -> None:
        """Raise unless the stream ended as a usable reply: by default, any finish reason
        (``stop``, ``length``, a compatible server's own) with text; ``content_filter``
        means the reply was withheld part way."""
        reply.end()

    # --- what each provider says ---------------------------------------------------------

    @abstractmethod
    def _request(
        self, turns: Sequence[ChatTurn], model: str, max_tokens: int | None
    ) -> dict[str, Any]:
        """The SDK call's arguments for a reply to ``turns``."""

    @abstractmethod
    def _send(self, request: dict[str, Any]) -> Awaitable[Response]:
        """The SDK call for the whole reply."""

    @abstractmethod
    def _reply(self, response: Response, report: ReplyReport | None) -> str:
        """The text of a whole reply (filling ``report``), raising unless it is usable."""

    @abstractmethod
    def _open(self, request: dict[str, Any]) -> Awaitable[AsyncIterable[Chunk]]:
        """The SDK call that starts the streamed reply."""

    @abstractmethod
    def _texts(self, chunk: Chunk, reply: StreamedReply[F]) -> Iterator[str]:
        """A chunk's text, noting on ``reply`` its usage, finish reason and any text."""

    @abstractmethod
    async def _close(self, chunks: AsyncIterable[Chunk]) -> None:
        """Close the stream (also when it failed or was abandoned part way)."""

    @abstractmethod
    def _finish(self, reason: F | None) -> str | None:
        """The provider's finish reason as ``stop``, ``length`` or ``content_filter``."""

    @abstractmethod
    def _mapped_errors(self) -> AbstractContextManager[None]:
        """Translates the SDK's exceptions into `ProviderError`s (the cause chained)."""
