"""Disputes: opened by the dispute test card, answered with evidence, closed.

Funds move as on Stripe: withdrawn (amount + dispute fee) when the dispute
opens, reinstated only when it is won. Test-mode evidence shortcuts work too:
submitting ``uncategorized_text = "winning_evidence"`` wins, ``"losing_evidence"``
loses.
"""

from __future__ import annotations

from typing import Any

from . import objects
from .errors import DisputeAlreadyClosed
from .objects import EVIDENCE_FIELDS, Obj
from .params import Params, apply_metadata
from .state import RequestContext, SimState, list_query

OPEN_STATUSES = ("warning_needs_response", "needs_response", "under_review", "warning_under_review")


def open_for(state: SimState, charge: Obj) -> Obj:
    """Open a dispute on a succeeded charge (Stripe does this, not a request)."""
    now = state.now()
    withdrawal = _dispute_txn(state, charge, -charge["amount"], objects.DISPUTE_FEE, "dispute")
    dispute = objects.dispute(charge_obj=charge, created=now, withdrawal=withdrawal)
    dispute["balance_transactions"] = []
    state.store.disputes.add(dispute)
    charge["disputed"] = True
    state.emit("charge.dispute.created", dispute, None)
    dispute["balance_transactions"].append(withdrawal)
    state.emit("charge.dispute.funds_withdrawn", dispute, None)
    return dispute


def retrieve(state: SimState, dispute_id: str) -> Obj:
    return state.store.disputes.get(dispute_id, "dispute")


def list_all(state: SimState, p: Params) -> Obj:
    query = list_query(p)
    charge = p.text("charge")
    payment_intent = p.text("payment_intent")
    p.finish()
    return state.store.disputes.page(
        query,
        lambda d: (
            (charge is None or d["charge"] == charge)
            and (payment_intent is None or d["payment_intent"] == payment_intent)
        ),
    )


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
    if submit is not False and changes:
        previous["status"] = dispute["status"]
        dispute["status"] = "under_review"
        dispute["evidence_details"]["submission_count"] += 1
    state.emit("charge.dispute.updated", dispute, ctx, previous_attributes=previous)
    verdict = {"winning_evidence": "won", "losing_evidence": "lost"}.get(
        str(dispute["evidence"]["uncategorized_text"])
    )
    if submit is not False and verdict is not None:
        resolve(state, dispute, verdict, None)
    return dispute


def close(state: SimState, dispute_id: str, p: Params, ctx: RequestContext) -> Obj:
    """The merchant accepts the dispute: it is lost."""
    dispute = state.store.disputes.get(dispute_id, "dispute")
    p.finish()
    return resolve(state, dispute, "lost", ctx)


def resolve(state: SimState, dispute: Obj, outcome: str, ctx: RequestContext | None) -> Obj:
    """Close as ``won`` (funds reinstated) or ``lost`` (funds stay withdrawn)."""
    _ensure_open(dispute)
    previous = {"status": dispute["status"]}
    if outcome == "won":
        charge = state.store.charges.get(dispute["charge"])
        reinstated = _dispute_txn(
            state, charge, charge["amount"], -objects.DISPUTE_FEE, "dispute_reversal"
        )
        dispute["balance_transactions"].append(reinstated)
        dispute["status"] = "won"
        dispute["is_charge_refundable"] = True
        state.emit("charge.dispute.funds_reinstated", dispute, ctx)
    else:
        dispute["status"] = "lost"
    state.emit("charge.dispute.closed", dispute, ctx, previous_attributes=previous)
    return dispute


def blocks_refund(state: SimState, charge: Obj) -> bool:
    """A charge under an open or lost dispute cannot be refunded."""
    return any(
        d["charge"] == charge["id"] and d["status"] != "won" for d in state.store.disputes.all()
    )


def _ensure_open(dispute: Obj) -> None:
    if dispute["status"] not in OPEN_STATUSES:
        raise DisputeAlreadyClosed(
            f"This dispute is already closed (status {dispute['status']}).", param="dispute"
        )


def _dispute_txn(state: SimState, charge: Obj, amount: int, fee: int, category: str) -> Obj:
    description = (
        f"Chargeback withdrawal for {charge['id']}"
        if amount < 0
        else f"Chargeback reversal for {charge['id']}"
    )
    txn = objects.balance_transaction(
        amount=amount,
        fee=fee,
        currency=charge["currency"],
        created=state.now(),
        source=charge["id"],
        txn_type="adjustment",
        reporting_category=category,
        description=description,
    )
    return state.store.balance_transactions.add(txn)
