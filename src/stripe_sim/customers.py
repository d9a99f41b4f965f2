"""Customers and the PaymentMethods saved to them.

As Stripe's: a Customer holds PaymentMethods (``payment_method.attached`` /
``detached``) and names one of them ``invoice_settings.default_payment_method``,
which invoices and subscriptions charge when they have none of their own. A
customer may live on a test clock (``test_clock``); its subscriptions then follow
that clock's time. Deleting a customer cancels its subscriptions and detaches its
PaymentMethods.
"""

from __future__ import annotations

import copy

from . import objects, payment_methods, search
from .cards import Behaviour, card_for
from .errors import CardError, ResourceMissing, StripeApiError
from .objects import Obj
from .params import Params, apply_metadata
from .state import RequestContext, SimState, list_filtered, list_query


def create(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    email = p.text("email") or None
    name = p.text("name") or None
    description = p.text("description") or None
    phone = p.text("phone") or None
    metadata = apply_metadata({}, p.metadata())
    clock_id = p.text("test_clock") or None
    pm_ref = p.text("payment_method") or None
    settings = p.nested("invoice_settings")
    default_pm = settings.text("default_payment_method") if settings else None
    p.ignore("address", "shipping", "preferred_locales", "tax_exempt", "tax", "source")
    p.finish()
    clock = state.store.test_clocks.get(clock_id, "test_clock") if clock_id else None
    if clock is not None and clock["status"] == "internal_failure":
        raise StripeApiError("This test clock has failed.", param="test_clock")
    created = clock["frozen_time"] if clock is not None else state.now()
    cus = objects.customer(
        created=created,
        email=email,
        name=name,
        description=description,
        phone=phone,
        metadata=metadata,
        test_clock=clock["id"] if clock else None,
    )
    state.store.customers.add(cus)
    state.emit("customer.created", cus, ctx)
    if pm_ref:
        pm = attach(state, cus, payment_methods.resolve(state, pm_ref), ctx)
        if default_pm == pm_ref:
            default_pm = pm["id"]
    if default_pm:
        _set_default(state, cus, default_pm, ctx, emit=False)
    return cus


def retrieve(state: SimState, cus_id: str, p: Params) -> Obj:
    p.finish()
    cus = state.store.customers.get(cus_id)
    if cus_id in state.store.deleted:
        return objects.deleted(cus)
    return cus


def update(state: SimState, cus_id: str, p: Params, ctx: RequestContext) -> Obj:
    cus = live(state, cus_id, "id")
    before = copy.deepcopy(cus)
    for key in ("email", "name", "description", "phone"):
        value = p.text(key)
        if value is not None:
            cus[key] = value or None
    cus["metadata"] = apply_metadata(cus["metadata"], p.metadata())
    settings = p.nested("invoice_settings")
    default_pm = settings.text("default_payment_method") if settings else None
    balance = p.integer("balance")
    p.ignore("address", "shipping", "preferred_locales", "tax_exempt", "source")
    p.finish()
    if balance is not None:
        cus["balance"] = balance
    if default_pm is not None:
        _set_default(state, cus, default_pm, ctx, emit=False)
    changed = {k: v for k, v in before.items() if cus.get(k) != v}
    if changed:
        state.emit("customer.updated", cus, ctx, changed)
    return cus


def delete(state: SimState, cus_id: str, p: Params, ctx: RequestContext) -> Obj:
    p.finish()
    cus = live(state, cus_id, "id")
    remove(state, cus, ctx)
    return objects.deleted(cus)


def remove(state: SimState, cus: Obj, ctx: RequestContext | None) -> None:
    """Delete a customer: its subscriptions end and its PaymentMethods are detached."""
    from . import subscriptions  # subscriptions need customers: imported here, not above

    for sub in state.store.subscriptions.all():
        if sub["customer"] == cus["id"] and sub["status"] not in subscriptions.ENDED:
            subscriptions.end(state, sub, ctx)
    for pm in state.store.payment_methods.all():
        if pm["customer"] == cus["id"]:
            pm["customer"] = None
            state.emit("payment_method.detached", pm, ctx, {"customer": cus["id"]})
    state.store.deleted.add(cus["id"])
    state.emit("customer.deleted", cus, ctx)


def list_all(state: SimState, p: Params) -> Obj:
    return list_filtered(
        state.store.customers, p, "email", "test_clock", keep=state.store.not_deleted
    )


def search_customers(state: SimState, p: Params) -> Obj:
    fields = ("email", "name", "phone")
    return search.search(state.store.customers, p, fields, state.store.not_deleted)


def live(state: SimState, cus_id: str, param: str = "customer") -> Obj:
    """A customer that exists and is not deleted, or Stripe's ``resource_missing``."""
    cus = state.store.customers.get(cus_id, param)
    if cus_id in state.store.deleted:
        raise ResourceMissing("customer", cus_id, param)
    return cus


def attach(state: SimState, cus: Obj, pm: Obj, ctx: RequestContext | None) -> Obj:
    """Save ``pm`` to ``cus`` (a card check first: declining test cards fail here,
    except 4000 0000 0000 0341, which attaches and then declines every charge)."""
    if pm["customer"] == cus["id"]:
        return pm
    if pm["customer"] is not None:
        raise StripeApiError(
            "The payment method you provided has already been attached to a customer.",
            code="payment_method_unexpected_state",
            param="payment_method",
        )
    if pm["type"] == "card":
        card = card_for(payment_methods.card_number(state, pm))
        if card.behaviour is Behaviour.DECLINE and card.decline is not None:
            raise CardError(
                card.decline.message,
                code=card.decline.code,
                decline_code=card.decline.decline_code,
                param=card.decline.param,
            )
    pm["customer"] = cus["id"]
    state.emit("payment_method.attached", pm, ctx)
    return pm


def detach(state: SimState, pm: Obj, ctx: RequestContext) -> Obj:
    if pm["customer"] is None:
        raise StripeApiError(
            f"The payment method {pm['id']} is not attached to a customer.",
            code="payment_method_unexpected_state",
            param="payment_method",
        )
    cus = state.store.customers.get(pm["customer"])
    pm["customer"] = None
    settings = cus["invoice_settings"]
    if settings["default_payment_method"] == pm["id"]:
        settings["default_payment_method"] = None
        state.emit(
            "customer.updated",
            cus,
            ctx,
            {"invoice_settings": {**settings, "default_payment_method": pm["id"]}},
        )
    state.emit("payment_method.detached", pm, ctx, {"customer": cus["id"]})
    return pm


def payment_methods_of(state: SimState, cus_id: str, p: Params) -> Obj:
    live(state, cus_id, "customer")
    query = list_query(p)
    pm_type = p.text("type")
    p.ignore("allow_redisplay")
    p.finish()
    page = state.store.payment_methods.page(query, customer=cus_id, type=pm_type)
    page["url"] = f"/v1/customers/{cus_id}/payment_methods"
    return page


def payment_method_of(state: SimState, cus_id: str, pm_id: str, p: Params) -> Obj:
    p.finish()
    live(state, cus_id, "customer")
    pm = state.store.payment_methods.get(pm_id, "payment_method")
    if pm["customer"] != cus_id:
        raise ResourceMissing("PaymentMethod", pm_id, "payment_method")
    return pm


def default_payment_method(state: SimState, cus_id: str) -> str | None:
    cus = state.store.customers.find(cus_id)
    if cus is None:
        return None
    value = cus["invoice_settings"]["default_payment_method"]
    return value if isinstance(value, str) else None


def _set_default(state: SimState, cus: Obj, pm_id: str, ctx: RequestContext, *, emit: bool) -> None:
    if pm_id:
        pm = state.store.payment_methods.get(pm_id, "invoice_settings[default_payment_method]")
        if pm["customer"] != cus["id"]:
            raise StripeApiError(
                f"No such PaymentMethod: '{pm_id}'; It does not belong to this customer.",
                code="resource_missing",
                param="invoice_settings[default_payment_method]",
            )
    before = copy.deepcopy(cus["invoice_settings"])
    cus["invoice_settings"]["default_payment_method"] = pm_id or None
    if emit:
        state.emit("customer.updated", cus, ctx, {"invoice_settings": before})


def attach_endpoint(state: SimState, pm_id: str, p: Params, ctx: RequestContext) -> Obj:
    """``POST /v1/payment_methods/{id}/attach`` (a test id like ``pm_card_visa`` makes a
    new PaymentMethod and attaches that, as on Stripe)."""
    cus_id = p.text("customer", required=True) or ""
    p.finish()
    cus = live(state, cus_id)
    return attach(state, cus, payment_methods.resolve(state, pm_id, "payment_method"), ctx)


def detach_endpoint(state: SimState, pm_id: str, p: Params, ctx: RequestContext) -> Obj:
    p.finish()
    return detach(state, state.store.payment_methods.get(pm_id, "payment_method"), ctx)


def list_payment_methods(state: SimState, p: Params) -> Obj:
    """``GET /v1/payment_methods?customer=…&type=…``."""
    query = list_query(p)
    cus_id = p.text("customer")
    pm_type = p.text("type")
    p.ignore("allow_redisplay")
    p.finish()
    if cus_id is not None:
        live(state, cus_id)
    return state.store.payment_methods.page(query, customer=cus_id, type=pm_type)
