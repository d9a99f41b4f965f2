"""Events and balance transactions: read-only views of what happened."""

from __future__ import annotations

import fnmatch

from .errors import ParameterInvalid
from .objects import Obj
from .params import Params
from .state import SimState, list_query

#: "List events, going back up to 30 days" (Stripe's API reference).
EVENTS_LISTED_S = 30 * 24 * 3600


def retrieve(state: SimState, event_id: str) -> Obj:
    return state.store.events.get(event_id, "event")


def list_all(state: SimState, p: Params) -> Obj:
    """Filter by ``type`` (``*`` wildcards, e.g. ``charge.dispute.*``) or ``types[]``."""
    query = list_query(p)
    single = p.text("type")
    many = p.str_list("types")
    p.ignore("delivery_success")
    p.finish()
    if single is not None and many is not None:
        raise ParameterInvalid("You may only specify one of these parameters: type, types.", "type")
    patterns = [single] if single is not None else many
    oldest = state.now() - EVENTS_LISTED_S
    return state.store.events.page(
        query,
        lambda e: e["created"] >= oldest
        and (patterns is None or any(fnmatch.fnmatchcase(e["type"], t) for t in patterns)),
    )


def retrieve_balance_transaction(state: SimState, txn_id: str) -> Obj:
    return state.store.balance_transactions.get(txn_id, "balance transaction")


def list_balance_transactions(state: SimState, p: Params) -> Obj:
    query = list_query(p)
    source = p.text("source")
    txn_type = p.text("type")
    p.finish()
    return state.store.balance_transactions.page(
        query,
        lambda t: (
            (source is None or t["source"] == source)
            and (txn_type is None or t["type"] == txn_type)
        ),
    )
