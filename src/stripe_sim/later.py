"""Stripe's "some time later": state changes that happen after a delay, not a request.

A pending refund that settles, a refund that fails days after it succeeded, an
inquiry that closes: each is a job due ``async_delay_s`` seconds after the change
that caused it. Jobs run on one background thread, each under the state lock, so
they are atomic like requests and emit their events the same way.

Guarantees:
- Jobs run in due order; a job never runs before it is due unless
  :meth:`Later.run_all` (``POST /_sim/later/run``) asks for everything now.
- A job scheduled before a reset never runs after it.
- A job that raises is logged and dropped; later jobs still run.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_RUN_ALL_ROUNDS = 100  # jobs may schedule more jobs; stop a runaway chain


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    what: str = field(compare=False)
    object_id: str = field(compare=False)
    generation: int = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class Later:
    """Delayed jobs for one simulator, run under its state lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self._state_lock = lock
        self._cond = threading.Condition()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._running = 0

    def schedule(self, delay_s: float, what: str, object_id: str, run: Callable[[], None]) -> None:
        with self._cond:
            job = _Job(
                time.monotonic() + delay_s, next(self._seq), what, object_id, self._generation, run
            )
            heapq.heappush(self._heap, job)
            self._ensure_thread()
            self._cond.notify_all()

    def pending(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._cond:
            return [
                {"what": j.what, "object": j.object_id, "due_in_s": round(max(j.due - now, 0), 3)}
                for j in sorted(self._heap)
            ]

    def is_idle(self) -> bool:
        with self._cond:
            return not self._heap and not self._running

    def run_all(self) -> int:
        """Run every scheduled job now, and the jobs those schedule; return how many."""
        ran = 0
        for _ in range(_RUN_ALL_ROUNDS):
            with self._cond:
                jobs = sorted(self._heap)
                self._heap.clear()
            if not jobs:
                break
            for job in jobs:
                ran += self._run(job)
        return ran

    def clear(self) -> None:
        """Forget every job (a reset); one already running finishes first."""
        with self._cond:
            self._heap.clear()
            self._generation += 1

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, daemon=True, name="stripe_sim later")
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._heap and self._heap[0].due <= now:
                        break
                    wait = self._heap[0].due - now if self._heap else None
                    self._cond.wait(timeout=wait)
                if self._stopping:
                    return
                job = heapq.heappop(self._heap)
                self._running += 1
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running -= 1

    def _run(self, job: _Job) -> int:
        with self._state_lock:
            with self._cond:
                if job.generation != self._generation:
                    return 0
            try:
                job.run()
            except Exception:  # one broken job must not stop the others
                log.exception("stripe_sim: scheduled %s of %s failed", job.what, job.object_id)
                return 0
        return 1
