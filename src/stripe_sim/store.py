"""In-memory collections of Stripe objects: lookup, Stripe-style lists, expansion.

Not thread-safe by itself; :class:`stripe_sim.state.SimState` guards it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ParameterInvalid, ResourceMissing, StripeApiError
from .objects import Obj, json_copy, list_object

_MAX_LIMIT = 100


class NotExpandable(StripeApiError):
    def __init__(self, path: str) -> None:
        super().__init__(f"This property cannot be expanded ({path}).", param="expand")


@dataclass
class ListQuery:
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    created: dict[str, int] = field(default_factory=dict)  # {"gte": t, "lt": t, "eq": t}

    def matches_created(self, created: int) -> bool:
        ops: dict[str, Callable[[int, int], bool]] = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
            "eq": lambda a, b: a == b,
        }
        return all(ops[op](created, bound) for op, bound in self.created.items())

    def validate(self) -> None:
        if not 1 <= self.limit <= _MAX_LIMIT:
            raise ParameterInvalid(
                f"Invalid limit: must be between 1 and {_MAX_LIMIT}",
                "limit",
                code="parameter_invalid_integer",
            )
        if self.starting_after and self.ending_before:
            raise StripeApiError(
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="starting_after",
            )


class Collection:
    """Objects of one kind, kept in creation order (lists answer newest first)."""

    def __init__(self, kind: str, url: str, sequence: Iterable[int]) -> None:
        self.kind = kind
        self.url = url
        self._items: dict[str, Obj] = {}
        self._order: dict[str, int] = {}
        self._sequence = iter(sequence)

    def add(self, obj: Obj) -> Obj:
        self._items[obj["id"]] = obj
        self._order[obj["id"]] = next(self._sequence)
        return obj

    def find(self, object_id: str) -> Obj | None:
        return self._items.get(object_id)

    def get(self, object_id: str, param: str = "id") -> Obj:
        obj = self._items.get(object_id)
        if obj is None:
            raise ResourceMissing(self.kind, object_id, param)
        return obj

    def all(self) -> list[Obj]:
        return list(self._items.values())

    def page(
        self, query: ListQuery, keep: Callable[[Obj], bool] = lambda _: True, /, **equal: object
    ) -> Obj:
        """One page of a Stripe list: newest ``created`` first, cursors by object id.

        Only objects ``keep`` accepts whose fields equal the ``equal`` filters (a list's
        ``?customer=…``); a filter whose value is None (the parameter absent) keeps all."""
        query.validate()
        wanted = {name: value for name, value in equal.items() if value is not None}
        newest_first = sorted(self._items, key=self._rank, reverse=True)
        chosen = [
            obj
            for obj in (self._items[i] for i in newest_first)
            if keep(obj)
            and all(obj[name] == value for name, value in wanted.items())
            and query.matches_created(obj["created"])
        ]
        if query.starting_after is not None:
            cursor = self._cursor(query.starting_after, "starting_after")
            older = [o for o in chosen if self._rank(o["id"]) < cursor]
            data, has_more = older[: query.limit], len(older) > query.limit
        elif query.ending_before is not None:
            cursor = self._cursor(query.ending_before, "ending_before")
            newer = [o for o in chosen if self._rank(o["id"]) > cursor]
            data, has_more = newer[-query.limit :], len(newer) > query.limit
        else:
            data, has_more = chosen[: query.limit], len(chosen) > query.limit
        return list_object([json_copy(o) for o in data], self.url, has_more)

    def _rank(self, object_id: str) -> tuple[int, int]:
        return int(self._items[object_id].get("created", 0)), self._order[object_id]

    def _cursor(self, object_id: str, param: str) -> tuple[int, int]:
        if object_id not in self._order:
            raise ResourceMissing(self.kind, object_id, param)
        return self._rank(object_id)


# Which fields of which objects ``expand[]`` may replace by the full object.
EXPANDABLE: dict[str, frozenset[str]] = {
    "payment_intent": frozenset({"latest_charge", "payment_method", "customer", "review"}),
    "charge": frozenset(
        {
            "refunds",
            "payment_intent",
            "balance_transaction",
            "customer",
            "review",
            "failure_balance_transaction",
        }
    ),
    "refund": frozenset(
        {
            "charge",
            "payment_intent",
            "balance_transaction",
            "payment_method",
            "failure_balance_transaction",
        }
    ),
    "dispute": frozenset({"charge", "payment_intent"}),
    "balance_transaction": frozenset({"source"}),
    "radar.early_fraud_warning": frozenset({"charge", "payment_intent"}),
    "payment_method": frozenset({"customer"}),
    "customer": frozenset({"test_clock"}),
    "setup_intent": frozenset({"customer", "payment_method"}),
    "product": frozenset({"default_price"}),
    "price": frozenset({"product"}),
    "subscription": frozenset(
        {"customer", "latest_invoice", "default_payment_method", "test_clock"}
    ),
    # ``confirmation_secret`` and ``payments`` are "includable": absent unless expanded.
    "invoice": frozenset(
        {
            "customer",
            "default_payment_method",
            "test_clock",
            "confirmation_secret",
            "payments",
        }
    ),
}


class Store:
    def __init__(self) -> None:
        sequence = itertools.count(1)
        self.payment_intents = Collection("payment_intent", "/v1/payment_intents", sequence)
        self.charges = Collection("charge", "/v1/charges", sequence)
        self.refunds = Collection("refund", "/v1/refunds", sequence)
        self.disputes = Collection("dispute", "/v1/disputes", sequence)
        self.payment_methods = Collection("payment_method", "/v1/payment_methods", sequence)
        self.events = Collection("event", "/v1/events", sequence)
        self.balance_transactions = Collection(
            "balance_transaction", "/v1/balance_transactions", sequence
        )
        self.early_fraud_warnings = Collection(
            "early fraud warning", "/v1/radar/early_fraud_warnings", sequence
        )
        self.customers = Collection("customer", "/v1/customers", sequence)
        self.setup_intents = Collection("setup_intent", "/v1/setup_intents", sequence)
        self.products = Collection("product", "/v1/products", sequence)
        self.prices = Collection("price", "/v1/prices", sequence)
        self.subscriptions = Collection("subscription", "/v1/subscriptions", sequence)
        self.invoices = Collection("invoice", "/v1/invoices", sequence)
        self.test_clocks = Collection(
            "test_helpers.test_clock", "/v1/test_helpers/test_clocks", sequence
        )
        # Facts Stripe keeps that no object shows:
        # Deleted customers, products, prices and test clocks (retrieve says deleted).
        self.deleted: set[str] = set()
        # PaymentMethods that were set up for future use (authenticated when saved).
        self.set_up_payment_methods: set[str] = set()
        # The PaymentIntent Stripe created for each finalized invoice, and back.
        self.invoice_payment_intent: dict[str, str] = {}
        self.payment_intent_invoice: dict[str, str] = {}
        # The invoice whose payment applies a subscription's pending update.
        self.pending_update_invoice: dict[str, str] = {}
        # Proration line items waiting for a subscription's next invoice.
        self.pending_lines: dict[str, list[Obj]] = {}
        self._by_prefix = {
            "cus": self.customers,
            "seti": self.setup_intents,
            "prod": self.products,
            "price": self.prices,
            "sub": self.subscriptions,
            "in": self.invoices,
            "clock": self.test_clocks,
            "issfr": self.early_fraud_warnings,
            "pi": self.payment_intents,
            "ch": self.charges,
            "re": self.refunds,
            "dp": self.disputes,
            "pm": self.payment_methods,
            "evt": self.events,
            "txn": self.balance_transactions,
        }

    def not_deleted(self, obj: Obj) -> bool:
        """What lists and searches show of customers, products, prices and test clocks."""
        return obj["id"] not in self.deleted

    def lookup(self, object_id: str) -> Obj | None:
        collection = self._by_prefix.get(object_id.split("_", 1)[0])
        return collection.find(object_id) if collection else None

    def expand(self, obj: Obj, paths: list[str]) -> Obj:
        """Copy ``obj`` with each dotted path's id replaced by its object."""
        result: Obj = json_copy(obj)
        for path in paths:
            if result.get("object") == "list":
                head, _, rest = path.partition(".")
                if head != "data" or not rest:
                    raise NotExpandable(path)
                for item in result["data"]:
                    self._expand_path(item, rest.split("."), path)
            else:
                self._expand_path(result, path.split("."), path)
        return result

    def _expand_path(self, obj: Any, parts: list[str], full_path: str) -> None:
        if not isinstance(obj, dict):
            return
        name, rest = parts[0], parts[1:]
        if name not in EXPANDABLE.get(str(obj.get("object")), frozenset()):
            raise NotExpandable(full_path)
        value = obj.get(name)
        if obj.get("object") == "charge" and name == "refunds":
            # Since API version 2022-11-15 a charge carries its refunds only when
            # ``expand[]=refunds`` asks for them (newest first, at most 10).
            value = obj[name] = self.refunds.page(
                ListQuery(limit=10), lambda r: r["charge"] == obj["id"]
            )
            value["url"] = f"/v1/charges/{obj['id']}/refunds"
        elif obj.get("object") == "invoice" and name in ("confirmation_secret", "payments"):
            value = obj[name] = self._invoice_include(obj, name)
        elif isinstance(value, str):
            target = self.lookup(value)
            if target is not None:
                value = json_copy(target)
                obj[name] = value
        if rest:
            self._expand_path(value, rest, full_path)

    def _invoice_include(self, invoice: Obj, name: str) -> Obj | None:
        pi_id = self.invoice_payment_intent.get(invoice["id"])
        pi = self.payment_intents.find(pi_id) if pi_id else None
        if name == "confirmation_secret":
            if pi is None:
                return None
            return {"client_secret": pi["client_secret"], "type": "payment_intent"}
        payments = [] if pi is None else [invoice_payment(invoice, pi)]
        return list_object(payments, f"/v1/invoices/{invoice['id']}/payments")


def invoice_payment(invoice: Obj, pi: Obj) -> Obj:
    """The invoice's default payment (Stripe's ``invoice_payment``), from its PaymentIntent."""
    paid = pi["status"] == "succeeded"
    canceled = pi["status"] == "canceled"
    return {
        "id": "inpay_" + pi["id"].removeprefix("pi_"),
        "object": "invoice_payment",
        "amount_paid": pi["amount_received"] if paid else None,
        "amount_requested": pi["amount"],
        "created": pi["created"],
        "currency": pi["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
        "status": "paid" if paid else "canceled" if canceled else "open",
        "status_transitions": {
            "canceled_at": pi["canceled_at"],
            "paid_at": invoice["status_transitions"]["paid_at"] if paid else None,
        },
    }
