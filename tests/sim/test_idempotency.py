"""Idempotency-Key: a retry returns the first response; other parameters are refused."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import stripe

from sim.sim_kit import SECRET_KEY, new_intent, wait_until
from stripe_sim import SimConfig, SimServer, SimServerError

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


def _create(sim: SimServer, key: str, amount: str = "2000") -> httpx.Response:
    return httpx.post(
        f"{sim.url}/v1/payment_intents",
        data={"amount": amount, "currency": "usd", "payment_method_types[0]": "card"},
        headers={"Authorization": f"Bearer {SECRET_KEY}", "Idempotency-Key": key},
        timeout=30,
    )


def _together(sim: SimServer, key: str, n: int) -> list[httpx.Response]:
    """``n`` requests with one key, released at the same moment."""
    barrier = threading.Barrier(n)

    def send(_: int) -> httpx.Response:
        barrier.wait()
        return _create(sim, key)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(send, range(n)))


def test_reuse_while_the_first_request_runs_is_a_409(sim: SimServer) -> None:
    sim.set_api_faults(latency_s=1.0)  # the first request stays in flight that long
    try:
        responses = _together(sim, "slow", 6)
    finally:
        sim.set_api_faults()

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409, 409, 409]
    [done] = [r for r in responses if r.status_code == 200]
    conflict = next(r for r in responses if r.status_code == 409).json()["error"]
    assert (conflict["type"], conflict["code"]) == (
        "invalid_request_error",
        "idempotency_key_in_use",
    )
    replay = _create(sim, "slow")
    assert replay.json()["id"] == done.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    listed = httpx.get(f"{sim.url}/v1/payment_intents", auth=(SECRET_KEY, "")).json()["data"]
    assert [pi["id"] for pi in listed] == [done.json()["id"]]


def test_the_sdk_retries_a_409_and_gets_the_first_result(sim: SimServer) -> None:
    sim.set_api_faults(latency_s=0.5)
    retrying = stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": sim.url}, max_network_retries=5
    )
    barrier = threading.Barrier(2)

    def raw() -> httpx.Response:
        barrier.wait()
        return _create(sim, "sdk-race")

    def sdk() -> str:
        barrier.wait()
        time.sleep(0.05)  # usually lets the raw request reserve the key first
        return retrying.v1.payment_intents.create(
            {"amount": 2000, "currency": "usd", "payment_method_types": ["card"]},
            {"idempotency_key": "sdk-race"},
        ).id

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.submit(raw), pool.submit(sdk)
            raw_response, sdk_id = first.result(), second.result()
    finally:
        sim.set_api_faults()

    # Whichever came first, one intent exists and both callers end up naming it.
    if raw_response.status_code == 200:
        assert raw_response.json()["id"] == sdk_id
    else:
        assert raw_response.json()["error"]["code"] == "idempotency_key_in_use"
    listed = httpx.get(f"{sim.url}/v1/payment_intents", auth=(SECRET_KEY, "")).json()["data"]
    assert [pi["id"] for pi in listed] == [sdk_id]


def test_a_started_request_that_failed_is_kept_and_replayed(
    client: stripe.StripeClient,
) -> None:
    pi = new_intent(client)
    with pytest.raises(stripe.InvalidRequestError) as first:
        client.v1.refunds.create({"payment_intent": pi.id}, {"idempotency_key": "refund-early"})
    assert first.value.code == "payment_intent_unexpected_state"
    client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})

    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create({"payment_intent": pi.id}, {"idempotency_key": "refund-early"})

    assert again.value.json_body == first.value.json_body
    assert again.value.headers is not None
    assert again.value.headers.get("idempotent-replayed") == "true"
    assert client.v1.refunds.list({"payment_intent": pi.id}).data == []


def test_keys_are_kept_for_the_retention_period_only() -> None:
    with SimServer(SimConfig(idempotency_ttl_s=0.3)) as sim:
        first = _create(sim, "short-lived")
        assert _create(sim, "short-lived").headers.get("Idempotent-Replayed") == "true"
        # After the retention period the key is free again, even with other parameters.
        later = wait_until(
            lambda: (r := _create(sim, "short-lived", amount="3000")).status_code == 200 and r,
            5,
            "the key to expire",
        )
        assert later.json()["amount"] == 3000
        assert later.json()["id"] != first.json()["id"]
    assert SimConfig().idempotency_ttl_s == 24 * 3600


def test_latency_fault_slows_the_api_not_the_controls(sim: SimServer) -> None:
    sim.set_api_faults(latency_s=0.4)
    try:
        started = time.monotonic()
        assert httpx.get(f"{sim.url}/v1/events", auth=(SECRET_KEY, "")).status_code == 200
        slowed = time.monotonic() - started
        started = time.monotonic()
        assert sim.deliveries() == []
        control = time.monotonic() - started
    finally:
        assert sim.set_api_faults() == {"latency_s": 0.0}
    assert slowed >= 0.4
    assert control < 0.4
    with pytest.raises(SimServerError, match="latency_s"):
        sim.set_api_faults(latency_s=-1)
