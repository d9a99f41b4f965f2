"""PaymentMethods: card details typed in a browser, or Stripe's test ids."""

from __future__ import annotations

import time

from . import bank_debits, objects
from .cards import TEST_PAYMENT_METHODS, TEST_TOKENS, CardDetails, card_for, validate_card
from .errors import FeatureNotSimulated, ParameterMissing, ResourceMissing
from .objects import Obj
from .params import Params
from .state import SimState

# Fields Stripe.js adds to its requests for fraud signals and analytics.
STRIPE_JS_NOISE = (
    "guid",
    "muid",
    "sid",
    "payment_user_agent",
    "time_on_page",
    "referrer",
    "key",
    "_stripe_version",
    "_stripe_account",
    "client_attribution_metadata",
)


def create(state: SimState, p: Params) -> Obj:
    pm_type = p.text("type", required=True)
    card = p.nested("card")
    sepa = p.nested("sepa_debit")
    billing = _billing_details(p.nested("billing_details"))
    metadata = p.metadata() or {}
    p.text("allow_redisplay", choices=("always", "limited", "unspecified"))
    p.ignore(*STRIPE_JS_NOISE)
    if pm_type == "sepa_debit":
        if sepa is None:
            raise ParameterMissing("sepa_debit")
        iban = bank_debits.normalized_iban(sepa.text("iban", required=True) or "")
        sepa.finish()
        p.finish()
        for field in ("name", "email"):
            if not billing[field]:  # SEPA mandates need both
                raise ParameterMissing(f"billing_details[{field}]")
        return _store_sepa(state, iban, billing, metadata)
    if pm_type == "us_bank_account":
        raise FeatureNotSimulated(
            "stripe_sim does not verify bank accounts (Financial Connections or "
            "micro-deposits); use Stripe's test PaymentMethods pm_usBankAccount_success, "
            "pm_usBankAccount_insufficientFunds, ...",
            param="type",
        )
    if pm_type != "card":
        raise FeatureNotSimulated(
            f"stripe_sim simulates card and sepa_debit PaymentMethods, not '{pm_type}'.",
            param="type",
        )
    if card is None:
        raise ParameterMissing("card")
    details = _card_details(card)
    p.finish()
    return _store(state, details, billing, metadata)


def resolve(state: SimState, ref: str, param: str = "payment_method") -> Obj:
    """A stored PaymentMethod, or a fresh one for a test id like ``pm_card_visa``."""
    number = TEST_PAYMENT_METHODS.get(ref)
    if number is not None:
        year = time.gmtime().tm_year + 3
        details = CardDetails(number, 12, year, "123")
        return _store(state, details, objects.billing_details(), {})
    debit = bank_debits.TEST_PAYMENT_METHODS.get(ref)
    if debit is not None:
        billing = objects.billing_details(name="Jenny Rosen", email="jenny.rosen@example.com")
        if debit.method == "us_bank_account":
            bank = objects.us_bank_account_payment_method(
                debit.iban, bank_debits.ACH_ROUTING_NUMBER, billing, {}, state.now()
            )
            state.card_numbers[bank["id"]] = debit.iban
            return state.store.payment_methods.add(bank)
        return _store_sepa(state, debit.iban, billing, {})
    found = state.store.payment_methods.find(ref)
    if found is None:
        raise ResourceMissing("PaymentMethod", ref, param)
    return found


def for_confirm(state: SimState, raw_pm_data: object, pm_ref: str | None) -> Obj | None:
    """The PaymentMethod an intent's confirm names: a new one from ``payment_method_data``
    (checked as :func:`create` checks it), else the one ``payment_method`` names, if any."""
    if isinstance(raw_pm_data, dict):
        return create(state, Params(raw_pm_data, "payment_method_data"))
    if pm_ref:
        return resolve(state, pm_ref)
    return None


def _store_sepa(state: SimState, iban: str, billing: Obj, metadata: dict[str, str]) -> Obj:
    pm = objects.sepa_payment_method(iban, billing, metadata, state.now())
    state.card_numbers[pm["id"]] = iban  # decides the debit's fate, as a card number does
    return state.store.payment_methods.add(pm)


def retrieve(state: SimState, pm_id: str) -> Obj:
    return resolve(state, pm_id, "id")


def card_number(state: SimState, pm: Obj) -> str:
    return state.card_numbers[pm["id"]]


def _store(state: SimState, details: CardDetails, billing: Obj, metadata: dict[str, str]) -> Obj:
    pm = objects.payment_method(details, billing, metadata, state.now())
    state.card_numbers[pm["id"]] = details.number
    if card_for(details.number).set_up:
        state.store.set_up_payment_methods.add(pm["id"])
    return state.store.payment_methods.add(pm)


def _card_details(card: Params) -> CardDetails:
    token = card.text("token")
    if token is not None:
        number = TEST_TOKENS.get(token)
        if number is None:
            raise ResourceMissing("token", token, "card[token]")
        card.finish()
        return CardDetails(number, 12, time.gmtime().tm_year + 3, "123")
    details = validate_card(
        card.text("number"), card.text("exp_month"), card.text("exp_year"), card.text("cvc")
    )
    card.finish()
    return details


def _billing_details(p: Params | None) -> Obj:
    if p is None:
        return objects.billing_details()
    address: Obj = {}
    nested = p.nested("address")
    if nested is not None:
        for key in ("city", "country", "line1", "line2", "postal_code", "state"):
            value = nested.text(key)
            if value:
                address[key] = value
    return objects.billing_details(
        name=p.text("name") or None,
        email=p.text("email") or None,
        phone=p.text("phone") or None,
        address=address,
    )
