"""Test clocks (``/v1/test_helpers/test_clocks``): simulated time for billing.

As Stripe's: a clock has a ``frozen_time``; customers created with ``test_clock``
live in it, and so do their subscriptions and invoices. ``advance`` answers at once
with ``status: advancing`` (``test_helpers.test_clock.advancing``); "some time later"
(``STRIPE_SIM_ASYNC_DELAY_S``, or ``POST /_sim/later/run``) everything due up to the
new time has happened, in time order, each with its events (renewal invoices and their
payments, cancellations at period end, incomplete subscriptions expiring), and the
clock is ``ready`` again (``test_helpers.test_clock.ready``). A clock advances at most
two intervals of its shortest subscription at a time, and is deleted with its
customers 30 days after creation (``deletes_after``) — only the second is not enforced.
"""

from __future__ import annotations

from . import customers, objects
from .errors import ParameterInvalid, ResourceMissing, StripeApiError
from .ids import new_id
from .objects import Obj
from .params import Params
from .state import RequestContext, SimState, list_filtered

DELETES_AFTER_S = 30 * 86400
MAX_STEPS = 10_000  # renewals one advance may run (a runaway guard, not a Stripe rule)


def now_for(state: SimState, cus_id: str | None) -> int:
    """The time a customer's objects live in: its clock's, else the simulator's."""
    cus = state.store.customers.find(cus_id) if cus_id else None
    clock = state.store.test_clocks.find(cus["test_clock"]) if cus and cus["test_clock"] else None
    return int(clock["frozen_time"]) if clock is not None else state.now()


def create(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    frozen_time = p.integer("frozen_time", required=True)
    name = p.text("name") or None
    p.finish()
    assert frozen_time is not None
    created = state.now()
    clock: Obj = {
        "id": new_id("clock"),
        "object": "test_helpers.test_clock",
        "created": created,
        "deletes_after": created + DELETES_AFTER_S,
        "frozen_time": frozen_time,
        "livemode": False,
        "name": name,
        "status": "ready",
        "status_details": {},
    }
    state.store.test_clocks.add(clock)
    state.emit("test_helpers.test_clock.created", clock, ctx)
    return clock


def retrieve(state: SimState, clock_id: str, p: Params) -> Obj:
    p.finish()
    clock = state.store.test_clocks.get(clock_id, "test_clock")
    return objects.deleted(clock) if clock_id in state.store.deleted else clock


def list_all(state: SimState, p: Params) -> Obj:
    return list_filtered(state.store.test_clocks, p, keep=state.store.not_deleted)


def delete(state: SimState, clock_id: str, p: Params, ctx: RequestContext) -> Obj:
    """Deleting a clock deletes its customers (and so ends their subscriptions)."""
    p.finish()
    clock = _live(state, clock_id)
    for cus in state.store.customers.all():
        if cus["test_clock"] == clock_id and state.store.not_deleted(cus):
            customers.remove(state, cus, ctx)
    state.store.deleted.add(clock_id)
    state.emit("test_helpers.test_clock.deleted", clock, ctx)
    return objects.deleted(clock)


def advance(state: SimState, clock_id: str, p: Params, ctx: RequestContext) -> Obj:
    target = p.integer("frozen_time", required=True)
    p.finish()
    assert target is not None
    clock = _live(state, clock_id)
    if clock["status"] != "ready":
        raise StripeApiError(
            "The test clock is currently advancing; wait until its status is ready.",
            param="frozen_time",
        )
    if target <= clock["frozen_time"]:
        raise ParameterInvalid(
            "The frozen_time must be after the test clock's current frozen_time.",
            "frozen_time",
            code="parameter_invalid_integer",
        )
    _check_two_intervals(state, clock, target)
    clock["status"] = "advancing"
    clock["status_details"] = {
        "advancing": {"target_frozen_time": target},
    }
    state.emit("test_helpers.test_clock.advancing", clock, ctx)
    state.schedule("test clock ready", clock_id, lambda: _run_until(state, clock, target))
    return clock


def _run_until(state: SimState, clock: Obj, target: int) -> None:
    try:
        _advance_to(state, clock, target)
    except Exception:
        # Stripe's status for an advance that could not finish; the cause is logged.
        clock["status"] = "internal_failure"
        clock["status_details"] = {}
        state.emit("test_helpers.test_clock.internal_failure", clock, None)
        raise


def _advance_to(state: SimState, clock: Obj, target: int) -> None:
    from . import subscriptions

    for _ in range(MAX_STEPS):
        due = subscriptions.next_due(state, clock["id"], target)
        if due is None:
            break
        at, sub = due
        clock["frozen_time"] = max(clock["frozen_time"], at)
        subscriptions.run_due(state, sub, at)
    clock["frozen_time"] = target
    clock["status"] = "ready"
    clock["status_details"] = {}
    state.emit("test_helpers.test_clock.ready", clock, None)


def _check_two_intervals(state: SimState, clock: Obj, target: int) -> None:
    """Stripe lets a clock advance at most two intervals of its shortest subscription."""
    from . import subscriptions

    limit = subscriptions.two_intervals_from(state, clock["id"], clock["frozen_time"])
    if limit is not None and target > limit:
        raise ParameterInvalid(
            "Cannot advance the test clock more than two intervals of its shortest "
            f"subscription at a time (at most to {limit}).",
            "frozen_time",
            code="parameter_invalid_integer",
        )


def _live(state: SimState, clock_id: str) -> Obj:
    clock = state.store.test_clocks.get(clock_id, "test_clock")
    if clock_id in state.store.deleted:
        raise ResourceMissing("test_helpers.test_clock", clock_id)
    return clock
