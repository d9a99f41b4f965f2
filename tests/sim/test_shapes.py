"""Objects have Stripe's fields and JSON types (fixtures and SDK classes agree)."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from sim.sim_kit import pay
from stripe_sim import SimServer

FIXTURES = json.loads((Path(__file__).parent / "data" / "stripe_fixtures.json").read_text())[
    "resources"
]


def shape_mismatches(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Fields Stripe's example has that ours lacks, or whose JSON type differs."""
    problems: list[str] = []
    if theirs is None or ours is None:
        return problems
    if isinstance(theirs, bool) or isinstance(ours, bool):
        if type(theirs) is not type(ours):
            problems.append(f"{path}: {type(ours).__name__} != {type(theirs).__name__}")
        return problems
    if isinstance(theirs, int | float) and isinstance(ours, int | float):
        return problems
    if type(ours) is not type(theirs):
        return [f"{path}: {type(ours).__name__} != {type(theirs).__name__}"]
    if isinstance(theirs, dict) and not path.endswith(".metadata"):  # metadata is user data
        for key, value in theirs.items():
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            else:
                problems.extend(shape_mismatches(ours[key], value, f"{path}.{key}"))
    if isinstance(theirs, list) and theirs and ours:
        problems.extend(shape_mismatches(ours[0], theirs[0], f"{path}[0]"))
    return problems


def nullable(annotation: Any) -> bool:
    if annotation is type(None):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(nullable(arg) for arg in typing.get_args(annotation))
    return False


def sdk_mismatches(ours: dict[str, Any], cls: type) -> list[str]:
    """Fields the SDK declares non-optional must be present and non-null; nulls allowed."""
    problems = []
    for name, annotation in cls.__annotations__.items():
        if name.isupper() or name.startswith("_"):
            continue
        if name not in ours:
            if not nullable(annotation):
                problems.append(f"{name}: required by the SDK, missing")
        elif ours[name] is None and not nullable(annotation):
            problems.append(f"{name}: null but the SDK says it never is")
    return problems


@pytest.fixture
def objects(client: stripe.StripeClient, sim: SimServer) -> dict[str, dict[str, Any]]:
    """One of each object, as raw JSON from the simulator."""
    pi = pay(client, "pm_card_createDispute", amount=3000)
    # Stripe's example charge carries its refunds list, which this API version
    # includes only when expanded.
    charge = client.v1.charges.retrieve(str(pi.latest_charge), {"expand": ["refunds"]})
    refund_pi = pay(client, "pm_card_visa")
    refund = client.v1.refunds.create({"payment_intent": refund_pi.id, "amount": 500})
    dispute = client.v1.disputes.list({"payment_intent": pi.id}).data[0]
    pm = client.v1.payment_methods.retrieve(str(pi.payment_method))
    event = client.v1.events.list({"limit": 1}).data[0]
    txn = client.v1.balance_transactions.retrieve(str(charge.balance_transaction))
    return {
        "payment_intent": pi.to_dict(),
        "charge": charge.to_dict(),
        "refund": refund.to_dict(),
        "dispute": dispute.to_dict(),
        "payment_method": pm.to_dict(),
        "event": event.to_dict(),
        "balance_transaction": txn.to_dict(),
    }


SDK_CLASSES = {
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "dispute": stripe.Dispute,
    "payment_method": stripe.PaymentMethod,
    "event": stripe.Event,
    "balance_transaction": stripe.BalanceTransaction,
}


@pytest.mark.parametrize("kind", sorted(SDK_CLASSES))
def test_objects_match_stripe_fixtures(objects: dict[str, dict[str, Any]], kind: str) -> None:
    ours = objects[kind]
    assert ours["object"] == kind
    fixture = FIXTURES[kind]
    if kind == "event":  # the fixture's data.object is a plan; compare the envelope
        fixture = {**fixture, "data": {"object": {}}}
    assert shape_mismatches(ours, fixture) == []


@pytest.mark.parametrize("kind", sorted(SDK_CLASSES))
def test_objects_match_sdk_classes(objects: dict[str, dict[str, Any]], kind: str) -> None:
    assert sdk_mismatches(objects[kind], SDK_CLASSES[kind]) == []


@pytest.fixture
def billing_objects(client: stripe.StripeClient, sim: SimServer) -> dict[str, dict[str, Any]]:
    """One of each customer and billing object, as raw JSON from the simulator."""
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": 1_900_000_000})
    cus = client.v1.customers.create({"email": "a@example.com", "test_clock": clock.id})
    seti = client.v1.setup_intents.create(
        {"customer": cus.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    client.v1.customers.update(
        cus.id, {"invoice_settings": {"default_payment_method": str(seti.payment_method)}}
    )
    product = client.v1.products.create({"name": "Basic"})
    price = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 499,
            "recurring": {"interval": "month"},
        }
    )
    sub = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}]})

    def raw(path: str) -> dict[str, Any]:  # the JSON itself: the SDK turns decimals to Decimal
        response = httpx.get(f"{sim.url}{path}", headers={"Authorization": "Bearer sk_test_x"})
        body = response.json()
        assert isinstance(body, dict)
        return body

    return {
        "customer": raw(f"/v1/customers/{cus.id}"),
        "setup_intent": raw(f"/v1/setup_intents/{seti.id}"),
        "product": raw(f"/v1/products/{product.id}"),
        "price": raw(f"/v1/prices/{price.id}"),
        "subscription": raw(f"/v1/subscriptions/{sub.id}"),
        "invoice": raw(f"/v1/invoices/{sub.latest_invoice}"),
        "test_helpers.test_clock": raw(f"/v1/test_helpers/test_clocks/{clock.id}"),
    }


# Fields fixtures3.json still shows that the pinned API version no longer has (the SDK
# class agrees): since 2025-03-31 an invoice names its subscription in
# ``parent.subscription_details``.
REMOVED_IN_PINNED_VERSION = {"invoice": {"subscription"}}


BILLING_SDK_CLASSES = {
    "customer": stripe.Customer,
    "setup_intent": stripe.SetupIntent,
    "product": stripe.Product,
    "price": stripe.Price,
    "subscription": stripe.Subscription,
    "invoice": stripe.Invoice,
    "test_helpers.test_clock": stripe.test_helpers.TestClock,
}


@pytest.mark.parametrize("kind", sorted(BILLING_SDK_CLASSES))
def test_billing_objects_match_stripe_fixtures_and_sdk_classes(
    billing_objects: dict[str, dict[str, Any]], kind: str
) -> None:
    ours = billing_objects[kind]
    assert ours["object"] == kind
    removed = REMOVED_IN_PINNED_VERSION.get(kind, set())
    assert not removed & set(BILLING_SDK_CLASSES[kind].__annotations__)
    fixture = {k: v for k, v in FIXTURES[kind].items() if k not in removed}
    assert shape_mismatches(ours, fixture) == []
    assert sdk_mismatches(ours, BILLING_SDK_CLASSES[kind]) == []


def test_the_shape_checks_can_fail() -> None:
    assert shape_mismatches({"a": 1}, {"a": 1, "b": "x"}) == [".b: missing"]
    assert shape_mismatches({"a": "1"}, {"a": 1}) == [".a: str != int"]
    assert shape_mismatches({"a": {"b": True}}, {"a": {"b": 0}}) == [".a.b: bool != int"]
    assert sdk_mismatches({"amount": None}, stripe.PaymentIntent)[0].startswith("amount")


def test_answers_in_the_pinned_api_version_only(
    client: stripe.StripeClient, sim: SimServer
) -> None:
    pinned = stripe._api_version._ApiVersion.CURRENT
    pi = pay(client, "pm_card_visa")
    ok = httpx.get(
        f"{sim.url}/v1/payment_intents/{pi.id}",
        headers={"Authorization": "Bearer sk_test_local", "Stripe-Version": pinned},
    )
    other = httpx.get(
        f"{sim.url}/v1/payment_intents/{pi.id}",
        headers={"Authorization": "Bearer sk_test_local", "Stripe-Version": "2020-08-27"},
    )
    assert ok.headers["Stripe-Version"] == pinned
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "api_version_unsupported"
    assert {e.api_version for e in client.v1.events.list({"limit": 100}).data} == {pinned}
