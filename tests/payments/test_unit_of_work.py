"""The unit-of-work rule in payments, kept by reading the code.

A function that calls Stripe owns its transactions, takes ``Database`` and lives in
``payments/flows.py``; every other payments module takes a session and never opens a
transaction, never commits and never calls the Stripe gateway.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tokenbank.payments as payments_pkg

PACKAGE = Path(payments_pkg.__file__).parent
FLOWS = "flows.py"
ROUTES = "routes.py"
#: The gateway itself: it is the Stripe call.
GATEWAY = "stripe_client.py"
#: What opening, ending or asking Stripe looks like in code.
TRANSACTION_CALLS = {"transaction", "driver_transaction", "run", "commit", "rollback"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py") if p.name not in (FLOWS, GATEWAY))


def _annotation_names(fn: ast.AsyncFunctionDef | ast.FunctionDef) -> set[str]:
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    return {ast.unparse(a.annotation) for a in args if a.annotation is not None}


def test_only_flows_open_transactions_or_take_a_database() -> None:
    """(Routes pass the app's Database on to a flow; they open nothing themselves.)"""
    offenders: list[str] = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in TRANSACTION_CALLS:
                    offenders.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and path.name != ROUTES:
                if any("Database" in name for name in _annotation_names(node)):
                    offenders.append(f"{path.name}:{node.lineno} {node.name}() takes a Database")
    assert not offenders, "the unit-of-work rule is broken:\n" + "\n".join(offenders)


def test_only_flows_call_stripe() -> None:
    """Nothing outside flows.py takes the gateway (so nothing else can call Stripe)."""
    offenders: list[str] = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if any("StripeGateway" in name for name in _annotation_names(node)):
                    offenders.append(f"{path.name}:{node.lineno} {node.name}() takes the gateway")
    assert not offenders, "only flows.py may call Stripe:\n" + "\n".join(offenders)


def test_the_flows_that_call_stripe_take_a_database() -> None:
    """Every public flow taking the gateway also takes the Database it owns units of."""
    tree = ast.parse((PACKAGE / FLOWS).read_text())
    missing = [
        node.name
        for node in tree.body
        if isinstance(node, ast.AsyncFunctionDef)
        and not node.name.startswith("_")
        and any("StripeGateway" in n for n in _annotation_names(node))
        and not any("Database" in n for n in _annotation_names(node))
    ]
    assert not missing, f"flows calling Stripe without owning their units: {missing}"
