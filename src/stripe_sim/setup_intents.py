"""SetupIntents: save a PaymentMethod for later, authenticating it now.

Status machine, as Stripe's: ``requires_payment_method`` → (payment method given)
``requires_confirmation`` → (confirm) ``succeeded`` | ``requires_action`` (3D Secure)
| back to ``requires_payment_method`` with ``last_setup_error`` (the card check
declined); ``requires_action`` → (customer completes) ``succeeded`` | (fails)
``requires_payment_method``; any unfinished intent → ``canceled``.

On success the PaymentMethod is attached to the intent's customer and counts as set
up: 4000 0025 0000 3155 then pays off-session without 3D Secure.
"""

from __future__ import annotations

import copy

from . import customers, intents, objects, payment_methods
from .cards import Behaviour, card_for
from .errors import (
    CardError,
    ParameterMissing,
    PaymentIntentUnexpectedState,
    StripeApiError,
)
from .intents import (
    check_awaits_challenge,
    check_client_secret,
    fail_authentication,
    three_d_secure_action,
)
from .objects import Obj
from .params import Params, apply_metadata
from .state import RequestContext, SimState, list_filtered

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def create(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    cus_id = p.text("customer") or None
    pm_ref = p.text("payment_method") or None
    confirm = p.boolean("confirm") or False
    usage = p.text("usage", choices=("on_session", "off_session")) or "off_session"
    description = p.text("description") or None
    metadata = apply_metadata({}, p.metadata())
    types = p.str_list("payment_method_types")
    automatic = p.nested("automatic_payment_methods")
    enabled = automatic.boolean("enabled") if automatic else None
    if automatic:
        automatic.text("allow_redirects", choices=("always", "never"))
    return_url = p.text("return_url") or None
    use_sdk = p.boolean("use_stripe_sdk") or False
    p.ignore("payment_method_options", "mandate_data", "single_use", "flow_directions")
    p.finish()
    cus = customers.live(state, cus_id) if cus_id else None
    pm = payment_methods.resolve(state, pm_ref) if pm_ref else None
    seti = objects.setup_intent(
        created=state.now(),
        customer=cus["id"] if cus else None,
        description=description,
        metadata=metadata,
        usage=usage,
        payment_method_types=types,
        automatic_payment_methods={"allow_redirects": "always", "enabled": True}
        if enabled or (automatic is None and types is None)
        else None,
    )
    if pm is not None:
        seti.update(payment_method=pm["id"], status="requires_confirmation")
    state.store.setup_intents.add(seti)
    state.emit("setup_intent.created", seti, ctx)
    if confirm:
        return _confirm(state, seti, pm, return_url, use_sdk, ctx)
    return seti


def retrieve(state: SimState, seti_id: str, p: Params, ctx: RequestContext) -> Obj:
    return intents.retrieve(state.store.setup_intents, seti_id, p, ctx)


def update(state: SimState, seti_id: str, p: Params, ctx: RequestContext) -> Obj:
    seti = state.store.setup_intents.get(seti_id, "intent")
    metadata = p.metadata()
    description = p.text("description")
    pm_ref = p.text("payment_method") or None
    cus_id = p.text("customer") or None
    p.ignore("payment_method_options")
    p.finish()
    seti["metadata"] = apply_metadata(seti["metadata"], metadata)
    if description is not None:
        seti["description"] = description or None
    if cus_id:
        seti["customer"] = customers.live(state, cus_id)["id"]
    if pm_ref:
        _require_confirmable(seti, "update")
        seti.update(
            payment_method=payment_methods.resolve(state, pm_ref)["id"],
            status="requires_confirmation",
        )
    return seti


def confirm(state: SimState, seti_id: str, p: Params, ctx: RequestContext) -> Obj:
    seti = state.store.setup_intents.get(seti_id, "intent")
    client_secret = p.text("client_secret")
    pm_ref = p.text("payment_method") or None
    raw_pm_data = p.raw("payment_method_data")
    return_url = p.text("return_url") or None
    use_sdk = p.boolean("use_stripe_sdk") or False
    p.ignore(
        "payment_method_options",
        "mandate_data",
        "expected_payment_method_type",
        *payment_methods.STRIPE_JS_NOISE,
    )
    p.finish()
    check_client_secret(seti, client_secret, ctx)
    pm = payment_methods.for_confirm(state, raw_pm_data, pm_ref)
    return _confirm(state, seti, pm, return_url, use_sdk, ctx)


def cancel(state: SimState, seti_id: str, p: Params, ctx: RequestContext) -> Obj:
    seti = state.store.setup_intents.get(seti_id, "intent")
    reason = p.text(
        "cancellation_reason", choices=("abandoned", "duplicate", "requested_by_customer")
    )
    p.finish()
    _require_confirmable(seti, "cancel")
    seti.update(status="canceled", cancellation_reason=reason or None, next_action=None)
    state.emit("setup_intent.canceled", seti, ctx)
    return seti


def list_all(state: SimState, p: Params) -> Obj:
    p.ignore("attach_to_self")
    return list_filtered(state.store.setup_intents, p, "customer", "payment_method")


def authenticate(
    state: SimState, seti_id: str, outcome: str, client_secret: str | None, ctx: RequestContext
) -> Obj:
    """The customer's answer to the 3D Secure challenge: ``complete`` or ``fail``."""
    seti = state.store.setup_intents.get(seti_id, "intent")
    check_awaits_challenge(
        seti,
        client_secret,
        lambda message: StripeApiError(message, code="setup_intent_unexpected_state"),
    )
    pm = payment_methods.resolve(state, seti["payment_method"])
    if outcome == "complete":
        return _succeed(state, seti, pm, ctx)
    return fail_authentication(
        state,
        seti,
        pm,
        ctx,
        error_field="last_setup_error",
        code="setup_intent_authentication_failure",
        message="The latest attempt to set up the payment method has failed because "
        "authentication failed.",
        event="setup_intent.setup_failed",
    )


def _confirm(
    state: SimState,
    seti: Obj,
    pm: Obj | None,
    return_url: str | None,
    use_sdk: bool,
    ctx: RequestContext,
) -> Obj:
    _require_confirmable(seti, "confirm")
    if pm is None and seti["payment_method"]:
        pm = payment_methods.resolve(state, seti["payment_method"])
    if pm is None:
        raise ParameterMissing("payment_method")
    if pm["customer"] is not None and pm["customer"] != seti["customer"]:
        raise StripeApiError(
            f"The provided PaymentMethod {pm['id']} belongs to another Customer.",
            code="setup_intent_invalid_parameter",
            param="payment_method",
        )
    seti.update(payment_method=pm["id"], last_setup_error=None, next_action=None)
    if pm["type"] != "card":
        return _succeed(state, seti, pm, ctx)
    card = card_for(payment_methods.card_number(state, pm))
    if card.behaviour in (Behaviour.AUTHENTICATE, Behaviour.AUTHENTICATE_UNLESS_SET_UP):
        return _require_action(state, seti, return_url, use_sdk, ctx)
    if card.behaviour is Behaviour.DECLINE and card.decline is not None:
        decline = card.decline
        error = CardError(
            decline.message,
            code=decline.code,
            decline_code=decline.decline_code,
            param=decline.param,
            extra={"payment_method": copy.deepcopy(pm)},
        )
        seti.update(
            status="requires_payment_method",
            payment_method=None,
            last_setup_error=error.body()["error"],
        )
        state.emit("setup_intent.setup_failed", seti, ctx)
        error.extra["setup_intent"] = copy.deepcopy(seti)
        raise error
    return _succeed(state, seti, pm, ctx)


def _succeed(state: SimState, seti: Obj, pm: Obj, ctx: RequestContext) -> Obj:
    if seti["customer"]:
        customers.attach(state, state.store.customers.get(seti["customer"]), pm, ctx)
    state.store.set_up_payment_methods.add(pm["id"])
    seti.update(status="succeeded", next_action=None, last_setup_error=None)
    state.emit("setup_intent.succeeded", seti, ctx)
    return seti


def _require_action(
    state: SimState, seti: Obj, return_url: str | None, use_sdk: bool, ctx: RequestContext
) -> Obj:
    next_action = three_d_secure_action(seti, return_url, use_sdk, ctx)
    seti.update(status="requires_action", next_action=next_action)
    state.emit("setup_intent.requires_action", seti, ctx)
    return seti


def _require_confirmable(seti: Obj, verb: str) -> None:
    if seti["status"] not in CONFIRMABLE:
        raise PaymentIntentUnexpectedState(
            f"You cannot {verb} this SetupIntent because it has a status of {seti['status']}.",
            code="setup_intent_unexpected_state",
            extra={"setup_intent": copy.deepcopy(seti)},
        )
