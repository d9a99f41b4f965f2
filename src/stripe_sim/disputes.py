"""Disputes: opened by Stripe's dispute test cards, answered with evidence, closed.

Two kinds, as on Stripe (``payment_method_details.card.case_type``):

- **chargeback** (``needs_response`` → ``under_review`` → ``won`` | ``lost``): the
  disputed amount and the dispute fee are withdrawn when it opens (a balance
  transaction: type ``adjustment``, reporting category ``dispute``, source the
  dispute, fee 1500 described ``Dispute fee``, description ``Chargeback withdrawal
  for ch_...``) and reinstated only when it is won (reporting category
  ``dispute_reversal``, ``Chargeback reversal for ch_...``, the fee returned).
- **inquiry** (``warning_needs_response`` → ``warning_under_review`` →
  ``warning_closed``): no money moves and there is no balance transaction, unless
  it is escalated to a chargeback (``needs_response``, funds withdrawn then).

Test-mode evidence (Stripe's testing docs, "Evidence"): ``uncategorized_text`` =
``winning_evidence`` wins a chargeback (``won`` at once, as before) and closes an
inquiry; ``losing_evidence`` loses a chargeback and closes an inquiry without
escalation; ``escalate_inquiry_evidence`` turns an inquiry into a chargeback. An
inquiry's close and escalation happen "some time later" (``async_delay_s``). A
refund still ``pending`` when its charge is charged back fails with
``charge_for_pending_refund_disputed``.

Sim-only (no documented test-mode path on Stripe): appeals
(``appeal_needs_response`` → ``appeal_under_review`` → ``won`` | ``lost``), the
``prevented`` status and disputes of any amount, through ``/_sim`` controls.
"""

from __future__ import annotations

from typing import Any

from . import fraud_warnings, objects, refunds
from .errors import DisputeAlreadyClosed, StripeApiError
from .objects import EVIDENCE_FIELDS, Obj
from .params import Params, apply_metadata
from .state import RequestContext, SimState, list_filtered

STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "appeal_needs_response",
    "appeal_under_review",
    "won",
    "lost",
    "prevented",
)
INQUIRY_OPEN = ("warning_needs_response", "warning_under_review")
CHARGEBACK_OPEN = ("needs_response", "under_review", "appeal_needs_response", "appeal_under_review")
OPEN_STATUSES = (*INQUIRY_OPEN, *CHARGEBACK_OPEN)
# A charge under one of these cannot be refunded (Stripe: "has been charged back").
_BLOCKS_REFUND = (*CHARGEBACK_OPEN, "lost")
# Where submitted evidence moves a dispute.
_UNDER_REVIEW = {
    "warning_needs_response": "warning_under_review",
    "needs_response": "under_review",
    "appeal_needs_response": "appeal_under_review",
}
REASON_CODES = {  # Visa reason codes of the test cards' reasons
    "fraudulent": "10.4",
    "product_not_received": "13.1",
    "product_unacceptable": "13.3",
    "credit_not_processed": "13.6",
    "duplicate": "12.6",
    "subscription_canceled": "13.2",
    "unrecognized": "10.4",
    "general": "13.7",
}


class DisputeTransitionRefused(StripeApiError):
    default_code = "dispute_transition_refused"


def open_for(
    state: SimState,
    charge: Obj,
    *,
    reason: str = "fraudulent",
    amount: int | None = None,
    inquiry: bool = False,
    status: str | None = None,
) -> Obj:
    """Open a dispute on a succeeded charge (the issuer does this, not a request).

    ``status="prevented"`` records a dispute that was prevented: no money moves.
    """
    disputed = charge["amount"] if amount is None else amount
    if status is None:
        status = "warning_needs_response" if inquiry else "needs_response"
    dispute = objects.dispute(
        charge_obj=charge,
        created=state.now(),
        amount=disputed,
        reason=reason,
        network_reason_code=REASON_CODES.get(reason, "13.7"),
        case_type="inquiry" if status.startswith("warning_") else "chargeback",
        status=status,
    )
    dispute["is_charge_refundable"] = status != "needs_response"
    state.store.disputes.add(dispute)
    charge["disputed"] = True
    state.emit("charge.dispute.created", dispute, None)
    fraud_warnings.charge_changed(state, charge)
    if status == "needs_response":
        _withdraw(state, dispute, charge, None)
    return dispute


def retrieve(state: SimState, dispute_id: str) -> Obj:
    return state.store.disputes.get(dispute_id, "dispute")


def list_all(state: SimState, p: Params) -> Obj:
    return list_filtered(state.store.disputes, p, "charge", "payment_intent")


def update(state: SimState, dispute_id: str, p: Params, ctx: RequestContext) -> Obj:
    """Attach evidence (and by default submit it) or change metadata."""
    dispute = state.store.disputes.get(dispute_id, "dispute")
    evidence = p.nested("evidence")
    changes: dict[str, Any] = {}
    if evidence is not None:
        for name in EVIDENCE_FIELDS:
            value = evidence.text(name)
            if value is not None:
                changes[name] = value or None
    metadata = p.metadata()
    submit = p.boolean("submit")
    p.finish()
    _ensure_open(dispute)
    previous: Obj = {}
    if changes:
        previous["evidence"] = {k: dispute["evidence"][k] for k in changes}
        dispute["evidence"].update(changes)
        dispute["evidence_details"]["has_evidence"] = True
    if metadata is not None:
        previous["metadata"] = dict(dispute["metadata"])
        dispute["metadata"] = apply_metadata(dispute["metadata"], metadata)
    submitted = submit is not False and bool(changes)
    if submitted and dispute["status"] in _UNDER_REVIEW:
        previous["status"] = dispute["status"]
        dispute["status"] = _UNDER_REVIEW[dispute["status"]]
        dispute["evidence_details"]["submission_count"] += 1
    state.emit("charge.dispute.updated", dispute, ctx, previous_attributes=previous)
    if submitted:
        _test_mode_evidence(state, dispute)
    return dispute


def _test_mode_evidence(state: SimState, dispute: Obj) -> None:
    """Stripe's magic evidence values decide a test dispute."""
    text = str(dispute["evidence"]["uncategorized_text"])
    if dispute["status"] == "warning_under_review":
        dispute_id = dispute["id"]
        if text in ("winning_evidence", "losing_evidence"):
            state.schedule(
                "inquiry closes", dispute_id, lambda: _later(state, dispute_id, "warning_closed")
            )
        elif text == "escalate_inquiry_evidence":
            state.schedule(
                "inquiry escalates", dispute_id, lambda: _later(state, dispute_id, "escalate")
            )
        return
    verdict = {"winning_evidence": "won", "losing_evidence": "lost"}.get(text)
    if verdict is not None:
        resolve(state, dispute, verdict, None)


def _later(state: SimState, dispute_id: str, outcome: str) -> None:
    dispute = state.store.disputes.find(dispute_id)
    if dispute is not None and dispute["status"] in INQUIRY_OPEN:
        resolve(state, dispute, outcome, None)


def close(state: SimState, dispute_id: str, p: Params, ctx: RequestContext) -> Obj:
    """The merchant accepts the dispute: a chargeback is lost, an inquiry closes."""
    dispute = state.store.disputes.get(dispute_id, "dispute")
    p.finish()
    outcome = "warning_closed" if dispute["status"] in INQUIRY_OPEN else "lost"
    return resolve(state, dispute, outcome, ctx)


def resolve(state: SimState, dispute: Obj, outcome: str, ctx: RequestContext | None) -> Obj:
    """Decide an open dispute.

    ``won`` (funds reinstated) or ``lost`` (funds stay withdrawn) for a chargeback;
    ``warning_closed`` (nothing moves) or ``escalate`` (becomes a chargeback, funds
    withdrawn) for an inquiry. An inquiry told ``won``/``lost`` closes.
    """
    _ensure_open(dispute)
    inquiry = dispute["status"] in INQUIRY_OPEN
    if inquiry and outcome in ("won", "lost"):
        outcome = "warning_closed"
    if outcome not in (("warning_closed", "escalate") if inquiry else ("won", "lost")):
        raise DisputeTransitionRefused(
            f"A dispute with status {dispute['status']} cannot be resolved as {outcome}.",
            param="outcome",
        )
    previous = {"status": dispute["status"]}
    charge = state.store.charges.get(dispute["charge"])
    if outcome == "escalate":
        dispute["status"] = "needs_response"
        if "card" in dispute["payment_method_details"]:
            dispute["payment_method_details"]["card"]["case_type"] = "chargeback"
        dispute["evidence_details"]["due_by"] = state.now() + 7 * 86400
        state.emit("charge.dispute.updated", dispute, ctx, previous_attributes=previous)
        _withdraw(state, dispute, charge, ctx)
        return dispute
    if outcome == "won":
        reinstated = _dispute_txn(state, dispute, charge, reinstate=True)
        dispute["balance_transactions"].append(reinstated)
        dispute["status"] = "won"
        dispute["is_charge_refundable"] = True
        state.emit("charge.dispute.funds_reinstated", dispute, ctx)
    else:
        dispute["status"] = outcome
    state.emit("charge.dispute.closed", dispute, ctx, previous_attributes=previous)
    return dispute


def appeal(state: SimState, dispute: Obj) -> Obj:
    """Sim-only: the dispute goes to appeal (funds stay withdrawn)."""
    if dispute["status"] not in ("under_review", "lost"):
        raise DisputeTransitionRefused(
            f"Only a chargeback under review or lost can be appealed (status {dispute['status']}).",
            param="dispute",
        )
    previous = {"status": dispute["status"]}
    dispute["status"] = "appeal_needs_response"
    dispute["evidence_details"]["due_by"] = state.now() + 7 * 86400
    state.emit("charge.dispute.updated", dispute, None, previous_attributes=previous)
    return dispute


def blocks_refund(state: SimState, charge: Obj) -> bool:
    """A charge under an open (or lost) chargeback cannot be refunded; inquiries can."""
    return any(
        d["charge"] == charge["id"] and d["status"] in _BLOCKS_REFUND
        for d in state.store.disputes.all()
    )


def _ensure_open(dispute: Obj) -> None:
    if dispute["status"] not in OPEN_STATUSES:
        raise DisputeAlreadyClosed(
            f"This dispute is already closed (status {dispute['status']}).", param="dispute"
        )


def _withdraw(state: SimState, dispute: Obj, charge: Obj, ctx: RequestContext | None) -> None:
    withdrawal = _dispute_txn(state, dispute, charge, reinstate=False)
    dispute["balance_transactions"].append(withdrawal)
    dispute["is_charge_refundable"] = False
    state.emit("charge.dispute.funds_withdrawn", dispute, ctx)
    # A refund still pending when the charge is charged back fails (the
    # chargeback already returns the money to the cardholder).
    for refund in state.store.refunds.all():
        if refund["charge"] == charge["id"] and refund["status"] == "pending":
            refunds.transition(
                state, refund, "failed", ctx, failure_reason="charge_for_pending_refund_disputed"
            )


def _dispute_txn(state: SimState, dispute: Obj, charge: Obj, *, reinstate: bool) -> Obj:
    sign = 1 if reinstate else -1
    txn = objects.balance_transaction(
        amount=sign * dispute["amount"],
        fee=-sign * objects.DISPUTE_FEE,
        currency=dispute["currency"],
        created=state.now(),
        source=dispute["id"],
        txn_type="adjustment",
        reporting_category="dispute_reversal" if reinstate else "dispute",
        description=(
            f"Chargeback reversal for {charge['id']}"
            if reinstate
            else f"Chargeback withdrawal for {charge['id']}"
        ),
        fee_description="Dispute fee",
    )
    return state.store.balance_transactions.add(txn)
