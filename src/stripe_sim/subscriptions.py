"""Subscriptions: create, change price with prorations, cancel, renew.

Status machine, as Stripe's: created ``incomplete`` with its first invoice
(``subscription_create``) finalized → ``active`` when that invoice is paid, or
``incomplete_expired`` 23 hours later if it never is; at each period end a
``subscription_cycle`` invoice charges the default PaymentMethod off-session
(the subscription's, else the customer's): paid → stays ``active``; failed or
needing 3D Secure → ``past_due`` until an invoice is paid again → ``active``.
``cancel_at_period_end`` ends it at the period end, ``DELETE`` at once
(``canceled``, ``customer.subscription.deleted``).

``payment_behavior``: ``default_incomplete`` leaves the first invoice's
PaymentIntent for the page to confirm (``expand[]=latest_invoice.confirmation_secret``
in this API version, whose invoices have no ``payment_intent``); ``allow_incomplete``
(the default) charges the default PaymentMethod at once.

A price change prorates by the second, as Stripe does: a credit for the unused
time on the old price and a charge for the remaining time on the new one.
``create_prorations`` (the default) adds them to the next invoice,
``always_invoice`` invoices and charges them now (``subscription_update``),
``none`` does not prorate. With ``payment_behavior=pending_if_incomplete`` a change
whose invoice cannot be paid waits in ``pending_update`` until it is paid (then
applied) or 23 hours pass (then discarded, its invoice voided).
"""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime

from . import customers, invoices, search
from .errors import (
    FeatureNotSimulated,
    ParameterInvalid,
    ParameterMissing,
    ResourceMissing,
    StripeApiError,
)
from .ids import new_id
from .objects import Obj, list_object
from .params import Params, apply_metadata
from .state import RequestContext, SimState, list_query
from .test_clocks import now_for

ENDED = ("canceled", "incomplete_expired")
BILLED = ("active", "past_due", "unpaid")
INCOMPLETE_EXPIRES_S = 23 * 3600
PRORATIONS = ("create_prorations", "always_invoice", "none")
PAYMENT_BEHAVIOURS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)


def _check_default_payment_method(state: SimState, pm_id: str, cus_id: str) -> None:
    """``default_payment_method`` must exist and be attached to the subscription's customer."""
    pm = state.store.payment_methods.get(pm_id, "default_payment_method")
    if pm["customer"] != cus_id:
        raise StripeApiError(
            f"The PaymentMethod {pm_id} does not belong to this customer.",
            param="default_payment_method",
        )


def _payment_behaviour(p: Params) -> str:
    """``payment_behavior`` of a create or update: ``allow_incomplete`` when absent."""
    return p.text("payment_behavior", choices=PAYMENT_BEHAVIOURS) or "allow_incomplete"


def create(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    cus_id = p.text("customer", required=True) or ""
    items = p.object_list("items")
    behaviour = _payment_behaviour(p)
    default_pm = p.text("default_payment_method") or None
    metadata = apply_metadata({}, p.metadata())
    cancel_at_period_end = p.boolean("cancel_at_period_end") or False
    description = p.text("description") or None
    settings = p.nested("payment_settings")
    save_default = (
        settings.text("save_default_payment_method", choices=("off", "on_subscription"))
        if settings
        else None
    ) or "off"
    if settings:
        settings.ignore("payment_method_types", "payment_method_options")
    collection = p.text("collection_method", choices=("charge_automatically", "send_invoice"))
    p.text("proration_behavior", choices=PRORATIONS)
    p.ignore("off_session", "automatic_tax", "expand")
    p.refuse(
        "trial_period_days",
        "trial_end",
        "billing_cycle_anchor",
        "coupon",
        "discounts",
        "add_invoice_items",
        "days_until_due",
        "cancel_at",
        on="subscriptions",
    )
    if collection == "send_invoice":
        raise FeatureNotSimulated(
            "stripe_sim bills subscriptions with charge_automatically only.",
            param="collection_method",
        )
    if behaviour in ("error_if_incomplete", "pending_if_incomplete"):
        raise FeatureNotSimulated(
            f"stripe_sim does not simulate payment_behavior={behaviour} on creation.",
            param="payment_behavior",
        )
    if not items:
        raise ParameterMissing("items")
    prices = [_item_price(state, item) for item in items]
    p.finish()
    cus = customers.live(state, cus_id)
    if default_pm:
        _check_default_payment_method(state, default_pm, cus["id"])
    _check_prices(prices)
    now = now_for(state, cus["id"])
    sub_id = new_id("sub")
    first = prices[0][0]["recurring"]
    end = period_end(now, now, first["interval"], first["interval_count"])
    sub_items = [_item(state, sub_id, price, qty, now, end) for price, qty in prices]
    sub: Obj = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic", "updated_at": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": now if cancel_at_period_end else None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": prices[0][0]["currency"],
        "customer": cus["id"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": default_pm,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": list_object(sub_items, f"/v1/subscription_items?subscription={sub_id}"),
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": save_default,
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "presentment_details": None,
        "schedule": None,
        "start_date": now,
        "status": "incomplete",
        "status_details": None,
        "test_clock": cus["test_clock"],
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
    state.store.subscriptions.add(sub)
    lines = [
        _line(state, sub, item, item["price"], item["quantity"], (now, end)) for item in sub_items
    ]
    inv = _invoice(state, sub, cus, "subscription_create", lines, (now, end), now, ctx)
    if inv["status"] == "open" and behaviour == "allow_incomplete":
        invoices.attempt(state, inv, payment_method_for(state, sub), ctx)
    return sub


def retrieve(state: SimState, sub_id: str, p: Params) -> Obj:
    p.finish()
    return state.store.subscriptions.get(sub_id, "subscription")


def list_all(state: SimState, p: Params) -> Obj:
    query = list_query(p)
    cus_id = p.text("customer")
    price_id = p.text("price")
    clock_id = p.text("test_clock")
    status = p.text(
        "status",
        choices=(
            "active",
            "all",
            "canceled",
            "ended",
            "incomplete",
            "incomplete_expired",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        ),
    )
    p.ignore("collection_method", "current_period_end", "current_period_start", "automatic_tax")
    p.finish()

    def keep(sub: Obj) -> bool:
        if status == "ended":
            wanted = sub["status"] in ENDED
        elif status == "all":
            wanted = True
        elif status:
            wanted = sub["status"] == status
        else:  # Stripe's default: every subscription not canceled
            wanted = sub["status"] != "canceled"
        return (
            wanted
            and (cus_id is None or sub["customer"] == cus_id)
            and (clock_id is None or sub["test_clock"] == clock_id)
            and (price_id is None or any(i["price"]["id"] == price_id for i in _items(sub)))
        )

    return state.store.subscriptions.page(query, keep)


def search_subscriptions(state: SimState, p: Params) -> Obj:
    return search.search(state.store.subscriptions, p, ("status", "customer"))


def list_items(state: SimState, p: Params) -> Obj:
    """``GET /v1/subscription_items?subscription=…``."""
    sub_id = p.text("subscription", required=True) or ""
    p.ignore("limit", "starting_after", "ending_before")
    p.finish()
    sub = state.store.subscriptions.get(sub_id, "subscription")
    return list_object(copy.deepcopy(_items(sub)), f"/v1/subscription_items?subscription={sub_id}")


def retrieve_item(state: SimState, item_id: str, p: Params) -> Obj:
    p.finish()
    for sub in state.store.subscriptions.all():
        for item in _items(sub):
            if item["id"] == item_id:
                return item
    raise ResourceMissing("subscription_item", item_id)


def update(state: SimState, sub_id: str, p: Params, ctx: RequestContext) -> Obj:
    sub = state.store.subscriptions.get(sub_id, "subscription")
    items = p.object_list("items")
    proration = p.text("proration_behavior", choices=PRORATIONS) or "create_prorations"
    proration_date = p.integer("proration_date")
    behaviour = _payment_behaviour(p)
    cancel_at_period_end = p.boolean("cancel_at_period_end")
    default_pm = p.text("default_payment_method")
    metadata = p.metadata()
    description = p.text("description")
    settings = p.nested("payment_settings")
    save_default = (
        settings.text("save_default_payment_method", choices=("off", "on_subscription"))
        if settings
        else None
    )
    if settings:
        settings.ignore("payment_method_types", "payment_method_options")
    p.ignore("off_session", "expand", "automatic_tax")
    p.refuse(
        "trial_end",
        "billing_cycle_anchor",
        "discounts",
        "cancel_at",
        "pause_collection",
        "add_invoice_items",
        on="subscription updates",
    )
    if behaviour == "error_if_incomplete":
        raise FeatureNotSimulated(
            "stripe_sim does not simulate payment_behavior=error_if_incomplete on updates.",
            param="payment_behavior",
        )
    changes = [_item_change(state, sub, item) for item in items or []]
    p.finish()
    if sub["status"] in ENDED:
        raise StripeApiError(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    now = now_for(state, sub["customer"])
    if behaviour == "pending_if_incomplete":
        others = [
            name
            for name, value in (
                ("cancel_at_period_end", cancel_at_period_end),
                ("default_payment_method", default_pm),
                ("metadata", metadata),
                ("description", description),
                ("payment_settings", save_default),
            )
            if value is not None
        ]
        if others or proration != "always_invoice" or not changes:
            raise StripeApiError(
                "stripe_sim simulates payment_behavior=pending_if_incomplete for item "
                "changes with proration_behavior=always_invoice only"
                + (f"; not with {', '.join(others)}." if others else "."),
                param="payment_behavior",
            )
        return _pending_update(state, sub, changes, proration_date or now, now, ctx)
    before = copy.deepcopy(sub)
    if default_pm is not None:
        if default_pm:
            _check_default_payment_method(state, default_pm, sub["customer"])
        sub["default_payment_method"] = default_pm or None
    if save_default:
        sub["payment_settings"]["save_default_payment_method"] = save_default
    sub["metadata"] = apply_metadata(sub["metadata"], metadata)
    if description is not None:
        sub["description"] = description or None
    if cancel_at_period_end is not None:
        _set_cancel_at_period_end(sub, cancel_at_period_end, now)
    proration_lines = _apply_item_changes(state, sub, changes, proration_date or now)
    changed = {k: v for k, v in before.items() if sub.get(k) != v}
    if changed:
        state.emit("customer.subscription.updated", sub, ctx, changed)
    if proration_lines and proration == "create_prorations":
        state.store.pending_lines.setdefault(sub["id"], []).extend(proration_lines)
    elif proration_lines and proration == "always_invoice":
        lines = state.store.pending_lines.pop(sub["id"], []) + proration_lines
        cus = state.store.customers.get(sub["customer"])
        period = current_period(sub)
        inv = _invoice(state, sub, cus, "subscription_update", lines, period, now, ctx)
        if inv["status"] == "open" and behaviour == "allow_incomplete":
            invoices.attempt(state, inv, payment_method_for(state, sub), ctx)
        elif inv["status"] == "open":
            _set_status(state, sub, "past_due", ctx)
    return sub


def cancel(state: SimState, sub_id: str, p: Params, ctx: RequestContext) -> Obj:
    sub = state.store.subscriptions.get(sub_id, "subscription")
    p.boolean("invoice_now")
    p.boolean("prorate")
    details = p.nested("cancellation_details")
    if details:
        details.text("comment")
        details.text("feedback")
    p.finish()
    if sub["status"] in ENDED:
        raise StripeApiError(
            f"No such subscription: '{sub_id}'", code="resource_missing", param="id"
        )
    end(state, sub, ctx)
    return sub


def _pending_update(
    state: SimState,
    sub: Obj,
    changes: list[tuple[Obj, Obj, int]],
    at: int,
    now: int,
    ctx: RequestContext,
) -> Obj:
    """``pending_if_incomplete``: the change applies only once its invoice is paid; until
    then it waits in ``pending_update`` (23 hours at most) and the subscription keeps its
    items and status."""
    before = copy.deepcopy(sub)
    lines = _apply_item_changes(state, sub, changes, at)
    if not lines:
        return sub
    changed_items = copy.deepcopy(_items(sub))
    cus = state.store.customers.get(sub["customer"])
    inv = invoices.create_draft(
        state,
        cus=cus,
        sub=sub,
        reason="subscription_update",
        lines=state.store.pending_lines.pop(sub["id"], []) + lines,
        period=current_period(sub),
        now=now,
        ctx=ctx,
    )
    sub["latest_invoice"] = inv["id"]
    state.store.pending_update_invoice[sub["id"]] = inv["id"]
    invoices.finalize(state, inv, now, ctx)
    if inv["status"] == "open":
        invoices.attempt(state, inv, payment_method_for(state, sub), ctx)
    if inv["status"] == "paid":
        state.store.pending_update_invoice.pop(sub["id"], None)
        state.emit("customer.subscription.updated", sub, ctx, _changed(before, sub))
        return sub
    sub["items"]["data"] = before["items"]["data"]
    sub["pending_update"] = {
        "billing_cycle_anchor": None,
        "discounts": None,
        "expires_at": now + INCOMPLETE_EXPIRES_S,
        "subscription_items": changed_items,
        "trial_end": None,
        "trial_from_plan": None,
    }
    state.emit("customer.subscription.updated", sub, ctx, _changed(before, sub))
    return sub


def _apply_pending_update(state: SimState, sub: Obj, ctx: RequestContext | None) -> None:
    pending = sub["pending_update"]
    before = copy.deepcopy(sub)
    sub["items"]["data"] = pending["subscription_items"]
    sub["pending_update"] = None
    state.emit("customer.subscription.pending_update_applied", sub, ctx, _changed(before, sub))
    state.emit("customer.subscription.updated", sub, ctx, _changed(before, sub))


def _expire_pending_update(state: SimState, sub: Obj, at: int) -> None:
    inv_id = state.store.pending_update_invoice.pop(sub["id"], None)
    inv = state.store.invoices.find(inv_id or "")
    if inv is not None and inv["status"] == "open":
        invoices.void(state, inv, at, None)
    before = copy.deepcopy(sub)
    sub["pending_update"] = None
    state.emit("customer.subscription.pending_update_expired", sub, None, _changed(before, sub))


def _changed(before: Obj, after: Obj) -> Obj:
    return {k: v for k, v in before.items() if after.get(k) != v}


def end(state: SimState, sub: Obj, ctx: RequestContext | None) -> None:
    """The subscription stops now: ``canceled``, ``customer.subscription.deleted``."""
    now = now_for(state, sub["customer"])
    sub["status"] = "canceled"
    sub["ended_at"] = now
    sub["canceled_at"] = sub["canceled_at"] or now
    sub["cancellation_details"]["reason"] = "cancellation_requested"
    state.emit("customer.subscription.deleted", sub, ctx)


# ---- driven by invoices and test clocks ----


def payment_method_for(state: SimState, sub: Obj) -> str | None:
    """What Stripe charges: the subscription's default PaymentMethod, else the customer's."""
    pm = sub["default_payment_method"]
    if isinstance(pm, str):
        return pm
    return customers.default_payment_method(state, sub["customer"])


def invoice_paid(
    state: SimState, sub: Obj, inv: Obj, pi: Obj | None, ctx: RequestContext | None
) -> None:
    if sub["status"] in ENDED:
        return
    if state.store.pending_update_invoice.get(sub["id"]) == inv["id"]:
        del state.store.pending_update_invoice[sub["id"]]
        if sub["pending_update"] is not None:
            _apply_pending_update(state, sub, ctx)
        return
    saves = sub["payment_settings"]["save_default_payment_method"] == "on_subscription"
    before = copy.deepcopy(sub)
    if saves and pi is not None and pi["payment_method"]:
        sub["default_payment_method"] = pi["payment_method"]
    latest = state.store.invoices.find(sub["latest_invoice"] or "")
    if latest is None or latest["status"] == "paid":  # the status follows the latest invoice
        sub["status"] = "active"
    changed = {k: v for k, v in before.items() if sub.get(k) != v}
    if changed:
        state.emit("customer.subscription.updated", sub, ctx, changed)


def invoice_failed(state: SimState, sub: Obj, inv: Obj, ctx: RequestContext | None) -> None:
    """A renewal or update that could not be charged makes the subscription past_due;
    a first invoice leaves it incomplete."""
    if state.store.pending_update_invoice.get(sub["id"]) == inv["id"]:
        return  # a pending update that could not be paid changes nothing
    if sub["status"] == "active" and inv["billing_reason"] != "subscription_create":
        _set_status(state, sub, "past_due", ctx)
    if (
        sub["status"] == "past_due"
        and sub["latest_invoice"] == inv["id"]
        and invoices.retries_exhausted(state, inv)
    ):
        if state.after_retries == "unpaid":
            _set_status(state, sub, "unpaid", ctx)
        elif state.after_retries == "cancel":
            end(state, sub, ctx)


def next_due(state: SimState, clock_id: str, until: int) -> tuple[int, Obj] | None:
    """The earliest thing due on this clock's subscriptions by ``until``."""
    best: tuple[int, Obj] | None = None
    for sub in state.store.subscriptions.all():
        if sub["test_clock"] != clock_id:
            continue
        at = _due_at(state, sub)
        if at is not None and at <= until and (best is None or at < best[0]):
            best = (at, sub)
    return best


def run_due(state: SimState, sub: Obj, at: int) -> None:
    pending = sub["pending_update"]
    retry = _retry_due(state, sub)
    if retry is not None and retry[0] <= at and retry[0] < current_period(sub)[1]:
        invoices.attempt(state, retry[1], payment_method_for(state, sub), None)
    elif pending is not None and pending["expires_at"] <= at:
        _expire_pending_update(state, sub, at)
    elif sub["status"] == "incomplete":
        _expire(state, sub)
    elif sub["cancel_at_period_end"]:
        end(state, sub, None)
    else:
        _renew(state, sub, at)


def two_intervals_from(state: SimState, clock_id: str, start: int) -> int | None:
    limits = [
        period_end(
            start,
            start,
            i["price"]["recurring"]["interval"],
            2 * i["price"]["recurring"]["interval_count"],
        )
        for sub in state.store.subscriptions.all()
        if sub["test_clock"] == clock_id and sub["status"] not in ENDED
        for i in _items(sub)
    ]
    return min(limits) if limits else None


def current_period(sub: Obj) -> tuple[int, int]:
    item = _items(sub)[0]
    return int(item["current_period_start"]), int(item["current_period_end"])


def period_end(anchor: int, start: int, interval: str, count: int) -> int:
    """The end of the period starting at ``start`` (calendar months keep the anchor's
    day, clamped to the month's last day, as Stripe bills)."""
    if interval in ("day", "week"):
        return start + count * 86400 * (7 if interval == "week" else 1)
    first = datetime.fromtimestamp(anchor, UTC)
    here = datetime.fromtimestamp(start, UTC)
    months = count * (12 if interval == "year" else 1)
    year, month = divmod(here.year * 12 + here.month - 1 + months, 12)
    day = min(first.day, calendar.monthrange(year, month + 1)[1])
    moment = datetime(year, month + 1, day, first.hour, first.minute, first.second, tzinfo=UTC)
    return int(moment.timestamp())


# ---- helpers ----


def _retry_due(state: SimState, sub: Obj) -> tuple[int, Obj] | None:
    """A past_due subscription's latest invoice, when its automatic retry is scheduled."""
    if sub["status"] != "past_due" or not state.invoice_retry_days:
        return None
    inv = state.store.invoices.find(sub["latest_invoice"] or "")
    if inv is None or inv["status"] != "open" or not inv["next_payment_attempt"]:
        return None
    return int(inv["next_payment_attempt"]), inv


def _due_at(state: SimState, sub: Obj) -> int | None:
    retry = _retry_due(state, sub)
    if retry is not None and retry[0] < current_period(sub)[1]:
        return retry[0]
    pending = sub["pending_update"]
    if pending is not None and sub["status"] not in ENDED:
        return min(int(pending["expires_at"]), current_period(sub)[1])
    if sub["status"] == "incomplete":
        return int(sub["created"]) + INCOMPLETE_EXPIRES_S
    if sub["status"] in BILLED:
        return current_period(sub)[1]
    return None


def _expire(state: SimState, sub: Obj) -> None:
    """An unpaid first invoice: after 23 hours the subscription is ``incomplete_expired``
    and the invoice is voided."""
    inv = state.store.invoices.find(sub["latest_invoice"] or "")
    now = now_for(state, sub["customer"])
    if inv is not None and inv["status"] == "open":
        invoices.void(state, inv, now, None)
    sub["ended_at"] = now
    _set_status(state, sub, "incomplete_expired", None)


def _renew(state: SimState, sub: Obj, at: int) -> None:
    before = copy.deepcopy(sub)
    for item in _items(sub):
        recurring = item["price"]["recurring"]
        item["current_period_start"] = at
        item["current_period_end"] = period_end(
            sub["billing_cycle_anchor"], at, recurring["interval"], recurring["interval_count"]
        )
    period = current_period(sub)
    lines = state.store.pending_lines.pop(sub["id"], [])
    lines += [_line(state, sub, i, i["price"], i["quantity"], period) for i in _items(sub)]
    cus = state.store.customers.get(sub["customer"])
    inv = _invoice(
        state, sub, cus, "subscription_cycle", lines, period, at, None, {"items": before["items"]}
    )
    if inv["status"] == "open" and sub["status"] != "unpaid":
        # An unpaid subscription keeps invoicing, but its payments are not attempted.
        invoices.attempt(state, inv, payment_method_for(state, sub), None)


def _invoice(
    state: SimState,
    sub: Obj,
    cus: Obj,
    reason: str,
    lines: list[Obj],
    period: tuple[int, int],
    now: int,
    ctx: RequestContext | None,
    previous_attributes: Obj | None = None,
) -> Obj:
    inv = invoices.create_draft(
        state, cus=cus, sub=sub, reason=reason, lines=lines, period=period, now=now, ctx=ctx
    )
    previous = sub["latest_invoice"]
    sub["latest_invoice"] = inv["id"]
    if reason == "subscription_create":
        state.emit("customer.subscription.created", sub, ctx)
    else:
        changed = {**(previous_attributes or {}), "latest_invoice": previous}
        state.emit("customer.subscription.updated", sub, ctx, changed)
    return invoices.finalize(state, inv, now, ctx)


def _set_status(state: SimState, sub: Obj, status: str, ctx: RequestContext | None) -> None:
    if sub["status"] == status:
        return
    previous = sub["status"]
    sub["status"] = status
    state.emit("customer.subscription.updated", sub, ctx, {"status": previous})


def _set_cancel_at_period_end(sub: Obj, value: bool, now: int) -> None:
    sub["cancel_at_period_end"] = value
    sub["cancel_at"] = current_period(sub)[1] if value else None
    sub["canceled_at"] = now if value else None
    sub["cancellation_details"]["reason"] = "cancellation_requested" if value else None


def _items(sub: Obj) -> list[Obj]:
    data = sub["items"]["data"]
    assert isinstance(data, list)
    return data


def _item_price(state: SimState, item: Params) -> tuple[Obj, int]:
    price_id = item.text("price", required=True) or ""
    quantity = item.integer("quantity") or 1
    item.ignore("metadata", "tax_rates", "discounts")
    if item.has("price_data"):
        raise FeatureNotSimulated(
            "stripe_sim takes subscription prices by id, not price_data.", param="price_data"
        )
    price = state.store.prices.get(price_id, "items[0][price]")
    if price["recurring"] is None:
        raise ParameterInvalid(
            f"The price specified is set to `type=one_time` but this field only accepts "
            f"prices with `type=recurring`: {price_id}",
            "items[0][price]",
        )
    if not price["active"]:
        raise ParameterInvalid(
            f"The price specified is inactive. This field only accepts active prices: {price_id}",
            "items[0][price]",
        )
    return price, quantity


def _check_prices(prices: list[tuple[Obj, int]]) -> None:
    intervals = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p, _ in prices}
    currencies = {p["currency"] for p, _ in prices}
    if len(intervals) > 1 or len(currencies) > 1:
        raise ParameterInvalid(
            "Prices of one subscription must share their currency and billing interval.",
            "items",
        )


def _item(state: SimState, sub_id: str, price: Obj, quantity: int, start: int, end: int) -> Obj:
    return {
        "id": new_id("si"),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": start,
        "current_period_end": end,
        "current_period_start": start,
        "discounts": [],
        "metadata": {},
        "plan": _plan(price),
        "price": copy.deepcopy(price),
        "quantity": quantity,
        "subscription": sub_id,
        "tax_rates": [],
    }


def _plan(price: Obj) -> Obj:
    recurring = price["recurring"]
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": False,
        "metadata": price["metadata"],
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def _product_name(state: SimState, price: Obj) -> str:
    product = state.store.products.find(price["product"])
    return str(product["name"]) if product else str(price["product"])


def _line(
    state: SimState,
    sub: Obj,
    item: Obj,
    price: Obj,
    quantity: int,
    period: tuple[int, int],
    *,
    amount: int | None = None,
    description: str | None = None,
) -> Obj:
    full = int(price["unit_amount"]) * quantity
    recurring = price["recurring"]
    return invoices.line(
        amount=full if amount is None else amount,
        currency=price["currency"],
        description=description
        or f"{quantity} × {_product_name(state, price)} "
        f"(at {price['unit_amount'] / 100:.2f} {price['currency'].upper()} / "
        f"{recurring['interval']})",
        price=price,
        quantity=quantity,
        period=period,
        sub_id=sub["id"],
        item_id=item["id"],
        proration=amount is not None,
    )


def _item_change(state: SimState, sub: Obj, item: Params) -> tuple[Obj, Obj, int]:
    """(the item, its new price, its new quantity) for one ``items[n]`` of an update."""
    item_id = item.text("id") or None
    price_id = item.text("price") or None
    quantity = item.integer("quantity")
    item.ignore("metadata", "tax_rates", "discounts", "clear_usage")
    if item.boolean("deleted"):
        raise FeatureNotSimulated(
            "stripe_sim changes subscription items' prices; it does not delete items.",
            param="items[0][deleted]",
        )
    if item_id is None:
        raise FeatureNotSimulated(
            "stripe_sim changes existing subscription items (items[0][id]); it does not "
            "add items to a subscription.",
            param="items[0][id]",
        )
    current = next((i for i in _items(sub) if i["id"] == item_id), None)
    if current is None:
        raise StripeApiError(
            f"No such subscription item: '{item_id}'",
            code="resource_missing",
            param="items[0][id]",
        )
    price = current["price"]
    if price_id is not None:
        price, _ = _item_price(state, Params({"price": price_id}))
        _check_prices([(price, 1), (current["price"], 1)])
    return current, price, quantity if quantity is not None else int(current["quantity"])


def _apply_item_changes(
    state: SimState, sub: Obj, changes: list[tuple[Obj, Obj, int]], at: int
) -> list[Obj]:
    """Switch prices now; the proration lines for the rest of the period (by the second)."""
    start, end_at = current_period(sub)
    remaining = max(end_at - at, 0) / max(end_at - start, 1)
    when = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    lines: list[Obj] = []
    for item, price, quantity in changes:
        old_price, old_quantity = item["price"], int(item["quantity"])
        if old_price["id"] == price["id"] and old_quantity == quantity:
            continue
        credit = -round(int(old_price["unit_amount"]) * old_quantity * remaining)
        charge = round(int(price["unit_amount"]) * quantity * remaining)
        lines.append(
            _line(
                state,
                sub,
                item,
                old_price,
                old_quantity,
                (at, end_at),
                amount=credit,
                description=f"Unused time on {_product_name(state, old_price)} after {when}",
            )
        )
        lines.append(
            _line(
                state,
                sub,
                item,
                price,
                quantity,
                (at, end_at),
                amount=charge,
                description=f"Remaining time on {_product_name(state, price)} after {when}",
            )
        )
        item.update(price=copy.deepcopy(price), plan=_plan(price), quantity=quantity)
    return lines
