"""The simulator's whole state and the rules every change follows.

Guarantees:
- All reads and writes of Stripe objects happen under ``SimState.lock`` (a
  re-entrant lock held for the whole request, never across an ``await``), so
  concurrent requests see each state change entirely or not at all.
- Every state change emits a Stripe-shaped event whose ``data.object`` is a
  deep copy of the object at that moment; later changes never alter it.
- An event is handed to the webhook sink exactly once when emitted (the sink
  owns retries and duplicates).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import objects
from .config import ApiFaults
from .errors import ParameterInvalid
from .later import Later
from .objects import Obj
from .params import Params
from .store import Collection, ListQuery, Store


@dataclass(frozen=True)
class RequestContext:
    """Who asked for a change: fills events' ``request`` and hosted-page URLs."""

    base_url: str
    request_id: str | None = None
    idempotency_key: str | None = None
    publishable: bool = False


class EventSink(Protocol):
    def event_emitted(self, event: Obj) -> None: ...


@dataclass
class StoredResponse:
    """A POST under an ``Idempotency-Key``: running (``in_flight``) or finished and
    kept for replays."""

    fingerprint: str
    status_code: int
    body: Obj
    in_flight: bool = False
    saved_at: float = field(default_factory=time.monotonic)


@dataclass
class SimState:
    sink: EventSink
    lock: threading.RLock = field(default_factory=threading.RLock)
    store: Store = field(default_factory=Store)
    idempotency: dict[tuple[str, str], StoredResponse] = field(default_factory=dict)
    # (saved_at, key) of finished results, oldest first: expiry without a full scan.
    idempotency_saved: deque[tuple[float, tuple[str, str]]] = field(default_factory=deque)
    # Card numbers never appear in API objects, but decide each payment's fate.
    card_numbers: dict[str, str] = field(default_factory=dict)
    # How long Stripe's "some time later" takes here (STRIPE_SIM_ASYNC_DELAY_S).
    async_delay_s: float = 2.0
    later: Later = field(init=False)
    api_faults: ApiFaults = field(default_factory=ApiFaults)
    # The account's retry schedule for failed renewals (SimConfig.invoice_retry_days),
    # and what the last failed retry does to the subscription (SimConfig.after_retries).
    invoice_retry_days: tuple[int, ...] = ()
    after_retries: str = "past_due"
    # Sim-only: shift the clock (negative = the past) to make objects that are old.
    clock_offset_s: float = 0.0
    # Where clients reach the server (the last request's base URL): links in objects
    # made without a request (a test clock's renewals) point there.
    base_url: str = ""

    def __post_init__(self) -> None:
        self.later = Later(self.lock)

    def schedule(self, what: str, object_id: str, run: Callable[[], None]) -> None:
        """Run ``run`` (under the lock) ``async_delay_s`` seconds from now."""
        self.later.schedule(self.async_delay_s, what, object_id, run)

    def now(self) -> int:
        """The simulator's clock: real time shifted by ``clock_offset_s``."""
        return int(time.time() + self.clock_offset_s)

    def emit(
        self,
        event_type: str,
        obj: Obj,
        ctx: RequestContext | None,
        previous_attributes: Obj | None = None,
    ) -> Obj:
        event = objects.event(
            event_type=event_type,
            snapshot=copy.deepcopy(obj),
            created=self.now(),
            request_id=ctx.request_id if ctx else None,
            idempotency_key=ctx.idempotency_key if ctx else None,
            previous_attributes=previous_attributes,
        )
        self.store.events.add(event)
        self.sink.event_emitted(event)
        return event

    def reset(self) -> None:
        with self.lock:
            self.later.clear()
            self.store = Store()
            self.idempotency.clear()
            self.idempotency_saved.clear()
            self.card_numbers.clear()
            self.api_faults = ApiFaults()
            self.clock_offset_s = 0.0


def list_filtered(
    collection: Collection,
    p: Params,
    *fields: str,
    keep: Callable[[Obj], bool] = lambda _: True,
) -> Obj:
    """A list endpoint whose filters are parameters named as the objects' fields
    (``GET /v1/disputes?charge=…``); an absent one filters nothing. Only objects ``keep``
    accepts are listed (e.g. not deleted ones)."""
    query = list_query(p)
    equal = {name: p.text(name) for name in fields}
    p.finish()
    return collection.page(query, keep, **equal)


def list_query(p: Params) -> ListQuery:
    """Read Stripe's shared list parameters (limit, cursors, created range)."""
    query = ListQuery(
        limit=p.integer("limit") or 10,
        starting_after=p.text("starting_after") or None,
        ending_before=p.text("ending_before") or None,
    )
    if p.has("created"):
        raw: Any = p.raw("created")
        if isinstance(raw, str):
            query.created = {"eq": _timestamp(raw, "created")}
        elif isinstance(raw, dict):
            for op, value in raw.items():
                if op not in ("gt", "gte", "lt", "lte") or not isinstance(value, str):
                    raise ParameterInvalid(f"Invalid created[{op}]", f"created[{op}]")
                query.created[op] = _timestamp(value, f"created[{op}]")
    return query


def _timestamp(value: str, param: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ParameterInvalid(
            f"Invalid timestamp: {value}", param, code="parameter_invalid_integer"
        ) from None
