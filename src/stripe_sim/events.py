"""Events and balance transactions: read-only views of what happened."""

from __future__ import annotations

import fnmatch

from .errors import ParameterInvalid, ResourceMissing
from .objects import Obj
from .params import Params
from .state import SimState, list_filtered, list_query

RETENTION_S = 30 * 86400  # Stripe keeps events for 30 days


def _kept(state: SimState, event: Obj) -> bool:
    return bool(event["created"] >= state.now() - RETENTION_S)


def retrieve(state: SimState, event_id: str) -> Obj:
    event = state.store.events.get(event_id, "event")
    if not _kept(state, event):
        raise ResourceMissing("event", event_id)
    return event


def list_all(state: SimState, p: Params) -> Obj:
    """Filter by ``type`` (``*`` wildcards, e.g. ``charge.dispute.*``) or ``types[]``;
    only events of the last 30 days, as Stripe keeps them."""
    query = list_query(p)
    single = p.text("type")
    many = p.str_list("types")
    p.ignore("delivery_success")
    p.finish()
    if single is not None and many is not None:
        raise ParameterInvalid("You may only specify one of these parameters: type, types.", "type")
    patterns = [single] if single is not None else many
    return state.store.events.page(
        query,
        lambda e: (
            _kept(state, e)
            and (patterns is None or any(fnmatch.fnmatchcase(e["type"], t) for t in patterns))
        ),
    )


def retrieve_balance_transaction(state: SimState, txn_id: str) -> Obj:
    return state.store.balance_transactions.get(txn_id, "balance transaction")


def list_balance_transactions(state: SimState, p: Params) -> Obj:
    return list_filtered(state.store.balance_transactions, p, "source", "type")
