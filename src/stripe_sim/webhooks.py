"""Signed webhook delivery: at-least-once, retried with backoff, faults on demand.

Guarantees:
- Each emitted event is delivered to the configured endpoint until it answers
  2xx or ``webhook_max_attempts`` attempts have failed (non-2xx, connection
  error or timeout); retry *n* waits ``backoff_base * 2**(n-1)`` seconds.
- Events are independent: a failing event is rescheduled and never holds back
  the others. Attempts go out one at a time in due order, so without faults
  events arrive in the order they happened.
- Every attempt is signed afresh exactly as Stripe signs:
  ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
- Every attempt, dropped or sent, is written to the delivery log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import hmac
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import SimConfig, WebhookFaults
from .ids import random_token
from .objects import Obj

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def new_webhook_secret() -> str:
    return f"whsec_{random_token(32)}"


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event_id: str = field(compare=False)
    event_type: str = field(compare=False)
    copy: int = field(compare=False)
    fail_first_n: int = field(compare=False)
    attempts: int = field(default=0, compare=False)


PayloadSource = Callable[[str], bytes | None]


class WebhookDeliverer:
    """Delivers events from a background task on the server's event loop."""

    def __init__(
        self,
        config: SimConfig,
        payload_for: PayloadSource,
        on_delivered: Callable[[str], None],
    ) -> None:
        self._config = config
        self._payload_for = payload_for
        self._on_delivered = on_delivered
        self.url = config.webhook_url
        self.secret = config.webhook_secret or new_webhook_secret()
        self.faults = WebhookFaults()
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._heap: list[_Job] = []
        self._staged: list[_Job] = []
        self._staged_since = 0.0
        self._seq = itertools.count()
        self._in_flight = False
        self._log: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    # ---- configuration -------------------------------------------------

    def set_endpoint(self, url: str | None, secret: str | None) -> None:
        with self._lock:
            self.url = url
            if secret:
                self.secret = secret

    def set_faults(self, faults: WebhookFaults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def reset(self) -> None:
        """Forget queued deliveries, the log and the faults (keep the endpoint)."""
        with self._lock:
            self._heap.clear()
            self._staged.clear()
            self._log.clear()
            self.faults = WebhookFaults()
            self._rng = random.Random()

    # ---- queueing ------------------------------------------------------

    def event_emitted(self, event: Obj) -> None:
        """Queue a new event (called under the state lock, never blocks)."""
        if self.enqueue(event["id"], event["type"]):
            event["pending_webhooks"] = 1

    def enqueue(self, event_id: str, event_type: str) -> bool:
        """Queue one delivery (plus injected duplicates); False if no endpoint."""
        with self._lock:
            if not self.url:
                return False
            faults = self.faults
            if faults.drop_all:
                self._record(event_id, event_type, 0, 1, None, "dropped", "drop_all fault")
                return True
            copies = faults.duplicates
            if faults.duplicates_random:
                copies = self._rng.randint(1, faults.duplicates)
            now = time.monotonic()
            for copy_index in range(1, copies + 1):
                job = _Job(
                    due=now + faults.delay_s,
                    seq=next(self._seq),
                    event_id=event_id,
                    event_type=event_type,
                    copy=copy_index,
                    fail_first_n=faults.fail_first_n,
                )
                self._stage_or_queue(job, now)
        self._wake_up()
        return True

    def _stage_or_queue(self, job: _Job, now: float) -> None:
        if not self.faults.shuffle:
            heapq.heappush(self._heap, job)
            return
        if not self._staged:
            self._staged_since = now
        self._staged.append(job)
        if len(self._staged) >= self.faults.shuffle_window:
            self._flush_staged(now)

    def _flush_staged(self, now: float) -> None:
        """Release the held window in random order (fresh sequence numbers)."""
        self._rng.shuffle(self._staged)
        for job in self._staged:
            job.due = max(job.due, now)
            job.seq = next(self._seq)
            heapq.heappush(self._heap, job)
        self._staged.clear()

    def _next_job(self) -> tuple[_Job | None, float | None]:
        """The next due job (marked in flight), or how long to sleep."""
        with self._lock:
            now = time.monotonic()
            if self._staged and now - self._staged_since >= self.faults.shuffle_hold_s:
                self._flush_staged(now)
            waits: list[float] = []
            if self._staged:
                waits.append(self._staged_since + self.faults.shuffle_hold_s - now)
            if self._heap:
                if self._heap[0].due <= now:
                    self._in_flight = True
                    return heapq.heappop(self._heap), None
                waits.append(self._heap[0].due - now)
            return None, (max(min(waits), 0.001) if waits else None)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._heap and not self._staged and not self._in_flight

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._log]

    # ---- the background task -----------------------------------------

    def ensure_started(self) -> None:
        """Start the worker on the running loop unless it already runs there.

        Called at startup and on every request, so the app also works without
        lifespan events, and moves to a new loop if its old one went away.
        """
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._wake = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self._config.webhook_timeout_s)
        self._task = loop.create_task(self._run(), name="stripe_sim webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.is_idle():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            # Clear before looking, so a job queued meanwhile still wakes us.
            self._wake.clear()
            job, wait = self._next_job()
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            try:
                await self._attempt(job)
            finally:
                with self._lock:
                    self._in_flight = False

    async def _attempt(self, job: _Job) -> None:
        payload = self._payload_for(job.event_id)
        with self._lock:
            url, secret, drop_all = self.url, self.secret, self.faults.drop_all
        if payload is None or not url:
            return  # the event was reset away or the endpoint removed
        job.attempts += 1
        if drop_all:
            self._log_attempt(job, url, None, "dropped", "drop_all fault", retry=False)
            return
        if job.attempts <= job.fail_first_n:
            self._log_attempt(job, url, None, "fault_dropped", "fail_first_n fault", retry=True)
            return
        status, error = await self._post(url, secret, payload)
        if status is not None and 200 <= status < 300:
            self._log_attempt(job, url, status, "delivered", None, retry=False)
            self._on_delivered(job.event_id)
        else:
            self._log_attempt(job, url, status, "failed", error, retry=True)

    async def _post(self, url: str, secret: str, payload: bytes) -> tuple[int | None, str | None]:
        assert self._client is not None
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign(payload, secret, int(time.time())),
        }
        try:
            response = await self._client.post(url, content=payload, headers=headers)
        except httpx.TimeoutException:
            return None, "timeout"
        except httpx.HTTPError as exc:
            return None, f"connection error: {exc.__class__.__name__}"
        return response.status_code, None

    def _log_attempt(
        self,
        job: _Job,
        url: str,
        status: int | None,
        outcome: str,
        error: str | None,
        *,
        retry: bool,
    ) -> None:
        with self._lock:
            if retry and job.attempts < self._config.webhook_max_attempts:
                delay = min(
                    self._config.webhook_backoff_base_s * 2 ** (job.attempts - 1),
                    self._config.webhook_backoff_max_s,
                )
                job.due = time.monotonic() + delay
                job.seq = next(self._seq)
                heapq.heappush(self._heap, job)
            elif retry:
                outcome = "abandoned"
            self._record(
                job.event_id, job.event_type, job.attempts, job.copy, status, outcome, error, url
            )

    def _record(
        self,
        event_id: str,
        event_type: str,
        attempt: int,
        copy: int,
        status: int | None,
        outcome: str,
        error: str | None,
        url: str | None = None,
    ) -> None:
        self._log.append(
            {
                "event_id": event_id,
                "type": event_type,
                "attempt": attempt,
                "copy": copy,
                "status_code": status,
                "outcome": outcome,
                "error": error,
                "url": url or self.url,
                "at": time.time(),
            }
        )
