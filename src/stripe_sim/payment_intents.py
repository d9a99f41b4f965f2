"""PaymentIntents: create, update, confirm (test cards decide), 3D Secure, cancel.

Status machine, as Stripe's:
``requires_payment_method`` → (payment method attached) ``requires_confirmation``
→ (confirm) ``succeeded`` | ``requires_action`` (3D Secure) | back to
``requires_payment_method`` with ``last_payment_error`` (decline);
``requires_action`` → (customer completes) ``succeeded`` | (fails)
``requires_payment_method``; any unfinished intent → ``canceled``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NoReturn

from . import (
    bank_debits,
    charges,
    customers,
    disputes,
    fraud_warnings,
    intents,
    invoices,
    objects,
    payment_methods,
)
from .cards import AUTHENTICATION_REQUIRED, Behaviour, Decline, card_for
from .errors import (
    AmountTooLarge,
    AmountTooSmall,
    CardError,
    ClientSecretMismatch,
    FeatureNotSimulated,
    ParameterInvalid,
    ParameterMissing,
    PaymentIntentUnexpectedState,
    ResourceMissing,
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

MIN_AMOUNTS = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "cad": 50,
    "aud": 50,
    "nzd": 50,
    "chf": 50,
    "sgd": 50,
    "jpy": 50,
    "inr": 50,
    "brl": 50,
    "sek": 300,
    "nok": 300,
    "dkk": 250,
    "pln": 200,
    "hkd": 400,
    "mxn": 1000,
    "cny": 400,
    "czk": 1500,
    "huf": 17500,
}
MAX_AMOUNT = 99_999_999
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
SIMULATED_TYPES = ("card", "sepa_debit", "us_bank_account")
BANK_DEBITS = ("sepa_debit", "us_bank_account")
CANCELABLE = (*CONFIRMABLE, "requires_capture", "processing")
INVOICE_DEBITS = {"eur": ["sepa_debit"], "usd": ["us_bank_account"]}
AUTH_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this "
    "PaymentIntent again."
)
# Parameters of real features the simulator does not model: refuse them loudly
# rather than pretend, so code that depends on them is noticed.
UNSIMULATED = (
    "on_behalf_of",
    "transfer_data",
    "transfer_group",
    "application_fee_amount",
    "shipping",
    "mandate",
    "payment_method_configuration",
)


@dataclass
class ConfirmOptions:
    payment_method: Obj | None = None
    return_url: str | None = None
    use_stripe_sdk: bool = False
    off_session: bool = False
    error_on_requires_action: bool = False
    receipt_email: str | None = None
    mandate_accepted: bool = False  # mandate_data[customer_acceptance][type] given
    # Stripe Billing's automatic charges: a card needing 3D Secure leaves the intent
    # ``requires_action`` (invoice.payment_action_required) instead of declining.
    action_when_off_session: bool = False


def create(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    amount = p.integer("amount", required=True)
    currency = (p.text("currency", required=True) or "").lower()
    assert amount is not None
    _check_amount(amount, currency)
    metadata = apply_metadata({}, p.metadata())
    description = p.text("description") or None
    receipt_email = p.text("receipt_email") or None
    automatic, types = _payment_method_choice(p)
    pm_ref = p.text("payment_method") or None
    confirm = p.boolean("confirm") or False
    cus_id = p.text("customer") or None
    future_usage = _setup_future_usage(p)
    _refuse_unsimulated(p)
    descriptors = _descriptors(p)
    options = _confirm_options(p)
    p.ignore("payment_method_options", "radar_options")
    p.finish()
    if options.off_session and not confirm:
        raise ParameterInvalid("off_session can only be used when confirm=true.", "off_session")
    cus = customers.live(state, cus_id) if cus_id else None
    pm = payment_methods.resolve(state, pm_ref) if pm_ref else None

    pi = objects.payment_intent(
        amount=amount,
        currency=currency,
        created=state.now(),
        metadata=metadata,
        description=description,
        receipt_email=receipt_email,
        payment_method_types=types,
        automatic_payment_methods=automatic,
    )
    pi.update(descriptors)
    pi["customer"] = cus["id"] if cus else None
    pi["setup_future_usage"] = future_usage or None
    if pm is not None:
        pi["payment_method"] = pm["id"]
        pi["status"] = "requires_confirmation"
    state.store.payment_intents.add(pi)
    state.emit("payment_intent.created", pi, ctx)
    if confirm:
        options.payment_method = pm
        return _confirm(state, pi, options, ctx)
    return pi


def for_invoice(
    state: SimState,
    *,
    amount: int,
    currency: str,
    customer: str,
    description: str,
    ctx: RequestContext | None,
) -> Obj:
    """The PaymentIntent Stripe creates when it finalizes an invoice."""
    pi = objects.payment_intent(
        amount=amount,
        currency=currency,
        created=state.now(),
        metadata={},
        description=description,
        receipt_email=None,
        # what an account with cards and the bank debits of the currency enabled offers
        payment_method_types=["card", *INVOICE_DEBITS.get(currency, [])],
        automatic_payment_methods=None,
    )
    pi.update(customer=customer, setup_future_usage="off_session")
    state.store.payment_intents.add(pi)
    state.emit("payment_intent.created", pi, ctx)
    return pi


def confirm_for_invoice(
    state: SimState,
    pi: Obj,
    pm: Obj,
    ctx: RequestContext,
    *,
    off_session: bool = True,
) -> Obj:
    """Charge an invoice's intent as Stripe Billing does (declines raise ``CardError``)."""
    options = ConfirmOptions(
        payment_method=pm,
        off_session=off_session,
        action_when_off_session=True,
        mandate_accepted=True,  # a saved debit PaymentMethod carries its mandate
    )
    return _confirm(state, pi, options, ctx)


def retrieve(state: SimState, pi_id: str, p: Params, ctx: RequestContext) -> Obj:
    return intents.retrieve(state.store.payment_intents, pi_id, p, ctx)


def update(state: SimState, pi_id: str, p: Params, ctx: RequestContext) -> Obj:
    pi = state.store.payment_intents.get(pi_id, "intent")
    amount = p.integer("amount")
    currency = p.text("currency")
    metadata = p.metadata()
    description = p.text("description")
    receipt_email = p.text("receipt_email")
    pm_ref = p.text("payment_method")
    types = p.str_list("payment_method_types")
    cus_id = p.text("customer")
    future_usage = _setup_future_usage(p)
    _refuse_unsimulated(p)
    descriptors = _descriptors(p)
    p.ignore("payment_method_options")
    p.finish()
    if cus_id:
        pi["customer"] = customers.live(state, cus_id)["id"]
    if future_usage is not None:
        pi["setup_future_usage"] = future_usage or None

    money_change = amount is not None or currency is not None or pm_ref or types is not None
    if money_change and pi["status"] not in CONFIRMABLE:
        raise PaymentIntentUnexpectedState(
            f"This PaymentIntent's amount, currency or payment method could not be updated "
            f"because it has a status of {pi['status']}. You may only update them on a "
            f"PaymentIntent with one of the following statuses: {', '.join(CONFIRMABLE)}.",
            extra={"payment_intent": copy.deepcopy(pi)},
        )
    new_amount = amount if amount is not None else pi["amount"]
    new_currency = currency.lower() if currency else pi["currency"]
    _check_amount(new_amount, new_currency)
    pm = payment_methods.resolve(state, pm_ref) if pm_ref else None
    if types is not None:
        _check_types(types)
        pi["payment_method_types"] = types

    pi["amount"], pi["currency"] = new_amount, new_currency
    pi["metadata"] = apply_metadata(pi["metadata"], metadata)
    if description is not None:
        pi["description"] = description or None
    if receipt_email is not None:
        pi["receipt_email"] = receipt_email or None
    pi.update(descriptors)
    if pm is not None:
        pi["payment_method"] = pm["id"]
    if money_change and pi["status"] == "requires_action":
        # A changed intent must be confirmed (and authenticated) again, as on Stripe.
        pi["status"], pi["next_action"] = "requires_confirmation", None
    elif pm is not None:
        pi["status"] = "requires_confirmation"
    return pi


def confirm(state: SimState, pi_id: str, p: Params, ctx: RequestContext) -> Obj:
    pi = state.store.payment_intents.get(pi_id, "intent")
    client_secret = p.text("client_secret")
    pm_ref = p.text("payment_method") or None
    # payment_method_data is checked by PaymentMethod creation, after the secret.
    raw_pm_data = p.raw("payment_method_data")
    options = _confirm_options(p)
    options.receipt_email = p.text("receipt_email") or None
    future_usage = _setup_future_usage(p)
    p.ignore(
        "payment_method_options",
        "radar_options",
        "expected_payment_method_type",
        "shipping",
        *payment_methods.STRIPE_JS_NOISE,
    )
    p.finish()
    check_client_secret(pi, client_secret, ctx)
    if future_usage is not None and pi["status"] in CONFIRMABLE:
        pi["setup_future_usage"] = future_usage or None
    options.payment_method = payment_methods.for_confirm(state, raw_pm_data, pm_ref)
    return _confirm(state, pi, options, ctx)


def cancel(state: SimState, pi_id: str, p: Params, ctx: RequestContext) -> Obj:
    pi = state.store.payment_intents.get(pi_id, "intent")
    reason = p.text(
        "cancellation_reason",
        choices=("duplicate", "fraudulent", "requested_by_customer", "abandoned"),
    )
    p.finish()
    if pi["status"] not in CANCELABLE:
        raise PaymentIntentUnexpectedState(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. "
            f"Only a PaymentIntent with one of the following statuses may be canceled: "
            f"{', '.join(CANCELABLE)}.",
            extra={"payment_intent": copy.deepcopy(pi)},
        )
    pi.update(
        status="canceled",
        canceled_at=state.now(),
        cancellation_reason=reason or None,
        next_action=None,
    )
    state.emit("payment_intent.canceled", pi, ctx)
    return pi


def list_all(state: SimState, p: Params) -> Obj:
    return list_filtered(state.store.payment_intents, p, "customer")


def authenticate(
    state: SimState, pi_id: str, outcome: str, client_secret: str | None, ctx: RequestContext
) -> Obj:
    """The customer's answer to the 3D Secure challenge: ``complete`` or ``fail``."""
    pi = state.store.payment_intents.get(pi_id, "intent")
    check_awaits_challenge(
        pi,
        client_secret,
        lambda message: PaymentIntentUnexpectedState(
            message, extra={"payment_intent": copy.deepcopy(pi)}
        ),
    )
    pm = payment_methods.resolve(state, pi["payment_method"])
    if outcome == "complete":
        return _succeed(state, pi, pm, ctx, objects.three_d_secure_result())
    return fail_authentication(
        state,
        pi,
        pm,
        ctx,
        error_field="last_payment_error",
        code="payment_intent_authentication_failure",
        message=AUTH_FAILURE_MESSAGE,
        event="payment_intent.payment_failed",
    )


def challenge_complete(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    """``POST /v1/3ds2/challenge_complete``: what the Stripe.js stand-in calls once the
    customer answered the challenge (publishable key + the intent's client secret).

    ``outcome`` (``complete`` | ``fail``) is the stand-in's own parameter: on Stripe the
    answer comes from the bank's page instead.
    """
    source = p.text("source") or None
    client_secret = p.text("client_secret", required=True) or ""
    outcome = p.text("outcome", choices=("complete", "fail")) or "complete"
    p.finish()
    intent_id = client_secret.split("_secret_")[0]
    store = state.store
    intents = store.setup_intents if intent_id.startswith("seti_") else store.payment_intents
    pi = intents.find(intent_id)
    if pi is None or pi["client_secret"] != client_secret:
        raise ClientSecretMismatch()
    sdk = (pi["next_action"] or {}).get("use_stripe_sdk") or {}
    if source is not None and source != sdk.get("source"):
        raise ResourceMissing("source", source, "source")
    if pi["object"] == "setup_intent":
        from . import setup_intents  # SetupIntents confirm through PaymentMethods too

        return setup_intents.authenticate(state, pi["id"], outcome, client_secret, ctx)
    return authenticate(state, pi["id"], outcome, client_secret, ctx)


def _confirm(state: SimState, pi: Obj, options: ConfirmOptions, ctx: RequestContext) -> Obj:
    if pi["status"] not in CONFIRMABLE:
        raise PaymentIntentUnexpectedState(
            f"You cannot confirm this PaymentIntent because it has a status of {pi['status']}.",
            extra={"payment_intent": copy.deepcopy(pi)},
        )
    pm = options.payment_method
    if pm is None and pi["payment_method"]:
        pm = payment_methods.resolve(state, pi["payment_method"])
    if pm is None:
        raise PaymentIntentUnexpectedState(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update the PaymentIntent with a payment method and then confirm it again.",
            param="payment_method",
            extra={"payment_intent": copy.deepcopy(pi)},
        )
    _require_return_url(pi, options, ctx)
    _check_owner(pi, pm)
    if pm["type"] in BANK_DEBITS:
        return _start_bank_debit(state, pi, pm, options, ctx)
    pi.update(payment_method=pm["id"], last_payment_error=None, next_action=None)
    if options.receipt_email:
        pi["receipt_email"] = options.receipt_email
    card = card_for(payment_methods.card_number(state, pm))
    behaviour = card.behaviour
    if behaviour is Behaviour.AUTHENTICATE_UNLESS_SET_UP:
        set_up = pm["id"] in state.store.set_up_payment_methods
        behaviour = Behaviour.SUCCEED if options.off_session and set_up else Behaviour.AUTHENTICATE
    if behaviour is Behaviour.AUTHENTICATE:
        declines = options.off_session and not options.action_when_off_session
        if declines or options.error_on_requires_action:
            _decline(state, pi, pm, AUTHENTICATION_REQUIRED, ctx)
        return _require_action(state, pi, options, ctx)
    if behaviour in (Behaviour.DECLINE, Behaviour.CHARGE_FAIL):
        assert card.decline is not None
        _decline(state, pi, pm, card.decline, ctx)
    _succeed(state, pi, pm, ctx, None)
    _aftermath(state, state.store.charges.get(pi["latest_charge"]), card.behaviour)
    return pi


def _aftermath(state: SimState, charge: Obj, behaviour: Behaviour) -> None:
    """What the issuer does to a succeeded charge of a test card (Stripe's testing docs,
    "Disputes"): disputes right away, an early fraud warning."""
    if behaviour is Behaviour.DISPUTE:
        disputes.open_for(state, charge, reason="fraudulent")
    elif behaviour is Behaviour.DISPUTE_NOT_RECEIVED:
        disputes.open_for(state, charge, reason="product_not_received")
    elif behaviour is Behaviour.DISPUTE_INQUIRY:
        disputes.open_for(state, charge, reason="fraudulent", inquiry=True)
    elif behaviour is Behaviour.MULTIPLE_DISPUTES:
        # Stripe's docs say only "disputed multiple times"; here two chargebacks that
        # together dispute the whole charge, so neither exceeds it.
        first = charge["amount"] // 2
        disputes.open_for(state, charge, reason="fraudulent", amount=first)
        disputes.open_for(
            state, charge, reason="product_not_received", amount=charge["amount"] - first
        )
    elif behaviour is Behaviour.EARLY_FRAUD_WARNING:
        fraud_warnings.create_for(state, charge)


def _require_return_url(pi: Obj, options: ConfirmOptions, ctx: RequestContext) -> None:
    """Stripe refuses a server-side confirm that could need a redirect it cannot do."""
    automatic = pi["automatic_payment_methods"]
    redirects = automatic and automatic.get("allow_redirects", "always") != "never"
    if redirects and not ctx.publishable and not options.return_url:
        raise StripeApiError(
            "This PaymentIntent is configured to accept payment methods enabled in your "
            "Dashboard. Because some of these payment methods might redirect your customer "
            "off of your page, you must provide a `return_url`. If you do not want to accept "
            "redirect-based payment methods, set `automatic_payment_methods[enabled]` to "
            "`true` and `automatic_payment_methods[allow_redirects]` to `never` when creating "
            "Setup Intents and Payment Intents.",
            param="return_url",
            extra={"payment_intent": copy.deepcopy(pi)},
        )


def _require_action(state: SimState, pi: Obj, options: ConfirmOptions, ctx: RequestContext) -> Obj:
    next_action = three_d_secure_action(pi, options.return_url, options.use_stripe_sdk, ctx)
    pi.update(status="requires_action", next_action=next_action)
    state.emit("payment_intent.requires_action", pi, ctx)
    invoices.payment_requires_action(state, pi, ctx)
    return pi


def _succeed(
    state: SimState, pi: Obj, pm: Obj, ctx: RequestContext, three_d_secure: Obj | None
) -> Obj:
    charge = charges.record(state, pi, pm, ctx, three_d_secure=three_d_secure)
    txn = objects.charge_balance_transaction(charge, charge["created"])
    state.store.balance_transactions.add(txn)
    charge["balance_transaction"] = txn["id"]
    pi.update(
        status="succeeded",
        amount_received=pi["amount"],
        latest_charge=charge["id"],
        next_action=None,
        last_payment_error=None,
    )
    _save_for_future(state, pi, pm, ctx)
    state.emit("charge.succeeded", charge, ctx)
    state.emit("payment_intent.succeeded", pi, ctx)
    invoices.payment_succeeded(state, pi, ctx)
    return pi


def _decline(state: SimState, pi: Obj, pm: Obj, decline: Decline, ctx: RequestContext) -> NoReturn:
    """Record a failed charge, reopen the intent and answer 402 as Stripe does."""
    charge = charges.record(state, pi, pm, ctx, decline=decline)
    error = CardError(
        decline.message,
        code=decline.code,
        decline_code=decline.decline_code,
        param=decline.param,
        extra={"charge": charge["id"], "payment_method": copy.deepcopy(pm)},
    )
    last_error = error.body()["error"]
    pi.update(
        status="requires_payment_method",
        payment_method=None,
        latest_charge=charge["id"],
        next_action=None,
        last_payment_error=last_error,
    )
    state.emit("charge.failed", charge, ctx)
    state.emit("payment_intent.payment_failed", pi, ctx)
    invoices.payment_failed(state, pi, ctx)
    error.extra["payment_intent"] = copy.deepcopy(pi)
    raise error


def _save_for_future(state: SimState, pi: Obj, pm: Obj, ctx: RequestContext) -> None:
    """``setup_future_usage``: the paying PaymentMethod is saved to the intent's customer
    and counts as set up (authenticated) for later off-session payments."""
    if not pi["setup_future_usage"]:
        return
    state.store.set_up_payment_methods.add(pm["id"])
    if pi["customer"]:
        customers.attach(state, state.store.customers.get(pi["customer"]), pm, ctx)


def _check_owner(pi: Obj, pm: Obj) -> None:
    """A saved PaymentMethod pays only for its own customer's intents."""
    owner = pm["customer"]
    if owner is None or owner == pi["customer"]:
        return
    if pi["customer"] is None:
        message = (
            f"The provided PaymentMethod {pm['id']} is attached to a Customer. "
            "Please provide that Customer's id as `customer` to use it."
        )
    else:
        message = (
            f"The provided PaymentMethod {pm['id']} belongs to another Customer "
            f"than this PaymentIntent's ({pi['customer']})."
        )
    raise StripeApiError(
        message,
        code="payment_intent_invalid_parameter",
        param="payment_method",
        extra={"payment_intent": copy.deepcopy(pi)},
    )


def _setup_future_usage(p: Params) -> str | None:
    """``on_session`` | ``off_session``, "" to clear (update only), None when absent."""
    return p.text("setup_future_usage", choices=("on_session", "off_session", ""))


def _check_amount(amount: int, currency: str) -> None:
    if currency not in MIN_AMOUNTS:
        raise ParameterInvalid(
            f"Invalid currency: {currency}. stripe_sim supports: {', '.join(sorted(MIN_AMOUNTS))}.",
            "currency",
        )
    minimum = MIN_AMOUNTS[currency]
    if amount < minimum:
        raise AmountTooSmall(
            f"Amount must be at least {minimum} {currency} (in the smallest currency unit).",
            param="amount",
        )
    if amount > MAX_AMOUNT:
        raise AmountTooLarge(f"Amount must be no more than {MAX_AMOUNT}.", param="amount")


def _payment_method_choice(p: Params) -> tuple[Obj | None, list[str] | None]:
    automatic = p.nested("automatic_payment_methods")
    types = p.str_list("payment_method_types")
    if automatic is not None and types is not None:
        raise StripeApiError(
            "You may only specify one of these parameters: automatic_payment_methods, "
            "payment_method_types.",
            param="automatic_payment_methods",
        )
    if types is not None:
        _check_types(types)
        return None, types
    if automatic is None:
        # Since API version 2023-08-16 automatic payment methods are the default.
        return {"allow_redirects": "always", "enabled": True}, None
    enabled = automatic.boolean("enabled")
    redirects = automatic.text("allow_redirects", choices=("always", "never")) or "always"
    if enabled is None:
        raise ParameterMissing("automatic_payment_methods[enabled]")
    if not enabled:
        return None, ["card"]
    return {"allow_redirects": redirects, "enabled": True}, None


def _check_types(types: list[str]) -> None:
    for pm_type in types:
        if pm_type not in SIMULATED_TYPES:
            raise FeatureNotSimulated(
                f"stripe_sim simulates card and sepa_debit payments, not '{pm_type}'.",
                param="payment_method_types",
            )


def _start_bank_debit(
    state: SimState, pi: Obj, pm: Obj, options: ConfirmOptions, ctx: RequestContext
) -> Obj:
    """A bank debit: its currency only, a mandate, then ``processing``."""
    method = pm["type"]
    currency = {"sepa_debit": "eur", "us_bank_account": "usd"}[method]
    allowed = pi["automatic_payment_methods"] is not None or method in (
        pi["payment_method_types"] or []
    )
    if not allowed:
        raise StripeApiError(
            f"The PaymentMethod provided ({method}) is not allowed for this PaymentIntent. "
            f"Please attach a PaymentMethod of one of the following types: "
            f"{', '.join(pi['payment_method_types'])}.",
            code="payment_intent_incompatible_payment_method",
            param="payment_method",
            extra={"payment_intent": copy.deepcopy(pi)},
        )
    if pi["currency"] != currency:
        raise StripeApiError(
            f"The currency provided ({pi['currency']}) is invalid for {method}, "
            f"which only supports {currency}.",
            code="payment_intent_invalid_parameter",
            param="currency",
            extra={"payment_intent": copy.deepcopy(pi)},
        )
    if not options.mandate_accepted:
        raise ParameterMissing("mandate_data")
    return bank_debits.start(state, pi, pm, ctx)


def _confirm_options(p: Params) -> ConfirmOptions:
    mandate = p.raw("mandate_data")
    acceptance = mandate.get("customer_acceptance") if isinstance(mandate, dict) else None
    return ConfirmOptions(
        return_url=p.text("return_url") or None,
        use_stripe_sdk=p.boolean("use_stripe_sdk") or False,
        off_session=_off_session(p),
        error_on_requires_action=p.boolean("error_on_requires_action") or False,
        mandate_accepted=isinstance(acceptance, dict) and bool(acceptance.get("type")),
    )


def _off_session(p: Params) -> bool:
    """``off_session``: a boolean, or ``one_off`` / ``recurring`` (both mean true)."""
    value = p.text("off_session")
    if value is None:
        return False
    if value not in ("true", "false", "one_off", "recurring"):
        raise ParameterInvalid(f"Invalid boolean: {value}", "off_session")
    return value != "false"


def _descriptors(p: Params) -> Obj:
    found: Obj = {}
    for key in ("statement_descriptor", "statement_descriptor_suffix"):
        value = p.text(key)
        if value is not None:
            found[key] = value or None
    return found


def _refuse_unsimulated(p: Params) -> None:
    p.refuse(*UNSIMULATED)
    method = p.text("capture_method", choices=("automatic", "automatic_async", "manual"))
    if method == "manual":
        raise FeatureNotSimulated(
            "stripe_sim does not simulate manual capture.", param="capture_method"
        )
    confirmation = p.text("confirmation_method", choices=("automatic", "manual"))
    if confirmation == "manual":
        raise FeatureNotSimulated(
            "stripe_sim does not simulate manual confirmation.", param="confirmation_method"
        )
