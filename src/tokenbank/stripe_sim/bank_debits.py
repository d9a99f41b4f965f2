"""US bank account debits (ACH Direct Debit): confirmed now, settled "some time later".

Stripe's docs (ACH Direct Debit → "Test your integration"): a ``us_bank_account``
PaymentMethod with routing number ``110000000`` and one of the test account numbers. The
PaymentIntent is ``processing`` once confirmed (``charge.pending``,
``payment_intent.processing``); later (``STRIPE_SIM_ASYNC_DELAY_S``) the debit either
succeeds (``charge.succeeded``, ``payment_intent.succeeded``) or fails, the intent going
back to ``requires_payment_method`` with ``last_payment_error`` (``charge.failed``,
``payment_intent.payment_failed``).

| account number | outcome |
|---|---|
| ``000123456789`` | succeeds |
| ``000111111113`` | fails: ``account_closed`` |
| ``000111111116`` | fails: ``no_account`` |
| ``000222222227`` | fails: ``insufficient_funds`` |
| ``000333333335`` | fails: ``debit_not_authorized`` |

Not simulated: verification by microdeposits or Financial Connections (a test account is
verified at once), mandates (``mandate_data`` is accepted and ignored), disputes of debits.
"""

from __future__ import annotations

import copy

from . import objects
from .cards import fingerprint
from .errors import FeatureNotSimulated, ParameterMissing, StripeApiError
from .ids import new_id
from .objects import Obj
from .params import Params
from .state import RequestContext, SimState

TEST_ROUTING_NUMBER = "110000000"
SUCCEEDS = "000123456789"
#: Failing test accounts: (failure code, Stripe's message).
FAILURES: dict[str, tuple[str, str]] = {
    "000111111113": ("account_closed", "The customer's bank account has been closed."),
    "000111111116": ("no_account", "The customer's bank account could not be located."),
    "000222222227": (
        "insufficient_funds",
        "The customer's account has insufficient funds to cover this payment.",
    ),
    "000333333335": (
        "debit_not_authorized",
        "The customer notified their bank that this payment was unauthorized.",
    ),
}


def create_method(state: SimState, p: Params, billing: Obj, metadata: dict[str, str]) -> Obj:
    """``POST /v1/payment_methods`` (or ``payment_method_data``) with ``type=us_bank_account``."""
    account = p.nested("us_bank_account")
    if account is None:
        raise ParameterMissing("us_bank_account")
    routing = account.text("routing_number", required=True) or ""
    number = account.text("account_number", required=True) or ""
    holder = account.text("account_holder_type", choices=("individual", "company"))
    kind = account.text("account_type", choices=("checking", "savings")) or "checking"
    account.finish()
    p.finish()
    if not billing.get("name"):
        raise StripeApiError(
            "Missing required param: billing_details[name].", param="billing_details[name]"
        )
    if routing != TEST_ROUTING_NUMBER or (number != SUCCEEDS and number not in FAILURES):
        raise FeatureNotSimulated(
            "stripe_sim only knows Stripe's test bank accounts (routing number 110000000).",
            param="us_bank_account[account_number]",
        )
    pm: Obj = {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing,
        "created": state.now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata,
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": holder or "individual",
            "account_type": kind,
            "bank_name": "STRIPE TEST BANK",
            "financial_connections_account": None,
            "fingerprint": fingerprint(routing + number),
            "last4": number[-4:],
            "networks": {"preferred": "ach", "supported": ["ach"]},
            "routing_number": routing,
            "status_details": {},
        },
    }
    state.card_numbers[pm["id"]] = number  # what decides the debit's fate, as for cards
    return state.store.payment_methods.add(pm)


def is_bank_debit(pm: Obj) -> bool:
    return pm.get("type") == "us_bank_account"


def confirm(state: SimState, pi: Obj, pm: Obj, ctx: RequestContext) -> Obj:
    """The debit is submitted: the intent is ``processing`` until the bank answers."""
    charge = _pending_charge(state, pi, pm, ctx)
    state.store.charges.add(charge)
    pi.update(
        status="processing",
        payment_method=pm["id"],
        latest_charge=charge["id"],
        next_action=None,
        last_payment_error=None,
        processing=None,
    )
    state.emit("charge.pending", charge, ctx)
    state.emit("payment_intent.processing", pi, ctx)
    failure = FAILURES.get(state.card_numbers[pm["id"]])
    pi_id = pi["id"]
    if failure is None:
        state.schedule("bank debit succeeds", pi_id, lambda: _settle(state, pi_id, None))
    else:
        state.schedule("bank debit fails", pi_id, lambda: _settle(state, pi_id, failure))
    return pi


def _settle(state: SimState, pi_id: str, failure: tuple[str, str] | None) -> None:
    pi = state.store.payment_intents.get(pi_id, "intent")
    if pi["status"] != "processing":
        return  # canceled meanwhile: the bank's answer no longer applies
    charge = state.store.charges.get(pi["latest_charge"])
    pm = state.store.payment_methods.get(pi["payment_method"], "payment_method")
    if failure is None:
        txn = objects.balance_transaction(
            amount=charge["amount"],
            fee=objects.stripe_fee(charge["amount"]),
            currency=charge["currency"],
            created=state.now(),
            source=charge["id"],
            txn_type="charge",
            reporting_category="charge",
            description=charge["description"],
        )
        state.store.balance_transactions.add(txn)
        charge.update(status="succeeded", paid=True, balance_transaction=txn["id"])
        charge["outcome"].update(seller_message="Payment complete.")
        pi.update(status="succeeded", amount_received=pi["amount"])
        state.emit("charge.succeeded", charge, None)
        state.emit("payment_intent.succeeded", pi, None)
        return
    code, message = failure
    charge.update(
        status="failed",
        captured=False,
        amount_captured=0,
        failure_code=code,
        failure_message=message,
    )
    charge["outcome"].update(
        network_status="declined_by_network", seller_message=message, type="issuer_declined"
    )
    pi.update(
        status="requires_payment_method",
        payment_method=None,
        last_payment_error={
            "code": code,
            "message": message,
            "payment_method": copy.deepcopy(pm),
            "type": "invalid_request_error",
        },
    )
    state.emit("charge.failed", charge, None)
    state.emit("payment_intent.payment_failed", pi, None)


def _pending_charge(state: SimState, pi: Obj, pm: Obj, ctx: RequestContext) -> Obj:
    ch_id = new_id("ch")
    amount = pi["amount"]
    account = pm["us_bank_account"]
    return {
        "id": ch_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "authorization_code": None,
        "balance_transaction": None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "TOKENBANK SIM",
        "captured": True,
        "created": state.now(),
        "currency": pi["currency"],
        "customer": None,
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "not_assessed",
            "risk_score": None,
            "seller_message": "Payment pending.",
            "type": "authorized",
        },
        "paid": False,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": {
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": account["account_holder_type"],
                "account_type": account["account_type"],
                "bank_name": account["bank_name"],
                "fingerprint": account["fingerprint"],
                "last4": account["last4"],
                "mandate": None,
                "payment_reference": None,
                "routing_number": account["routing_number"],
            },
        },
        "radar_options": {},
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{ctx.base_url}/_sim/receipts/{ch_id}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "pending",
        "transfer_data": None,
        "transfer_group": None,
    }
