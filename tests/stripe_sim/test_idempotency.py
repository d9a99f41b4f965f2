"""Idempotency-Key: a retry returns the first response; other parameters are refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import stripe

from stripe_sim.kit import SECRET_KEY, new_intent
from tokenbank.stripe_sim import SimServer

PARAMS = {"amount": 2000, "currency": "usd", "payment_method_types": ["card"]}


def test_same_key_same_params_returns_the_same_object(client: stripe.StripeClient) -> None:
    first = client.v1.payment_intents.create(PARAMS, {"idempotency_key": "buy-1"})  # type: ignore[arg-type]
    again = client.v1.payment_intents.create(PARAMS, {"idempotency_key": "buy-1"})  # type: ignore[arg-type]

    assert again.id == first.id
    assert again.client_secret == first.client_secret
    assert len(client.v1.payment_intents.list().data) == 1


def test_same_key_different_params_is_an_idempotency_error(client: stripe.StripeClient) -> None:
    client.v1.payment_intents.create(PARAMS, {"idempotency_key": "buy-2"})  # type: ignore[arg-type]
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.payment_intents.create(
            {**PARAMS, "amount": 5000},  # type: ignore[arg-type]
            {"idempotency_key": "buy-2"},
        )
    assert caught.value.http_status == 400
    assert len(client.v1.payment_intents.list().data) == 1


def test_replayed_decline_is_the_same_decline_without_a_second_charge(
    client: stripe.StripeClient,
) -> None:
    pi = new_intent(client)
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            client.v1.payment_intents.confirm(
                pi.id, {"payment_method": "pm_card_chargeDeclined"}, {"idempotency_key": "pay-1"}
            )
        errors.append(caught.value)
    assert errors[0].json_body == errors[1].json_body
    assert errors[1].headers is not None and errors[1].headers.get("idempotent-replayed") == "true"
    assert len(client.v1.charges.list({"payment_intent": pi.id}).data) == 1


def test_refused_validation_can_be_retried_with_the_same_key(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(
            {"amount": 10, "currency": "usd"}, {"idempotency_key": "fix-me"}
        )
    fixed = client.v1.payment_intents.create(PARAMS, {"idempotency_key": "fix-me"})  # type: ignore[arg-type]
    assert fixed.amount == 2000


def test_keys_are_scoped_to_the_api_key(sim: SimServer) -> None:
    headers = {"Idempotency-Key": "shared"}
    body = {"amount": "900", "currency": "usd", "payment_method_types[]": "card"}
    a = httpx.post(
        f"{sim.url}/v1/payment_intents", data=body, headers=headers, auth=("sk_test_a", "")
    )
    b = httpx.post(
        f"{sim.url}/v1/payment_intents", data=body, headers=headers, auth=("sk_test_b", "")
    )
    assert a.status_code == b.status_code == 200
    assert a.json()["id"] != b.json()["id"]


def test_concurrent_retries_with_one_key_create_one_intent(sim: SimServer) -> None:
    http = httpx.Client(base_url=sim.url)

    def create(_: int) -> str:
        response = http.post(
            "/v1/payment_intents",
            data={"amount": "2000", "currency": "usd", "payment_method_types[0]": "card"},
            headers={"Authorization": f"Bearer {SECRET_KEY}", "Idempotency-Key": "race"},
        )
        assert response.status_code == 200
        return str(response.json()["id"])

    with http, ThreadPoolExecutor(max_workers=12) as pool:
        ids = set(pool.map(create, range(24)))

    assert len(ids) == 1
    listed = httpx.get(f"{sim.url}/v1/payment_intents", auth=(SECRET_KEY, "")).json()
    assert [pi["id"] for pi in listed["data"]] == list(ids)
