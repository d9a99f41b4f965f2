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

:class:`ChildProcess` runs such a loop in a child process of the app process instead
(``WEBHOOK_WORKER_PROCESS``, the default under ``tokenbank serve``): its CPU then no
longer delays the requests waiting in the app's event loop. The parent supervises it
(started with the app, restarted if it dies, stopped with the app) and wakes it over
the child's stdin (a byte per :meth:`~ChildProcess.notify`); the child,
:func:`serve_in_child`, runs its loop until SIGTERM/SIGINT or until its stdin ends, and
dies with its parent (:func:`die_with_parent`), so none is left behind.

No unit of work here: a round is the owner's (a flow or a job), which opens its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Protocol, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


#: The environment variable that tells a child its parent's pid (see :func:`die_with_parent`).
PARENT_PID_ENV = "TOKENBANK_PARENT_PID"


class Waker(Protocol):
    """What a request wakes when it recorded work: a :class:`BackgroundLoop` in this
    process or a :class:`ChildProcess` running one."""

    def notify(self) -> None: ...


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


class ChildProcess:
    """``python -m <module>`` as a supervised child of this process: started by
    :meth:`start`, started again (after ``restart_delay_s``, doubled while it keeps dying
    within a minute, at most 30 s) whenever it exits on its own, and ended by
    :meth:`stop` (SIGTERM, then SIGKILL after ``stop_timeout_s``). The module runs a
    loop with :func:`serve_in_child`; :meth:`notify` wakes that loop."""

    def __init__(
        self,
        name: str,
        module: str,
        *,
        restart_delay_s: float = 1.0,
        stop_timeout_s: float = 30.0,
        logger: logging.Logger = log,
    ) -> None:
        self.name = name
        self.module = module
        self.restart_delay_s = restart_delay_s
        self.stop_timeout_s = stop_timeout_s
        self._log = logger
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The running child's pid (None between a death and its restart)."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=self.name)

    def notify(self) -> None:
        """Wake the child's loop: one byte on its stdin (a dead child's is dropped: the
        next one polls the queue when it starts)."""
        process = self._process
        if process is None or process.returncode is not None or process.stdin is None:
            return
        if not process.stdin.is_closing():
            process.stdin.write(b"w")

    async def stop(self) -> None:
        """Stop supervising and end the child; returns once it has exited."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout_s)
            except TimeoutError:
                self._log.error("%s (pid %s) did not stop: killed", self.name, process.pid)
                process.kill()
                await process.wait()
        if process.stdin is not None:
            process.stdin.close()

    async def _supervise(self) -> None:
        delay = self.restart_delay_s
        env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
        while True:
            started = time.monotonic()
            try:
                self._process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", self.module, stdin=asyncio.subprocess.PIPE, env=env
                )
            except OSError:
                self._log.exception("%s: could not start its process", self.name)
            else:
                self._log.info("%s: started (pid %s)", self.name, self._process.pid)
                code = await self._process.wait()
                if self._process.stdin is not None:
                    self._process.stdin.close()
                self._log.error("%s (pid %s) exited (%s): restarting", self.name,
                                self._process.pid, code)
                self._process = None
            # Dying at once, again and again (a broken environment): back off.
            if time.monotonic() - started > 60:
                delay = self.restart_delay_s
            await asyncio.sleep(delay)
            delay = min(2 * delay, 30.0)


def die_with_parent() -> None:
    """In a :class:`ChildProcess`: be killed (SIGKILL) when the parent dies, as if it had
    died with it (Linux's ``PR_SET_PDEATHSIG``; elsewhere the end of stdin stops
    :func:`serve_in_child`), and exit at once if the parent is already gone."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    parent = os.environ.get(PARENT_PID_ENV)
    if parent is not None and os.getppid() != int(parent):
        os._exit(0)


async def serve_in_child(loop: BackgroundLoop) -> None:
    """Run ``loop`` in a :class:`ChildProcess` until SIGTERM/SIGINT or the end of stdin
    (the parent is gone); every read from stdin (the parent's :meth:`ChildProcess.notify`)
    wakes it. The loop stops as :meth:`BackgroundLoop.stop` does (its claims handed back)."""
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(sig, stop.set)
    reader = asyncio.StreamReader()
    await running.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def wakes() -> None:
        while await reader.read(4096):
            loop.notify()
        stop.set()

    waker = asyncio.create_task(wakes(), name=f"{loop.name}-wakes")
    loop.start()
    try:
        await stop.wait()
    finally:
        waker.cancel()
        with suppress(asyncio.CancelledError):
            await waker
        await loop.stop()
