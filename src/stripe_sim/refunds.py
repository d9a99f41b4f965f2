"""Refunds after they are created: Stripe's asynchronous card refund life cycle.

Statuses (Stripe's full set): ``pending``, ``requires_action``, ``succeeded``,
``failed``, ``canceled``. What the test cards do (Stripe's testing docs,
"Refunds"):

- ``pm_card_pendingRefund`` (4000 0000 0000 7726): the refund starts ``pending``
  and ``succeeded`` later (``refund.updated``, ``charge.refund.updated``).
- ``pm_card_refundFail`` (4000 0000 0000 5126): the refund starts ``succeeded`` and
  ``failed`` later with ``failure_reason = "expired_or_canceled_card"``
  (``refund.updated``, ``refund.failed``, ``charge.refund.updated``).
- every other card: ``succeeded`` at once, never changing.

Money: a refund counts in its charge's ``amount_refunded`` while it is
``pending``, ``requires_action`` or ``succeeded``. When it becomes ``failed`` or
``canceled`` the amount comes back: ``amount_refunded`` goes down, ``refunded``
turns false, and a ``refund_failure`` balance transaction (+amount, source the
refund) is recorded and named by the refund's ``failure_balance_transaction``.
"""

from __future__ import annotations

from . import fraud_warnings, objects
from .cards import Behaviour, card_for
from .errors import StripeApiError
from .objects import Obj
from .state import RequestContext, SimState

STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled")
COUNTED = ("pending", "requires_action", "succeeded")  # money out of the merchant's balance
FAILURE_REASONS = (
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
)
# Which status may become which (a transition outside this is refused).
_NEXT: dict[str, tuple[str, ...]] = {
    "pending": ("succeeded", "failed", "canceled", "requires_action"),
    "requires_action": ("pending", "succeeded", "canceled", "failed"),
    "succeeded": ("failed", "canceled"),
    "failed": (),
    "canceled": (),
}


class RefundTransitionRefused(StripeApiError):
    default_code = "refund_transition_refused"


def behaviour_of(state: SimState, charge: Obj) -> Behaviour:
    if _bank_debit(charge):
        return Behaviour.SUCCEED
    number = state.card_numbers.get(str(charge["payment_method"]))
    return card_for(number).behaviour if number else Behaviour.SUCCEED


def _bank_debit(charge: Obj) -> bool:
    return charge["payment_method_details"]["type"] in ("sepa_debit", "us_bank_account")


def initial_status(state: SimState, charge: Obj) -> tuple[str, str | None]:
    """(status, pending_reason) of a new refund of ``charge``.

    A bank debit's refund is a bank transfer back: pending first, as on Stripe.
    """
    if _bank_debit(charge) or behaviour_of(state, charge) is Behaviour.PENDING_REFUND:
        return "pending", "processing"
    return "succeeded", None


def after_create(state: SimState, refund: Obj, charge: Obj) -> None:
    """Schedule what Stripe does to this refund "some time later"."""
    behaviour = behaviour_of(state, charge)
    refund_id = refund["id"]
    if _bank_debit(charge) or behaviour is Behaviour.PENDING_REFUND:
        state.schedule("refund succeeds", refund_id, lambda: _later(state, refund_id, "succeeded"))
    elif behaviour is Behaviour.REFUND_FAIL:
        state.schedule("refund fails", refund_id, lambda: _later(state, refund_id, "failed"))


def _later(state: SimState, refund_id: str, to: str) -> None:
    refund = state.store.refunds.find(refund_id)
    if refund is None or to not in _NEXT[refund["status"]]:
        return  # canceled or moved on meanwhile: Stripe's later step no longer applies
    reason = "expired_or_canceled_card" if to == "failed" else None
    transition(state, refund, to, None, failure_reason=reason)


def transition(
    state: SimState,
    refund: Obj,
    to: str,
    ctx: RequestContext | None,
    failure_reason: str | None = None,
) -> Obj:
    """Move ``refund`` to status ``to`` with its money and its events."""
    current = refund["status"]
    if to not in _NEXT.get(current, ()):
        raise RefundTransitionRefused(
            f"Refund {refund['id']} cannot go from {current} to {to}.", param="status"
        )
    charge = state.store.charges.get(refund["charge"], "charge")
    previous: Obj = {"status": current}
    refund["status"] = to
    if refund.get("pending_reason") is not None or to == "pending":
        previous["pending_reason"] = refund.get("pending_reason")
        refund["pending_reason"] = "processing" if to == "pending" else None
    if to == "requires_action":
        refund["next_action"] = None  # card refunds carry no display details
    if to == "failed":
        previous["failure_reason"] = None
        refund["failure_reason"] = failure_reason or "unknown"
    if current in COUNTED and to not in COUNTED:
        _give_back(state, refund, charge)
        previous["failure_balance_transaction"] = None
    state.emit("refund.updated", refund, ctx, previous_attributes=previous)
    if to == "failed":
        state.emit("refund.failed", refund, ctx)
    state.emit("charge.refund.updated", refund, ctx, previous_attributes=previous)
    return refund


def _give_back(state: SimState, refund: Obj, charge: Obj) -> None:
    """The refunded amount returns to the merchant's balance and the charge."""
    txn = objects.balance_transaction(
        amount=refund["amount"],
        fee=0,
        currency=refund["currency"],
        created=state.now(),
        source=refund["id"],
        txn_type="refund_failure",
        reporting_category="refund_failure",
        description="REFUND FAILURE",
    )
    state.store.balance_transactions.add(txn)
    refund["failure_balance_transaction"] = txn["id"]
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    fraud_warnings.charge_changed(state, charge)


#: Stripe's refusals to cancel or expire a refund that is not ``requires_action``.
_CANCEL_REFUSED = (
    "You can only cancel a refund with a status of requires_action; "
    "refund {id} has a status of {status}."
)
_EXPIRE_REFUSED = (
    "Only a refund with a status of requires_action can expire; "
    "refund {id} has a status of {status}."
)


def cancel(state: SimState, refund_id: str, ctx: RequestContext) -> Obj:
    """``POST /v1/refunds/{id}/cancel``: only a ``requires_action`` refund, as on Stripe."""
    return _end_waiting(state, refund_id, ctx, _CANCEL_REFUSED)


def expire(state: SimState, refund_id: str, ctx: RequestContext) -> Obj:
    """``POST /v1/test_helpers/refunds/{id}/expire``: a ``requires_action`` refund expires."""
    return _end_waiting(state, refund_id, ctx, _EXPIRE_REFUSED)


def _end_waiting(state: SimState, refund_id: str, ctx: RequestContext, refusal: str) -> Obj:
    """Cancel a ``requires_action`` refund; any other is refused with ``refusal``."""
    refund = state.store.refunds.get(refund_id, "refund")
    if refund["status"] != "requires_action":
        raise StripeApiError(refusal.format(id=refund_id, status=refund["status"]), param="refund")
    return transition(state, refund, "canceled", ctx)
