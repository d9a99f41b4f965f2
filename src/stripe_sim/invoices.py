"""Invoices of subscriptions, and the PaymentIntents that pay them.

Lifecycle, as Stripe's (API 2026-10-28, "basil" invoice shapes): ``draft``
(``invoice.created``) → finalized ``open`` (``invoice.finalized``; Stripe creates the
invoice's PaymentIntent then, reachable as the includable ``confirmation_secret``
and ``payments``) → ``paid`` (``invoice.paid``, ``invoice.payment_succeeded``) when
that PaymentIntent succeeds — however it was confirmed: by the browser with the
client secret, by ``POST /v1/invoices/{id}/pay``, or by an automatic attempt with the
customer's default PaymentMethod. A failed attempt leaves it ``open``
(``invoice.payment_failed``); one needing 3D Secure sends
``invoice.payment_action_required``. An open invoice may be voided
(``invoice.voided``; the customer balance it used is given back).
An invoice whose amount due is zero is paid on finalization. A negative total (a
downgrade's credit) goes to the customer's balance, which the next invoice uses.

Refunds and disputes act on the invoice's charge as on any charge.
"""

from __future__ import annotations

import copy

from . import customers, objects, payment_intents, payment_methods
from .errors import CardError, StripeApiError
from .ids import new_id
from .objects import Obj
from .params import Params, apply_metadata
from .state import RequestContext, SimState, list_query
from .store import invoice_payment

REASON_DESCRIPTIONS = {
    "subscription_create": "Subscription creation",
    "subscription_cycle": "Subscription cycle",
    "subscription_update": "Subscription update",
}


def line(
    *,
    amount: int,
    currency: str,
    description: str,
    price: Obj,
    quantity: int,
    period: tuple[int, int],
    sub_id: str,
    item_id: str,
    proration: bool,
) -> Obj:
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": sub_id,
                "subscription_item": item_id,
            },
            "type": "subscription_item_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": sub_id,
        "subtotal": amount,
        "taxes": [],
    }


def create_draft(
    state: SimState,
    *,
    cus: Obj,
    sub: Obj,
    reason: str,
    lines: list[Obj],
    period: tuple[int, int],
    now: int,
    ctx: RequestContext | None,
) -> Obj:
    inv_id = new_id("in")
    total = sum(item["amount"] for item in lines)
    for item in lines:
        item["invoice"] = inv_id
    inv: Obj = {
        "id": inv_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": None,
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": sub["currency"],
        "custom_fields": None,
        "customer": cus["id"],
        "customer_account": None,
        "customer_address": None,
        "customer_email": cus["email"],
        "customer_name": cus["name"],
        "customer_phone": cus["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": objects.list_object(lines, f"/v1/invoices/{inv_id}/lines"),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": copy.deepcopy(sub["metadata"]),
                "subscription": sub["id"],
            },
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": cus["test_clock"],
        "threshold_reason": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }
    state.store.invoices.add(inv)
    state.emit("invoice.created", inv, ctx)
    return inv


def finalize(state: SimState, inv: Obj, now: int, ctx: RequestContext | None) -> Obj:
    """``draft`` → ``open`` with its PaymentIntent, or ``paid`` when nothing is due.

    The customer's balance (a credit is negative) is applied first, as Stripe does.
    """
    cus = state.store.customers.get(inv["customer"])
    balance = int(cus["balance"])
    due = inv["total"] + balance
    inv["starting_balance"] = balance
    inv["ending_balance"] = min(due, 0)
    inv["amount_due"] = inv["amount_remaining"] = max(due, 0)
    if cus["balance"] != inv["ending_balance"]:
        previous = cus["balance"]
        cus["balance"] = inv["ending_balance"]
        state.emit("customer.updated", cus, ctx, {"balance": previous})
    inv["number"] = f"{cus['invoice_prefix']}-{cus['next_invoice_sequence']:04d}"
    cus["next_invoice_sequence"] += 1
    inv["status"] = "open"
    inv["effective_at"] = now
    inv["status_transitions"]["finalized_at"] = now
    if inv["amount_due"] > 0:
        pi = payment_intents.for_invoice(
            state,
            amount=inv["amount_due"],
            currency=inv["currency"],
            customer=cus["id"],
            description=REASON_DESCRIPTIONS.get(inv["billing_reason"], "Invoice payment"),
            ctx=ctx,
        )
        state.store.invoice_payment_intent[inv["id"]] = pi["id"]
        state.store.payment_intent_invoice[pi["id"]] = inv["id"]
        inv["next_payment_attempt"] = now + 3600 if inv["auto_advance"] else None
    state.emit("invoice.finalized", inv, ctx)
    if inv["amount_due"] == 0:
        _mark_paid(state, inv, now, ctx)
    return inv


def attempt(state: SimState, inv: Obj, pm_id: str | None, ctx: RequestContext | None) -> bool:
    """Charge an open invoice off-session with ``pm_id``; True when it is paid.

    The outcome reaches the invoice through the PaymentIntent's own transitions
    (:func:`payment_succeeded`, :func:`payment_failed`, :func:`payment_requires_action`).
    """
    if inv["status"] != "open":
        return bool(inv["status"] == "paid")
    pi = _intent_of(state, inv)
    if pm_id is None:
        # Nothing to charge: Stripe records a failed attempt, no charge.
        inv["attempted"] = True
        inv["attempt_count"] += 1
        schedule_retry(state, inv)
        state.emit("invoice.payment_failed", inv, ctx)
        _subscription_after_failure(state, inv, ctx)
        return False
    request = ctx or RequestContext(base_url=state.base_url)
    assert pi is not None  # every open invoice with an amount due has its intent
    try:
        payment_intents.confirm_for_invoice(
            state, pi, payment_methods.resolve(state, pm_id), request
        )
    except StripeApiError:
        return False
    return bool(inv["status"] == "paid")


def payment_succeeded(state: SimState, pi: Obj, ctx: RequestContext | None) -> None:
    inv = _attempted(state, pi)
    if inv is None:
        return
    from . import subscriptions, test_clocks  # they drive invoices: imported at use

    sub = _subscription_of(state, inv)
    now = test_clocks.now_for(state, inv["customer"])
    _mark_paid(state, inv, now, ctx)
    if sub is not None:
        subscriptions.invoice_paid(state, sub, inv, pi, ctx)


def payment_failed(state: SimState, pi: Obj, ctx: RequestContext | None) -> None:
    inv = _attempted(state, pi)
    if inv is None:
        return
    schedule_retry(state, inv)
    state.emit("invoice.payment_failed", inv, ctx)
    _subscription_after_failure(state, inv, ctx)


def payment_requires_action(state: SimState, pi: Obj, ctx: RequestContext | None) -> None:
    inv = _attempted(state, pi)
    if inv is None:
        return
    state.emit("invoice.payment_action_required", inv, ctx)
    _subscription_after_failure(state, inv, ctx)


def void(state: SimState, inv: Obj, now: int, ctx: RequestContext | None) -> Obj:
    if inv["status"] != "open":
        raise StripeApiError(
            f"You can only void an open invoice; this one is {inv['status']}.",
            code="invoice_not_editable" if inv["status"] != "draft" else None,
        )
    pi = _intent_of(state, inv)
    if pi is not None and pi["status"] in payment_intents.CANCELABLE:
        pi.update(status="canceled", canceled_at=state.now(), next_action=None)
        state.emit("payment_intent.canceled", pi, ctx)
    applied = int(inv["starting_balance"]) - int(inv["ending_balance"] or 0)
    if applied:  # the customer credit this invoice used goes back to the customer
        cus = state.store.customers.get(inv["customer"])
        previous = cus["balance"]
        cus["balance"] += applied
        state.emit("customer.updated", cus, ctx, {"balance": previous})
    inv["status"] = "void"
    inv["amount_remaining"] = 0
    inv["next_payment_attempt"] = None
    inv["status_transitions"]["voided_at"] = now
    state.emit("invoice.voided", inv, ctx)
    state.emit("invoice.updated", inv, ctx, {"status": "open"})
    return inv


# ---- the /v1 endpoints ----


def retrieve(state: SimState, inv_id: str, p: Params) -> Obj:
    p.finish()
    return state.store.invoices.get(inv_id, "invoice")


def list_all(state: SimState, p: Params) -> Obj:
    query = list_query(p)
    cus_id = p.text("customer")
    sub_id = p.text("subscription")
    status = p.text("status", choices=("draft", "open", "paid", "uncollectible", "void"))
    p.ignore("collection_method")
    p.finish()
    return state.store.invoices.page(
        query,
        lambda i: (
            (sub_id is None or _sub_id(i) == sub_id) and (not status or i["status"] == status)
        ),
        customer=cus_id,
    )


def lines_of(state: SimState, inv_id: str, p: Params) -> Obj:
    inv = state.store.invoices.get(inv_id, "invoice")
    p.ignore("limit", "starting_after", "ending_before")
    p.finish()
    lines: Obj = copy.deepcopy(inv["lines"])
    return lines


def update(state: SimState, inv_id: str, p: Params, ctx: RequestContext) -> Obj:
    inv = state.store.invoices.get(inv_id, "invoice")
    metadata = p.metadata()
    description = p.text("description")
    auto_advance = p.boolean("auto_advance")
    p.finish()
    before = copy.deepcopy(inv)
    inv["metadata"] = apply_metadata(inv["metadata"], metadata)
    if description is not None:
        inv["description"] = description or None
    if auto_advance is not None:
        inv["auto_advance"] = auto_advance
    changed = {k: v for k, v in before.items() if inv.get(k) != v}
    if changed:
        state.emit("invoice.updated", inv, ctx, changed)
    return inv


def pay(state: SimState, inv_id: str, p: Params, ctx: RequestContext) -> Obj:
    """``POST /v1/invoices/{id}/pay``: charge now (off-session unless ``off_session=false``)
    with ``payment_method``, else the subscription's or customer's default."""
    inv = state.store.invoices.get(inv_id, "invoice")
    pm_ref = p.text("payment_method") or None
    off_session = p.boolean("off_session")
    out_of_band = p.boolean("paid_out_of_band") or False
    p.ignore("forgive", "mandate", "source")
    p.finish()
    if inv["status"] == "paid":
        raise StripeApiError("Invoice is already paid", code="invoice_already_paid")
    if inv["status"] != "open":
        raise StripeApiError(
            f"You can only pay an open invoice; this one is {inv['status']}.",
            code="invoice_not_editable",
        )
    from . import subscriptions, test_clocks

    now = test_clocks.now_for(state, inv["customer"])
    if out_of_band:
        pi = _intent_of(state, inv)
        if pi is not None and pi["status"] in payment_intents.CANCELABLE:
            pi.update(status="canceled", canceled_at=state.now(), next_action=None)
            state.emit("payment_intent.canceled", pi, ctx)
        _mark_paid(state, inv, now, ctx, out_of_band=True)
        sub = _subscription_of(state, inv)
        if sub is not None:
            subscriptions.invoice_paid(state, sub, inv, None, ctx)
        return inv
    sub = _subscription_of(state, inv)
    pm_id = pm_ref or (subscriptions.payment_method_for(state, sub) if sub else None)
    pm_id = pm_id or customers.default_payment_method(state, inv["customer"])
    if pm_id is None:
        raise StripeApiError(
            "This customer has no attached payment source or default payment method.",
            param="payment_method",
        )
    pi = _intent_of(state, inv)
    assert pi is not None
    payment_intents.confirm_for_invoice(
        state,
        pi,
        payment_methods.resolve(state, pm_id),
        ctx,
        off_session=off_session is not False,
    )
    if pi["status"] == "requires_action":
        raise CardError(
            "This payment requires additional user action before it can be completed "
            "successfully. Payment can be completed using the PaymentIntent associated "
            "with the invoice (its confirmation_secret).",
            code="invoice_payment_intent_requires_action",
            extra={"payment_intent": copy.deepcopy(pi)},
        )
    return inv


def void_endpoint(state: SimState, inv_id: str, p: Params, ctx: RequestContext) -> Obj:
    p.finish()
    from . import test_clocks

    inv = state.store.invoices.get(inv_id, "invoice")
    return void(state, inv, test_clocks.now_for(state, inv["customer"]), ctx)


def list_invoice_payments(state: SimState, p: Params) -> Obj:
    """``GET /v1/invoice_payments?invoice=`` or ``?payment[payment_intent]=``."""
    inv_id = p.text("invoice")
    payment = p.nested("payment")
    pi_id = payment.text("payment_intent") if payment else None
    if payment:
        payment.text("type", choices=("payment_intent",))
    p.ignore("limit", "starting_after", "ending_before", "status")
    p.finish()
    found = []
    for invoice_id, intent_id in state.store.invoice_payment_intent.items():
        if inv_id is not None and invoice_id != inv_id:
            continue
        if pi_id is not None and intent_id != pi_id:
            continue
        inv = state.store.invoices.get(invoice_id)
        found.append(invoice_payment(inv, state.store.payment_intents.get(intent_id)))
    return objects.list_object(found, "/v1/invoice_payments")


# ---- helpers ----


def schedule_retry(state: SimState, inv: Obj) -> None:
    """After a failed attempt: the next automatic one by the account's retry schedule
    (``invoice_retry_days``, days after this attempt), or none when the schedule is used
    up or the invoice is a subscription's first (the page pays that one)."""
    from . import test_clocks

    retries = state.invoice_retry_days
    made = int(inv["attempt_count"]) - 1  # retries made so far (the first is no retry)
    if _sub_id(inv) is None or inv["billing_reason"] == "subscription_create" or made >= len(
        retries
    ):
        inv["next_payment_attempt"] = None
        return
    now = test_clocks.now_for(state, inv["customer"])
    inv["next_payment_attempt"] = now + retries[made] * 86400


def retries_exhausted(state: SimState, inv: Obj) -> bool:
    """The account retries failed renewals and this invoice's last retry failed."""
    return bool(state.invoice_retry_days) and int(inv["attempt_count"]) > len(
        state.invoice_retry_days
    )


def _mark_paid(
    state: SimState,
    inv: Obj,
    now: int,
    ctx: RequestContext | None,
    *,
    out_of_band: bool = False,
) -> None:
    paid = inv["amount_due"]
    inv.update(status="paid", amount_paid=paid, amount_remaining=0, next_payment_attempt=None)
    if out_of_band:
        inv["amount_paid_off_stripe"] = paid
    inv["status_transitions"]["paid_at"] = now
    state.emit("invoice.updated", inv, ctx, {"status": "open"})
    state.emit("invoice.paid", inv, ctx)
    state.emit("invoice.payment_succeeded", inv, ctx)


def _subscription_after_failure(state: SimState, inv: Obj, ctx: RequestContext | None) -> None:
    from . import subscriptions

    sub = _subscription_of(state, inv)
    if sub is not None:
        subscriptions.invoice_failed(state, sub, inv, ctx)


def _attempted(state: SimState, pi: Obj) -> Obj | None:
    """The open invoice ``pi`` pays, its attempt counted; None when it pays none open."""
    inv = _invoice_of(state, pi)
    if inv is None or inv["status"] != "open":
        return None
    inv["attempted"] = True
    inv["attempt_count"] += 1
    return inv


def _invoice_of(state: SimState, pi: Obj) -> Obj | None:
    inv_id = state.store.payment_intent_invoice.get(pi["id"])
    return state.store.invoices.find(inv_id) if inv_id else None


def _intent_of(state: SimState, inv: Obj) -> Obj | None:
    pi_id = state.store.invoice_payment_intent.get(inv["id"])
    return state.store.payment_intents.find(pi_id) if pi_id else None


def _sub_id(inv: Obj) -> str | None:
    details = (inv["parent"] or {}).get("subscription_details") or {}
    value = details.get("subscription")
    return value if isinstance(value, str) else None


def _subscription_of(state: SimState, inv: Obj) -> Obj | None:
    sub_id = _sub_id(inv)
    return state.store.subscriptions.find(sub_id) if sub_id else None
