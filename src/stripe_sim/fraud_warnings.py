"""Radar early fraud warnings: the issuer's notice that a charge may be fraudulent.

Stripe's test card 4000 0000 0000 5423 (``pm_card_createIssuerFraudRecord``,
testing docs "Disputes": "charge succeeds, only to receive an early fraud
warning") makes one for its charge (event ``radar.early_fraud_warning.created``).
A warning is ``actionable`` while its charge is neither disputed nor fully
refunded; when that changes, ``radar.early_fraud_warning.updated`` is sent.
"""

from __future__ import annotations

from . import objects
from .objects import Obj
from .params import Params
from .state import SimState, list_filtered


def create_for(state: SimState, charge: Obj) -> Obj:
    warning = objects.early_fraud_warning(charge_obj=charge, created=state.now())
    warning["actionable"] = _actionable(charge)
    state.store.early_fraud_warnings.add(warning)
    state.emit("radar.early_fraud_warning.created", warning, None)
    return warning


def charge_changed(state: SimState, charge: Obj) -> None:
    """Recompute ``actionable`` for the charge's warnings (after a refund or dispute)."""
    for warning in state.store.early_fraud_warnings.all():
        if warning["charge"] != charge["id"]:
            continue
        actionable = _actionable(charge)
        if warning["actionable"] != actionable:
            previous = {"actionable": warning["actionable"]}
            warning["actionable"] = actionable
            state.emit("radar.early_fraud_warning.updated", warning, None, previous)


def _actionable(charge: Obj) -> bool:
    return not charge["disputed"] and not charge["refunded"]


def retrieve(state: SimState, warning_id: str) -> Obj:
    return state.store.early_fraud_warnings.get(warning_id, "early fraud warning")


def list_all(state: SimState, p: Params) -> Obj:
    return list_filtered(state.store.early_fraud_warnings, p, "charge", "payment_intent")
