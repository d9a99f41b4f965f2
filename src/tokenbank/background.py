"""Background loops inside each app process: the one scaffolding every worker shares.

:class:`BackgroundLoop` runs a round of work in one task, again and again: at once when
something in this process wakes it (:meth:`~BackgroundLoop.notify`, an ``asyncio.Event``),
otherwise every ``interval_s`` (work that other processes recorded; ``None``: only when
woken). A round that fails
is logged and tried again at the next wake or interval, never fatal: the database may be
away for a while. :meth:`~BackgroundLoop.stop` cancels the round wherever it waits; a
round keeps its units whole across that with :func:`uncut` (a claim committed just as
the stop arrives is handed back, not left to its lease).

Used by the webhook inbox's ``payments.flows.WebhookWorker`` and the notifications'
``notifications.flows.Mailer`` (woken by their own process, polling for the others';
both hand their claims back through :func:`uncut`),
by ``jobs.Scheduler`` for each periodic job (the sweeper, reconcile, the outbound
webhooks' ``outbound.flows.Deliverer``, ...), which nothing wakes, and by
``balance_watch.BalanceWatch``, which only its own process wakes.

No unit of work here: a round is the owner's (a flow or a job), which opens its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class BackgroundLoop:
    """A round of work run in one task until stopped: woken by :meth:`notify`, else every
    ``interval_s`` (``None``: only when woken). Give the round as ``work``, or override
    :meth:`round`.

    ``failure`` is what ``logger`` says (with the traceback) when a round fails."""

    def __init__(
        self,
        name: str,
        interval_s: float | None,
        work: Callable[[], Awaitable[object]] | None = None,
        *,
        failure: str | None = None,
        logger: logging.Logger = log,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._work = work
        self._failure = failure or f"background loop {name}: a round failed"
        self._log = logger
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> object:
        """One round of the work."""
        if self._work is None:
            raise NotImplementedError("give the loop its work, or override round()")
        return await self._work()

    def notify(self) -> None:
        """Something for the loop was recorded in this process: run a round now rather
        than at the next interval."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended (its round's units end whole:
        see :func:`uncut`)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: try again at the next wake or poll
                self._log.exception(self._failure)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass


async def uncut(unit: Awaitable[T], undo: Callable[[T], Awaitable[object]]) -> T:
    """Run ``unit`` (a transaction that claims work) so that cancelling the caller cannot
    cut it in two: cancelled meanwhile, the caller waits for the unit to end, hands back
    what it claimed (``undo`` of its result) and only then lets the cancellation through.
    (Cancelled inside the unit, a commit could land with its result lost: claimed rows
    would then wait for their lease to run out.)"""
    task = asyncio.ensure_future(unit)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        done = await task
        await undo(done)
        raise
