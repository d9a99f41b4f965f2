"""Deadlines enforced around provider calls, independent of any SDK's own timeout.

SDK timeouts bound each socket read, so a server that trickles bytes, or an SDK that
retries, could still hold a request for much longer. An outer `asyncio` deadline
bounds the whole call no matter what happens inside.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import TypeVar

from tokenbank.chat.providers.base import ProviderTimeout

T = TypeVar("T")


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


class RemoteProvider:
    """What the providers that call a server share: their name and model, the deadline of
    each call (``timeout_s`` for a whole reply) and, when streaming, the idle limit
    between chunks (``idle_timeout_s``; default: the whole deadline)."""

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
