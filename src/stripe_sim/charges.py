"""Charges (made by confirms) and Refunds against them.

Guarantee: a charge is never refunded beyond what it captured —
``amount_refunded <= amount_captured`` always, whatever the order of requests.
"""

from __future__ import annotations

from . import disputes, fraud_warnings, objects, refunds
from .cards import Decline
from .errors import (
    ChargeAlreadyRefunded,
    ChargeDisputed,
    ParameterInvalid,
    ParameterMissing,
    PaymentIntentUnexpectedState,
    RefundExceedsCharge,
    StripeApiError,
)
from .objects import Obj
from .params import Params, apply_metadata
from .state import RequestContext, SimState, list_filtered, list_query


def record(
    state: SimState,
    pi: Obj,
    pm: Obj,
    ctx: RequestContext,
    *,
    decline: Decline | None = None,
    three_d_secure: Obj | None = None,
) -> Obj:
    """A new charge of ``pi`` paid with ``pm``, stored; declined when ``decline`` is given.

    It has no balance transaction yet: whoever settles it adds one."""
    charge = objects.charge(
        pi=pi,
        pm=pm,
        created=state.now(),
        decline=decline,
        balance_transaction=None,
        three_d_secure=three_d_secure,
        base_url=ctx.base_url,
    )
    return state.store.charges.add(charge)


def retrieve(state: SimState, charge_id: str) -> Obj:
    return state.store.charges.get(charge_id, "charge")


def update(state: SimState, charge_id: str, p: Params) -> Obj:
    charge = state.store.charges.get(charge_id, "charge")
    description = p.text("description")
    metadata = p.metadata()
    receipt_email = p.text("receipt_email")
    p.finish()
    if description is not None:
        charge["description"] = description or None
    if receipt_email is not None:
        charge["receipt_email"] = receipt_email or None
    charge["metadata"] = apply_metadata(charge["metadata"], metadata)
    return charge


def list_all(state: SimState, p: Params) -> Obj:
    return list_filtered(state.store.charges, p, "payment_intent")


def list_refunds_of(state: SimState, charge_id: str, p: Params) -> Obj:
    state.store.charges.get(charge_id, "charge")
    query = list_query(p)
    p.finish()
    page = state.store.refunds.page(query, charge=charge_id)
    page["url"] = f"/v1/charges/{charge_id}/refunds"
    return page


def create_refund(state: SimState, p: Params, ctx: RequestContext) -> Obj:
    charge_id = p.text("charge") or None
    pi_id = p.text("payment_intent") or None
    amount = p.integer("amount")
    reason = p.text("reason", choices=("duplicate", "fraudulent", "requested_by_customer"))
    metadata = apply_metadata({}, p.metadata())
    p.ignore("instructions_email", "refund_application_fee", "reverse_transfer", "origin")
    p.finish()

    charge = _refundable_charge(state, charge_id, pi_id)
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise ChargeAlreadyRefunded(
            f"Charge {charge['id']} has already been refunded.", param="charge"
        )
    if disputes.blocks_refund(state, charge):
        raise ChargeDisputed(
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            param="charge",
        )
    if amount is None:
        amount = remaining
    if amount <= 0:
        raise ParameterInvalid(
            "Invalid positive integer", "amount", code="parameter_invalid_integer"
        )
    if amount > remaining:
        cur = charge["currency"]
        raise RefundExceedsCharge(
            f"Refund amount ({amount} {cur}) is greater than unrefunded amount on charge "
            f"({remaining} {cur})",
            param="amount",
        )
    return _record_refund(state, charge, amount, reason or None, metadata, ctx)


def retrieve_refund(state: SimState, refund_id: str) -> Obj:
    return state.store.refunds.get(refund_id, "refund")


def update_refund(state: SimState, refund_id: str, p: Params) -> Obj:
    refund = state.store.refunds.get(refund_id, "refund")
    metadata = p.metadata()
    p.finish()
    refund["metadata"] = apply_metadata(refund["metadata"], metadata)
    return refund


def list_refunds(state: SimState, p: Params) -> Obj:
    return list_filtered(state.store.refunds, p, "charge", "payment_intent")


def _refundable_charge(state: SimState, charge_id: str | None, pi_id: str | None) -> Obj:
    if charge_id is None and pi_id is None:
        raise ParameterMissing("charge")
    if pi_id is not None:
        pi = state.store.payment_intents.get(pi_id, "payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise PaymentIntentUnexpectedState(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        if charge_id is not None and charge_id != pi["latest_charge"]:
            raise StripeApiError(
                f"Charge {charge_id} does not belong to PaymentIntent {pi_id}.", param="charge"
            )
        charge_id = pi["latest_charge"]
    assert charge_id is not None
    charge = state.store.charges.get(charge_id, "charge")
    if charge["status"] != "succeeded":
        raise StripeApiError(
            f"Charge {charge_id} did not succeed and cannot be refunded.", param="charge"
        )
    return charge


def _record_refund(
    state: SimState,
    charge: Obj,
    amount: int,
    reason: str | None,
    metadata: dict[str, str],
    ctx: RequestContext,
) -> Obj:
    now = state.now()
    status, pending_reason = refunds.initial_status(state, charge)
    refund = objects.refund(
        charge_obj=charge,
        amount=amount,
        created=now,
        reason=reason,
        metadata=metadata,
        balance_transaction="",
        status=status,
        pending_reason=pending_reason,
    )
    txn = objects.balance_transaction(
        amount=-amount,
        fee=0,
        currency=charge["currency"],
        created=now,
        source=refund["id"],
        txn_type="refund",
        reporting_category="refund",
        description=(
            f"REFUND FOR CHARGE ({charge['description']})"
            if charge["description"]
            else "REFUND FOR CHARGE"
        ),
    )
    state.store.balance_transactions.add(txn)
    refund["balance_transaction"] = txn["id"]
    state.store.refunds.add(refund)

    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    state.emit("refund.created", refund, ctx)
    state.emit("charge.refunded", charge, ctx, previous_attributes=previous)
    fraud_warnings.charge_changed(state, charge)
    refunds.after_create(state, refund, charge)
    return refund
